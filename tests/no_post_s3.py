"""An S3 without POST Object, as Cloudflare R2 is: a proxy in front of moto's server that
answers every form upload `501 NotImplemented` with R2's error, and passes everything else
(PUTs, multipart, GETs, CORS preflights) on unchanged.

R2 answers a presigned form POST with this error; Backblaze B2 has no POST Object either.
The page and the API client must then upload with presigned PUTs, and the proxy lets the
tests show they do, against the same moto server as the rest of the suite.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: R2's answer to a presigned POST (its documentation and users' reports).
R2_POST_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
    "<Message>Presigned post requests are not yet implemented</Message></Error>"
)
#: Not passed on: they describe one connection, not the request.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "content-length", "host",
})


@dataclass
class Seen:
    """What reached the proxy: (method, path, headers) of every request, and the refusals."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    form_posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def is_form_upload(method: str, path: str, content_type: str) -> bool:
    """A POST Object: a multipart/form-data POST to the bucket itself (path style)."""
    segments = [part for part in urlsplit(path).path.split("/") if part]
    return (
        method == "POST" and len(segments) == 1
        and content_type.lower().startswith("multipart/form-data")
    )


def _handler(upstream: str, seen: Seen) -> type[BaseHTTPRequestHandler]:
    """A request handler class that forwards to `upstream` (http://host:port)."""
    target = urlsplit(upstream)

    class Forward(BaseHTTPRequestHandler):
        """Forward one request, or refuse a form upload as R2 does."""

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests assert on `seen` instead."""

        def _body(self) -> bytes:
            """The request body (Content-Length, or chunked as some clients send it)."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = bytearray()
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            """Send an answer whole, then close the connection."""
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self) -> None:
            body = self._body()
            headers = {name: value for name, value in self.headers.items()}
            with seen.lock:
                seen.requests.append((self.command, self.path, headers))
            if is_form_upload(self.command, self.path, self.headers.get("Content-Type", "")):
                with seen.lock:
                    seen.form_posts += 1
                cors = []
                if origin := self.headers.get("Origin"):
                    # As a bucket's CORS rule for the page gives it, so the page can read why.
                    cors = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
                self._answer(501, [("Content-Type", "application/xml"), *cors],
                             R2_POST_ERROR.encode())
                return
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                passed = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
                # moto takes the bucket from a host name that is not an address: give it its
                # own, so path-style requests signed for another host name still find it.
                passed["Host"] = target.netloc
                connection.request(self.command, self.path, body=body, headers=passed)
                answer = connection.getresponse()
                data = answer.read()
                kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
                if self.command == "HEAD" and answer.getheader("Content-Length"):
                    kept.append(("Content-Length", answer.getheader("Content-Length") or "0"))
                self._answer(answer.status, kept, data)
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Forward


@dataclass
class NoPostS3:
    """The running proxy: its URL (on 127.0.0.1) and what it saw."""

    url: str
    port: int
    seen: Seen


@contextmanager
def no_post_s3(upstream: str) -> Iterator[NoPostS3]:
    """Run the proxy in front of `upstream` on a free loopback port until the block ends."""
    seen = Seen()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, seen))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield NoPostS3(url=f"http://127.0.0.1:{port}", port=int(port), seen=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
