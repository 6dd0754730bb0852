"""Serve the app as `movievault serve` does, behind a WSGI middleware that counts requests.

For each request the middleware records the route, the status, and the bytes the app
received (request line, headers and body, as they arrive at the WSGI layer) and sent
(body). `GET /__bench/records` returns the records and `POST /__bench/reset` clears them;
those two paths never reach the app and are not counted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

StartResponse = Callable[..., Any]


class CountingInput:
    """Wraps `wsgi.input` and counts the body bytes the app actually reads."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        """Read and count."""
        data = self.stream.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        """Read a line and count."""
        data = self.stream.readline(size)
        self.count += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        """Read lines and count."""
        lines = self.stream.readlines(hint)
        self.count += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over lines, counting."""
        for line in self.stream:
            self.count += len(line)
            yield line


def head_bytes(environ: dict[str, Any]) -> int:
    """Size of the request line and headers as the client sent them ("Name: value\\r\\n")."""
    uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    if not environ.get("REQUEST_URI") and environ.get("QUERY_STRING"):
        uri += "?" + environ["QUERY_STRING"]
    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    size = len(f"{environ['REQUEST_METHOD']} {uri} {protocol}\r\n")
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH") and not value:
                continue
            # HTTP_X_CSRFTOKEN came from "X-CSRFToken": same length, dashes for underscores.
            name = key[5:] if key.startswith("HTTP_") else key
            size += len(name) + 2 + len(str(value).encode("latin-1")) + 2
    return size + 2  # the blank line ending the headers


class CountingMiddleware:
    """Counts every request the wrapped app receives, by route."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wsgi = app.wsgi_app
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []

    def route(self, environ: dict[str, Any]) -> str:
        """The Flask endpoint the request maps to (ids folded away), or its path."""
        adapter = self.app.url_map.bind_to_environ(environ)
        try:
            endpoint, _ = adapter.match()
        except HTTPException:
            return environ.get("PATH_INFO", "")
        return str(endpoint)

    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Answer the bench's own requests."""
        if environ["PATH_INFO"] == "/__bench/reset":
            with self.lock:
                self.records.clear()
            body = b"{}"
        else:
            with self.lock:
                body = json.dumps({"records": self.records}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Count the request, pass it on, count the answer."""
        if environ.get("PATH_INFO", "").startswith("/__bench/"):
            return self._control(environ, start_response)
        return self._counted(environ, start_response)

    def _counted(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        """Run the app, counting what it receives and sends."""
        record: dict[str, Any] = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "route": self.route(environ),
            "head": head_bytes(environ),
        }
        declared = int(environ.get("CONTENT_LENGTH") or 0)
        body = CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body

        def counting_start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            record["status"] = int(status.split()[0])
            return start_response(status, headers, *args)

        chunks = self.wsgi(environ, counting_start)
        sent = 0
        try:
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            # The server buffers the whole declared body before the app runs, so what
            # arrived is at least Content-Length even if the app read less of it.
            record["body"] = max(declared, body.count)
            record["received"] = record["head"] + record["body"]
            record["sent"] = sent
            with self.lock:
                self.records.append(record)


def main() -> None:
    """Build the app from MOVIEVAULT_* like the CLI does and serve it with the same options."""
    from movievault import create_app
    from movievault.backends import get_storage
    from movievault.config import settings
    from movievault.serving import serve, serve_options

    app = create_app()
    get_storage(app)  # as `movievault serve` does: start the store before the first request
    app.wsgi_app = CountingMiddleware(app)  # type: ignore[method-assign]
    serve(app, serve_options(settings(app)))


if __name__ == "__main__":
    main()
