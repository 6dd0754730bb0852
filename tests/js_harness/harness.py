"""Shared pieces of the front-end harness: a static server and a headless Chromium.

The server serves the repository's ``static/`` under ``/static/`` and this folder's
``pages/`` under ``/harness/``, on 127.0.0.1 with a free port. Chromium maps the host name
``movievault.test`` to 127.0.0.1, so a page can also be loaded from a plain-http origin that
is not "localhost": there the page is not a secure context and ``crypto.subtle`` is missing,
as on a home server reached at ``http://192.168.x.y:8000``.
"""

from __future__ import annotations

import contextlib
import mimetypes
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:  # run as a script from this folder
    sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM  # noqa: E402,F401
from tests.browser import CHROMIUM_ARGS as BROWSER_ARGS  # noqa: E402

STATIC = ROOT / "static"
PAGES = HERE / "pages"

INSECURE_HOST = "movievault.test"

# The policy the app sends: no inline scripts, no eval. Like the app, only the scripts that
# compile WebAssembly get 'wasm-unsafe-eval' (a worker follows the policy of its own script).
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' http://127.0.0.1:*; "
    "worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
WASM_SCRIPTS = frozenset({"/static/js/hash-worker.js", "/harness/bench-worker.js"})

# Also map a non-localhost name to 127.0.0.1: an origin that is not a secure context.
CHROMIUM_ARGS = [*BROWSER_ARGS, f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"]

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")

# A route gets (handler, method, path) and returns True when it answered the request.
Route = Callable[[BaseHTTPRequestHandler, str, str], bool]


def make_handler(
    csp: str | None, wasm_scripts: frozenset[str], routes: list[Route]
) -> type[BaseHTTPRequestHandler]:
    """A request handler serving routes first, then static files, with an optional CSP."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep the harness output readable

        def end_headers(self) -> None:
            if csp:
                policy = csp
                if self.path.split("?", 1)[0] in wasm_scripts:
                    policy = csp.replace(
                        "script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"
                    )
                self.send_header("Content-Security-Policy", policy)
            super().end_headers()

        def handle_any(self) -> None:
            path = self.path.split("?", 1)[0]
            for route in routes:
                if route(self, self.command, path):
                    return
            if self.command in ("GET", "HEAD"):
                self.serve_file(path)
            else:
                self.send_error(404)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = handle_any

        def serve_file(self, path: str) -> None:
            if path.startswith("/static/"):
                base, rest = STATIC, path[len("/static/") :]
            elif path.startswith("/harness/"):
                base, rest = PAGES, path[len("/harness/") :]
            else:
                self.send_error(404)
                return
            target = (base / rest).resolve()
            if base not in target.parents or not target.is_file():
                self.send_error(404)
                return
            body = target.read_bytes()
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(
    csp: str | None = STRICT_CSP,
    routes: list[Route] | None = None,
    wasm_scripts: frozenset[str] = WASM_SCRIPTS,
) -> Iterator[int]:
    """Run the harness server on 127.0.0.1 with a free port; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(csp, wasm_scripts, routes or []))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def origins(port: int) -> dict[str, str]:
    """The two origins every check runs on: loopback (secure) and a plain-http host name."""
    return {"loopback": f"http://127.0.0.1:{port}", "plain-http": f"http://{INSECURE_HOST}:{port}"}
