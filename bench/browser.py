"""Headless Chromium for the browser benchmarks: launch, a static origin, memory sampling.

Debian's Chromium is driven by Playwright (never a downloaded browser). The static server
serves the repository's `static/` under /static/ and bench/pages/ under /bench/ on
127.0.0.1, so a bench page loads the app's real modules and workers from one origin.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import BENCH, CHROMIUM, CHROMIUM_ARGS, ROOT, rss_bytes, rss_split

from tests.processes import descendants

PAGES = BENCH / "pages"
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/wasm", ".wasm")


class _Handler(BaseHTTPRequestHandler):
    """GET files under /static/ (the app's) and /bench/ (the bench pages)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the benchmark's output readable."""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        """Serve one file, or 404."""
        path = self.path.split("?", 1)[0]
        roots = {"/static/": ROOT / "static", "/bench/": PAGES}
        for prefix, folder in roots.items():
            if path.startswith(prefix):
                target = (folder / path[len(prefix):]).resolve()
                if target.is_file() and folder.resolve() in target.parents:
                    body = target.read_bytes()
                    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(body)
                    return
        self.send_error(404)


@contextlib.contextmanager
def static_origin() -> Iterator[str]:
    """Serve /static/ and /bench/ on 127.0.0.1 and a free port; yield the origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def chromium_pids() -> list[int]:
    """Chromium processes started (through Playwright's driver) by this process."""
    return [pid for pid, name in descendants(os.getpid())[1:] if name.startswith("chrom")]


def _process_type(pid: int) -> str:
    """Chromium's name for a process: browser, renderer, gpu-process, a utility's service."""
    try:
        # Chromium rewrites its command line as one string for its process titles.
        args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return "gone"
    kind = "browser"
    for arg in args:
        text = arg.decode(errors="replace")
        if text.startswith("--type="):
            kind = text.split("=", 1)[1]
        elif text.startswith("--utility-sub-type="):
            return text.split("=", 1)[1].split(".")[0]
    return kind


def chromium_breakdown() -> dict[str, int]:
    """Resident memory of Chromium's processes, summed by process type and by kind of
    memory ("renderer anon", "browser file", ...): anon is heap, file is mapped files."""
    totals: dict[str, int] = {}
    for pid in chromium_pids():
        with contextlib.suppress(OSError):
            kind = _process_type(pid)
            for memory, size in rss_split(pid).items():
                name = f"{kind} {memory}"
                totals[name] = totals.get(name, 0) + size
    return totals


def chromium_rss() -> int:
    """Sum of the resident memory of all Chromium processes (shared pages count in each)."""
    total = 0
    for pid in chromium_pids():
        with contextlib.suppress(OSError):
            total += rss_bytes(pid)
    return total


class RssSampler:
    """Samples a memory figure in a thread every `interval` seconds; keeps the peak."""

    def __init__(self, measure: Any = chromium_rss, interval: float = 0.1) -> None:
        self.measure = measure
        self.interval = interval
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - started, self.measure()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak(self) -> int:
        """The largest sample."""
        return max((int(value) for _, value in self.samples), default=0)
