"""How waitress serves MovieVault: its options, and body limits per route.

waitress reads a request's whole body (into a temporary file past 512 KiB) before the app
sees it, and it has one body limit per server. Only the local store's upload routes need
large bodies, so the parser here picks the limit once the request line is parsed and
answers 413 before reading a body that would pass it. `movievault serve` and the
benchmarks both start waitress through `serve_options` and `create_server`, so what is
measured is what is deployed.
"""

from __future__ import annotations

import copy
import errno
import logging
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.server import create_server as waitress_server
from waitress.utilities import RequestEntityTooLarge

from movievault.api import MAX_JSON_BYTES
from movievault.config import ConfigError
from movievault.settings import Settings
from movievault.storage import part_size_for

log = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * KIB
#: Seconds a stopping server (SIGTERM) gives the requests under way before it exits.
GRACEFUL_SECONDS = 30

#: Seconds a connection may stay silent (neither bytes in nor out) before it is closed.
#: Every read refreshes it, so a slow phone sending a 16 MiB part keeps its connection
#: as long as bytes keep coming; a request being handled by the app is never cut.
CHANNEL_TIMEOUT = 60
#: Connections open at once. Idle ones go after CHANNEL_TIMEOUT, so holding them all takes
#: a client that keeps 500 sockets trickling; a reverse proxy in front is the real answer.
CONNECTION_LIMIT = 500
#: Request line and headers; a session cookie and a signed URL need a few KiB.
MAX_HEADER_BYTES = 64 * KIB
#: Every route but the local store's uploads: the largest body is a 1,000-file duplicate
#: check, which the API itself caps at MAX_JSON_BYTES; the rest is room for chunk framing.
SMALL_BODY_BYTES = MAX_JSON_BYTES + 64 * KIB


@dataclass(frozen=True)
class BodyLimits:
    """The largest request body waitress reads, per route (a body this size is refused)."""

    default: int
    upload: int

    def for_request(self, method: str, path: str) -> int:
        """The limit for `method path`: large only for the local store's uploads."""
        if (method in ("POST", "PUT") and path == "/storage/upload") or (
            method == "PUT" and path.startswith("/storage/parts/")
        ):
            return self.upload
        return self.default


def body_limits(config: Settings) -> BodyLimits:
    """Limits for these settings: a form upload carries up to MULTIPART_THRESHOLD bytes, a
    part up to the part size of the largest allowed file, each with fields or framing."""
    if config.storage != "local":
        # With S3 the bytes go to the bucket: the app has no upload route at all.
        return BodyLimits(default=SMALL_BODY_BYTES, upload=SMALL_BODY_BYTES)
    largest = max(
        config.multipart_threshold, part_size_for(config.max_file_size, config.part_size)
    )
    return BodyLimits(default=SMALL_BODY_BYTES, upload=largest + MIB)


@dataclass(frozen=True)
class ServeOptions:
    """waitress's own settings plus the per-route body limits."""

    adjustments: dict[str, Any]
    limits: BodyLimits


def serve_options(
    config: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    threads: int | None = None,
    channel_timeout: int = CHANNEL_TIMEOUT,
) -> ServeOptions:
    """How to serve an app with these settings (host, port and threads default to them)."""
    limits = body_limits(config)
    return ServeOptions(
        adjustments={
            "host": host or config.host,
            "port": port or config.port,
            "threads": threads or config.threads,
            "ident": "MovieVault",
            "channel_timeout": channel_timeout,
            # Idle connections are looked for this often, so they go within 1.25 timeouts.
            "cleanup_interval": max(1, channel_timeout // 4),
            "connection_limit": CONNECTION_LIMIT,
            # select() fails on descriptors past 1024; poll() has no such ceiling.
            "asyncore_use_poll": True,
            "max_request_header_size": MAX_HEADER_BYTES,
            # The server-wide limit is the small one; the parser raises it per route.
            "max_request_body_size": limits.default,
            # waitress reads sockets 8 KiB at a time by default; bodies of many MiB arrive
            # about twice as fast in 256 KiB reads (docs/STORAGE.md has the figures).
            "recv_bytes": 256 * KIB,
            # waitress drops X-Forwarded-* unless told to trust a proxy; the app's ProxyFix
            # trusts exactly PROXY_COUNT of them, so leave the headers to it.
            "clear_untrusted_proxy_headers": not config.proxy_count,
        },
        limits=limits,
    )


class RouteLimitedParser(HTTPRequestParser):
    """waitress's request parser, with the body limit chosen by method and path.

    waitress checks `self.adj.max_request_body_size` against Content-Length as soon as the
    headers are parsed, and against the bytes read for a chunked body; an upload route gets
    its own copy of the adjustments with the larger limit, so both checks use it.
    """

    # waitress ships no types: the parser's attributes this class sets, as it sets them.
    adj: Any  # waitress.adjustments.Adjustments
    error: Exception | None
    completed: bool
    expect_continue: bool

    def __init__(self, adj: Any, *, limits: BodyLimits) -> None:
        super().__init__(adj)
        self.limits = limits

    def parse_header(self, header_plus: bytes) -> None:
        """Parse the request line and headers, then set this request's body limit."""
        super().parse_header(header_plus)
        limit = self.limits.for_request(self.command, self.path)
        if limit != self.adj.max_request_body_size:
            self.adj = copy.copy(self.adj)
            self.adj.max_request_body_size = limit

    def received(self, data: bytes) -> int:
        """Take what the socket gave; refuse a body past the limit without reading it."""
        consumed: int = super().received(data)
        receiver = self.body_rcv
        if not self.completed and self.chunked and receiver is not None:
            # The chunk being read counts in full: its size line said how long it is.
            declared = self.body_bytes_received + receiver.chunk_remainder
            if declared >= self.adj.max_request_body_size:
                self.error = RequestEntityTooLarge(
                    f"exceeds max_body of {self.adj.max_request_body_size}"
                )
                self.completed = True
        if isinstance(self.error, RequestEntityTooLarge):
            # Answer now: no "100 Continue" inviting the body (waitress would send one and
            # read up to the limit), and the rest of this read is not parsed as a request.
            self.expect_continue = False
            return len(data)
        return consumed


class RouteLimitedChannel(HTTPChannel):
    """A waitress connection whose requests are parsed by RouteLimitedParser."""

    def __init__(self, *args: Any, limits: BodyLimits, **kwargs: Any) -> None:
        self.parser_class = partial(RouteLimitedParser, limits=limits)
        super().__init__(*args, **kwargs)


def create_server(app: Flask, options: ServeOptions) -> Any:
    """A waitress server for `app` with these options (call `.run()` to serve)."""
    sockets: dict[int, Any] = {}
    server = waitress_server(app, map=sockets, **options.adjustments)
    channel = partial(RouteLimitedChannel, limits=options.limits)
    for listener in sockets.values():  # one per address `host` resolves to
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel
    return server


def cannot_listen(error: OSError, host: str, port: int) -> str:
    """Why `host:port` cannot be listened on, and what to do, in one sentence."""
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (is MovieVault already running?): stop "
            "what uses it, or choose another port with --port or MOVIEVAULT_PORT."
        )
    if error.errno == errno.EACCES:
        return (
            f"Not allowed to listen on port {port} ({error.strerror}): ports below 1024 need "
            "privileges; choose another with --port or MOVIEVAULT_PORT."
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine: set --host or MOVIEVAULT_HOST to one "
            "of its addresses (0.0.0.0 for all of them)."
        )
    return (
        f"Could not listen on {host} port {port} ({error.strerror or error}): choose another "
        "address with --host and --port."
    )


def listen(app: Flask, options: ServeOptions) -> Any:
    """Bind the address now and return the server (`.run()` serves); a taken port, an
    address of another machine or a name that does not resolve raise ConfigError."""
    host, port = options.adjustments["host"], options.adjustments["port"]
    try:
        return create_server(app, options)
    except OSError as error:
        raise ConfigError(cannot_listen(error, host, port)) from error
    except ValueError as error:  # waitress's word for a host name it cannot resolve
        raise ConfigError(
            f"Could not listen on {host} port {port}: {host} is neither an address of this "
            "machine nor a name it can resolve; set --host or MOVIEVAULT_HOST to one."
        ) from error


def run(server: Any, *, grace: float = GRACEFUL_SECONDS) -> None:
    """Serve with a server from `listen` until interrupted (Ctrl-C), or until SIGTERM and
    the requests under way are done (at most `grace` seconds)."""
    server.print_listen("Serving on http://{}:{}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _signum, _frame: _drain(server, grace))
    server.run()  # returns once a drain has emptied its map
    server.task_dispatcher.shutdown()


def _dispatchers(server: Any) -> list[Any]:
    """Everything waitress's loop watches: listening sockets, connections, wake-up pipes."""
    return list((server.map if hasattr(server, "map") else server._map).values())


def _idle(channel: HTTPChannel) -> bool:
    """Whether a connection is between requests (nothing being read, run or sent)."""
    return not channel.requests and channel.request is None and not channel.total_outbufs_len


def _drain(server: Any, grace: float) -> None:
    """Stop as a restart should: no new connections, the requests under way finished
    (an upload's last part, a complete), idle connections closed, then leave the loop.

    Runs in the SIGTERM handler, on the thread of waitress's loop. Everything after is done
    on that thread too, by a sweep a helper thread has the loop run (through the wake-up
    pipe) every 50 ms: waitress reads new requests on that thread, so no request can slip
    in between finding a connection idle and closing it.
    """
    listeners = [d for d in _dispatchers(server) if isinstance(d, BaseWSGIServer)]
    if not listeners:
        return  # a second SIGTERM: already draining
    wake = listeners[0].trigger
    for listener in listeners:
        # Only the socket: its wake-up pipe stays open, as request threads still write to it.
        wasyncore.dispatcher.close(listener)
    log.info("Stopping: finishing the requests under way (at most %g s).", grace)
    deadline = time.monotonic() + grace
    done = threading.Event()

    def sweep() -> None:
        late = time.monotonic() >= deadline
        channels = [d for d in _dispatchers(server) if isinstance(d, HTTPChannel)]
        if late and channels:
            log.warning("Stopping with %d requests still under way after %g s.",
                        len(channels), grace)
        for channel in channels:
            if late or _idle(channel):
                channel.handle_close()
        if not any(isinstance(d, HTTPChannel) for d in _dispatchers(server)):
            for pipe in _dispatchers(server):
                pipe.del_channel()  # an empty map ends waitress's loop
            done.set()

    def keep_sweeping() -> None:
        while not done.is_set():
            wake.pull_trigger(sweep)
            done.wait(0.05)

    threading.Thread(target=keep_sweeping, name="movievault-drain", daemon=True).start()


def serve(app: Flask, options: ServeOptions) -> None:
    """Serve `app` until interrupted."""
    run(listen(app, options))
