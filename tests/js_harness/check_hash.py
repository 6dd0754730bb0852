"""Check the hash worker in headless Chromium against Python's hashlib.

Run: python tests/js_harness/check_hash.py   (exit status 0 when every check passes)

Every file is hashed on a loopback origin with crypto.subtle deleted, and on a plain-http
origin that is not localhost (no secure context, no crypto.subtle at all), under the strict
Content-Security-Policy the app sends ('wasm-unsafe-eval' only for hash-worker.js).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from harness import STRICT_CSP, chromium, origins, serve

MiB = 1024 * 1024
SIZES = [0, 1, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 3 * 8 * MiB + 5, 50_000_000]

NO_SUBTLE = "Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined});"

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    """Record and print one check."""
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def make_files(folder: Path) -> dict[int, tuple[Path, str]]:
    """Random files of each size with their SHA-256."""
    files = {}
    for size in SIZES:
        path = folder / f"f{size}.bin"
        data = os.urandom(size)
        path.write_bytes(data)
        files[size] = (path, hashlib.sha256(data).hexdigest())
    return files


def open_page(browser, origin: str, delete_subtle: bool):
    page = browser.new_page()
    page.on("pageerror", lambda e: failures.append(f"page error: {e}"))
    if delete_subtle:
        page.add_init_script(NO_SUBTLE)
    page.goto(f"{origin}/harness/hash.html")
    page.wait_for_function("document.getElementById('status').textContent === 'ready'")
    return page


def check_origin(browser, name: str, origin: str, files) -> None:
    page = open_page(browser, origin, delete_subtle=(name == "loopback"))
    ctx = page.evaluate("pageContext()")
    check(ctx["subtle"] == "undefined", f"[{name}] crypto.subtle is absent in the page ({ctx})")
    if name == "plain-http":
        worker_ctx = page.evaluate("benchRun('context')")
        check(not ctx["secure"], f"[{name}] page is not a secure context")
        check(worker_ctx["subtle"] == "undefined", f"[{name}] no crypto.subtle in workers either")

    for size, (path, expected) in files.items():
        page.set_input_files("#file", str(path))
        got = page.evaluate("hashChosen()")
        check(got["sha256"] == expected, f"[{name}] size {size}: {got['sha256'][:16]}…")
        progress = got["progress"]
        check(
            progress == sorted(progress) and (not progress or progress[-1] == size),
            f"[{name}] size {size}: progress rises to the size ({len(progress)} messages)",
        )

    big_path, big_sha = files[50_000_000]
    page.set_input_files("#file", str(big_path))
    variants = [
        {"readAhead": 1},
        {"readAhead": 3},
        {"inline": True},
        {"inline": True, "readAhead": 2},
        {"sliceSize": 5 * MiB + 3},
        {"tee": True},
        {"tee": True, "inline": True},
    ]
    for opts in variants:
        got = page.evaluate("o => hashChosen(o)", opts)
        check(got["sha256"] == big_sha, f"[{name}] 50 MB with {opts}")
        if opts.get("tee"):
            check(got["teeBytes"] == 50_000_000, f"[{name}] {opts}: tee handed over every byte")

    outcome = page.evaluate("hashAndCancel(30)")
    abc = hashlib.sha256(b"abc").hexdigest()
    check(outcome == f"HashCancelled:{abc}", f"[{name}] cancel rejects and the pool still works")
    page.close()


def check_csp_without_wasm(files) -> None:
    """Without 'wasm-unsafe-eval' the worker must fail with a message that says why."""
    with serve(csp=STRICT_CSP, wasm_scripts=frozenset()) as port, chromium() as browser:
        page = open_page(browser, origins(port)["loopback"], delete_subtle=False)
        page.set_input_files("#file", str(files[1][0]))
        message = page.evaluate("hashChosen().then(() => 'no error', e => e.message)")
        check("wasm-unsafe-eval" in message, f"CSP without wasm-unsafe-eval: {message!r}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp))
        with serve() as port, chromium() as browser:
            for name, origin in origins(port).items():
                check_origin(browser, name, origin, files)
        check_csp_without_wasm(files)
    print(f"\n{len(failures)} failure(s)" if failures else "\nall hash checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
