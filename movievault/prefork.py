"""`movievault serve --workers N`: N gunicorn processes, each with an app of its own.

waitress serves one process, whose GIL holds the app to one core; gunicorn, the usual
pre-forking server on Linux, runs N. Its workers load the app themselves after the fork
(no pre-loading), so every worker opens its own database connections, boto3 clients and
local-store state: nothing made before the fork is used after it. What the workers must
share is outside them: the catalogue, the store, and the secret key (MOVIEVAULT_SECRET_KEY,
or the file in the instance folder that the first of them writes and the others read).

Each worker runs its own background prober, so the process that records a file wakes a
prober at once; jobs are claimed in the database, so none is probed twice. The workers
split MEDIA_WORKERS between them (at least one each): the host probes about as many
files at once as with one process.
"""

from __future__ import annotations

import math
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask

from movievault.config import ConfigError
from movievault.serving import (
    GRACEFUL_SECONDS,
    MAX_HEADER_BYTES,
    BodyLimits,
    ServeOptions,
    cannot_listen,
)
from movievault.settings import Settings

#: gunicorn's own ceiling for a request line (it refuses to go higher): a signed URL of
#: the local store is well under it.
MAX_REQUEST_LINE = 8190
#: Headers per request and bytes per header: together at most as much as waitress takes
#: (MAX_HEADER_BYTES), and more than a browser sends (a dozen or two, a cookie of ~1 KiB).
MAX_HEADER_FIELDS = 50
MAX_HEADER_FIELD_BYTES = MAX_HEADER_BYTES // 8
#: Seconds an idle keep-alive connection stays open (a load balancer's is usually 60).
KEEPALIVE_SECONDS = 75

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def check_workers(config: Settings, workers: int) -> None:
    """Refuse several workers where they cannot share what they must (ConfigError)."""
    if workers == 1:
        return
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            f"--workers {workers} needs gunicorn, which MovieVault uses on Linux only: serve "
            "with one worker here, or run several `movievault serve` behind a proxy."
        )
    if config.storage == "embedded-s3":
        raise ConfigError(
            "The embedded S3 store lives inside one process, so several workers would each "
            "have their own: serve it with --workers 1, or use a real S3 service."
        )


def media_share(media_workers: int, workers: int) -> int:
    """Probe threads per worker: MEDIA_WORKERS split between them, at least one each
    (none when MEDIA_WORKERS is 0)."""
    if media_workers == 0:
        return 0
    return max(1, math.ceil(media_workers / workers))


def check_address(host: str, port: int) -> None:
    """Bind `host:port` once and let it go, as gunicorn will: a taken port, an address of
    another machine or a name that does not resolve raise ConfigError now, in one sentence
    (gunicorn itself would retry for seconds and then print a traceback)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigError(
            f"Could not listen on {host} port {port}: {host} is neither an address of this "
            "machine nor a name it can resolve; set --host or MOVIEVAULT_HOST to one."
        ) from error
    for family, kind, protocol, _name, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                raise ConfigError(cannot_listen(error, host, port)) from error


class _CappedInput:
    """A chunked request body that raises 413 once more than `limit` bytes are read."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream = stream
        self.left = limit

    def _count(self, data: bytes) -> bytes:
        """Take `data` off the allowance; past it, the request is too large."""
        self.left -= len(data)
        if self.left < 0:
            from werkzeug.exceptions import RequestEntityTooLarge

            raise RequestEntityTooLarge()
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Read up to `size` bytes (all, by default)."""
        return self._count(self.stream.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line."""
        return self._count(self.stream.readline(size))

    def __iter__(self) -> Iterator[bytes]:
        """The body line by line."""
        while line := self.readline():
            yield line


class BodyLimit:
    """WSGI middleware giving gunicorn waitress's per-route body limits (BodyLimits): a
    declared body past the limit is refused with 413 before any of it is read, and a
    chunked one as soon as the bytes read pass it."""

    def __init__(self, app: WSGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Refuse a body too large for its route; pass everything else to the app."""
        limit = self.limits.for_request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > limit:
            body = (
                '{"error": "The request body is larger than this address accepts '
                f'({limit:,} bytes)."}}'
            ).encode()
            start_response("413 Request Entity Too Large", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ])
            return [body]
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            environ["wsgi.input"] = _CappedInput(environ["wsgi.input"], limit)
        return self.app(environ, start_response)


def gunicorn_settings(options: ServeOptions, workers: int) -> dict[str, Any]:
    """gunicorn's settings for these serve options (the same address, threads and limits)."""
    adjustments = options.adjustments
    host = adjustments["host"]
    bind = f"[{host}]:{adjustments['port']}" if ":" in host else f"{host}:{adjustments['port']}"
    return {
        "bind": [bind],
        "workers": workers,
        # Threads per worker, as waitress has: requests wait on the catalogue and the store.
        "worker_class": "gthread",
        "threads": adjustments["threads"],
        "preload_app": False,  # each worker builds its app after the fork
        "limit_request_line": MAX_REQUEST_LINE,
        "limit_request_fields": MAX_HEADER_FIELDS,
        "limit_request_field_size": MAX_HEADER_FIELD_BYTES,
        "keepalive": KEEPALIVE_SECONDS,
        "graceful_timeout": GRACEFUL_SECONDS,
        "worker_connections": adjustments["connection_limit"],
        # X-Forwarded-* are the app's to trust (PROXY_COUNT, through ProxyFix), not gunicorn's.
        "forwarded_allow_ips": "",
        "proc_name": "movievault",
        # Its control socket is one path per user: two instances on a host would share it.
        "control_socket_disable": True,
        "accesslog": None,
        "errorlog": "-",
    }


def worker_app(media_workers: int, threads: int, limits: BodyLimits) -> WSGIApp:
    """Build the app in a worker (after the fork): the catalogue as the master left it
    (migrated), a connection for each of its `threads`, its share of the probe threads
    running, body limits around it."""
    from movievault import create_app
    from movievault.background import start_probe_worker

    app = create_app(
        {"MEDIA_WORKERS": media_workers, "THREADS": threads, "SKIP_MIGRATIONS": True}
    )
    start_probe_worker(app)
    return BodyLimit(app, limits)


def serve_workers(app: Flask, options: ServeOptions, workers: int) -> None:
    """Serve with `workers` gunicorn processes until stopped (SIGTERM stops gracefully)."""
    from gunicorn.app.base import BaseApplication

    from movievault import db

    media = media_share(app.config["MEDIA_WORKERS"], workers)
    # The master forks the workers: it must hold no connection a worker could inherit.
    db.engine_of(app).dispose()
    settings = gunicorn_settings(options, workers)

    class Server(BaseApplication):
        """gunicorn with these settings, loading the app in each worker."""

        def load_config(self) -> None:
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> WSGIApp:
            return worker_app(media, options.adjustments["threads"], options.limits)

    Server().run()
