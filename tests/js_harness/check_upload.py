"""Drive the upload panel in headless Chromium against mock_api.py.

Run: python tests/js_harness/check_upload.py [--screenshots DIR] [-k NAME]
(exit status 0 when every check passes)

Each scenario gets fresh mock servers and a fresh page (app.js, app.css, the panel markup
documented in upload-panel.js, under the strict CSP).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import chromium, origins
from mock_api import MiB, MockState, mock_servers

failures: list[str] = []
SCENARIOS: dict[str, Callable] = {}


def scenario(fn: Callable) -> Callable:
    SCENARIOS[fn.__name__] = fn
    return fn


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


class Files:
    """Random test files in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def make(self, name: str, size: int, seed: bytes | None = None) -> Path:
        path = self.folder / name
        path.write_bytes(seed if seed is not None else os.urandom(size))
        return path


def open_page(context, port: int, origin: str = "loopback"):
    page = context.new_page()
    page.on("pageerror", lambda e: failures.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and print(f"     console: {m.text}"))
    page.goto(f"{origins(port)[origin]}/harness/upload.html")
    page.wait_for_function("() => window.harnessReady === true")
    return page


def add_files(page, *paths: Path) -> None:
    page.set_input_files("[data-upload-input]", [str(p) for p in paths])


def wait_stages(page, expected: dict[str, str], timeout: float = 60_000) -> dict:
    """Wait until the named rows reach their stages; returns all row stages."""
    try:
        page.wait_for_function(
            "exp => Object.entries(exp).every(([n, s]) => rowStages()[n] === s)",
            arg=expected,
            timeout=timeout,
        )
    except Exception:
        pass
    return page.evaluate("rowStages()")


def detail_of(page, name: str) -> str:
    return page.evaluate(
        """name => [...document.querySelectorAll('.upload-row')]
            .find(r => r.querySelector('.upload-name').textContent === name)
            ?.querySelector('.upload-detail').textContent""",
        name,
    )


def no_backwards(page, what: str) -> None:
    backwards = page.evaluate("uploadLog.backwards")
    check(not backwards, f"{what}: progress never went backwards {backwards[:2]}")


# ---- scenarios -----------------------------------------------------------------------------


@scenario
def batch_on_plain_http(context, files: Files, shots: Path | None) -> None:
    """Small (POST) + multipart + the small one again under another name, one batch."""
    state = MockState(storage_delay_per_mib=0.2)
    small = files.make("small.mp4", 1_000_000)
    twin = files.make("small copy.mp4", 0, seed=small.read_bytes())
    big = files.make("big.mkv", 23 * MiB + 7)
    with mock_servers(state) as port:
        page = open_page(context, port, origin="plain-http")
        check(not page.evaluate("isSecureContext"), "page runs on a non-secure origin")
        add_files(page, small, big, twin)
        if shots:
            page.wait_for_function(
                "() => document.querySelector('.upload-row:nth-child(2) .progress-upload')"
                ".value > 40"
            )
            page.screenshot(path=str(shots / "upload-mid.png"), full_page=True)
        stages = wait_stages(
            page, {"small.mp4": "done", "big.mkv": "done", "small copy.mp4": "duplicate"}
        )
        check(
            stages == {"small.mp4": "done", "big.mkv": "done", "small copy.mp4": "duplicate"},
            f"stages {stages}",
        )
        if shots:
            time.sleep(0.5)  # let the bars' transitions end
            page.screenshot(path=str(shots / "upload-done.png"), full_page=True)
        r = state.requests
        check(r["POST /api/files/check"] == 1, f"one bulk check for the batch ({dict(r)})")
        check(r["POST /api/uploads/<id>/parts"] == 1, "one parts request for 5 parts")
        check(r["GET /api/uploads/<id>"] == 0, "no status call for a new upload")
        check(state.csrf_failures == 0, "every API call carried the CSRF token and JSON type")
        shas = {f["name"]: f["sha256"] for f in state.files.values()}
        check(shas == {"small.mp4": sha(small), "big.mkv": sha(big)}, "stored hashes match")
        check(page.evaluate("uploadLog.filesChanged") == 2, "files-changed fired once per file")
        check("small.mp4" in detail_of(page, "small copy.mp4"), "the twin names its match")
        link = page.locator(".upload-row[data-stage=duplicate] .upload-detail a")
        check(link.get_attribute("href") == "/files/1", "duplicate links to the movie page")
        no_backwards(page, "batch")


@scenario
def duplicate_of_library_file(context, files: Files, shots: Path | None) -> None:
    state = MockState()
    movie = files.make("movie.mp4", 300_000)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, movie)
        wait_stages(page, {"movie.mp4": "done"})
        page.reload()
        page.wait_for_function("() => window.harnessReady === true")
        renamed = files.make("renamed.mp4", 0, seed=movie.read_bytes())
        add_files(page, renamed)
        stages = wait_stages(page, {"renamed.mp4": "duplicate"})
        check(stages == {"renamed.mp4": "duplicate"}, f"a re-added file is a duplicate {stages}")
        check("movie.mp4" in detail_of(page, "renamed.mp4"), "it names the existing file")
        check(state.requests["POST /api/uploads"] == 1, "no upload was created for it")


@scenario
def retries_and_expired_urls(context, files: Files, shots: Path | None) -> None:
    state = MockState()
    state.part_faults[2] = ["500", "drop"]
    state.part_faults[3] = ["403"]
    state.post_faults.extend(["503"])
    big = files.make("faulty.mkv", 20 * MiB + 1)
    small = files.make("faulty-small.mp4", 50_000)
    with mock_servers(state) as port:
        page = open_page(context, port)
        t0 = time.monotonic()
        add_files(page, big, small)
        stages = wait_stages(page, {"faulty.mkv": "done", "faulty-small.mp4": "done"})
        check(
            stages == {"faulty.mkv": "done", "faulty-small.mp4": "done"},
            f"done despite 500, dropped connection, 403, 503 ({stages})",
        )
        parts_calls = state.requests["POST /api/uploads/<id>/parts"]
        check(parts_calls == 2, f"a 403 fetched one fresh URL ({parts_calls} parts calls)")
        tries = [n for _, n in state.put_parts]
        check(tries.count(2) == 3 and tries.count(3) == 2, f"part tries {sorted(tries)}")
        check(time.monotonic() - t0 >= 1.0, "the second retry waited (backoff 0, 1 s)")
        no_backwards(page, "retries")


@scenario
def etag_not_exposed(context, files: Files, shots: Path | None) -> None:
    state = MockState(expose_etag=False)
    big = files.make("no-etag.mkv", 13 * MiB)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, big)
        stages = wait_stages(page, {"no-etag.mkv": "failed"})
        check(stages == {"no-etag.mkv": "failed"}, f"fails without a readable ETag ({stages})")
        message = detail_of(page, "no-etag.mkv")
        check("ETag" in message and "CORS" in message, f"says why: {message!r}")
        if shots:
            page.screenshot(path=str(shots / "upload-failed.png"), full_page=True)


@scenario
def storage_unavailable_then_retry(context, files: Files, shots: Path | None) -> None:
    state = MockState()
    state.api_faults["POST /api/uploads"] = ["503"]
    movie = files.make("later.mp4", 200_000)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, movie)
        wait_stages(page, {"later.mp4": "failed"})
        message = detail_of(page, "later.mp4")
        check("storage unavailable" in message, f"shows the server's message: {message!r}")
        page.click(".upload-row[data-stage=failed] [data-action=retry]")
        stages = wait_stages(page, {"later.mp4": "done"})
        check(stages == {"later.mp4": "done"}, f"retry succeeds ({stages})")


@scenario
def complete_unavailable_then_retry(context, files: Files, shots: Path | None) -> None:
    """A 503 at complete keeps the upload: the retry only completes, sending no bytes."""
    state = MockState()
    state.api_faults["POST /api/uploads/<id>/complete"] = ["503"]
    big = files.make("complete-later.mkv", 12 * MiB + 1)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, big)
        wait_stages(page, {"complete-later.mkv": "failed"})
        puts = len(state.put_parts)
        page.click(".upload-row[data-stage=failed] [data-action=retry]")
        stages = wait_stages(page, {"complete-later.mkv": "done"})
        check(stages == {"complete-later.mkv": "done"}, f"retry completes ({stages})")
        check(len(state.put_parts) == puts, "no part was sent again")
        check(state.requests["POST /api/uploads"] == 1, "the upload was not created again")


@scenario
def cancel_multipart(context, files: Files, shots: Path | None) -> None:
    state = MockState(storage_delay_per_mib=0.15)
    big = files.make("cancel-me.mkv", 30 * MiB)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, big)
        page.wait_for_function("() => rowStages()['cancel-me.mkv'] === 'uploading'")
        page.wait_for_function(
            "() => /MB\\/s · .* left/.test(document.querySelector('.upload-detail').textContent)"
        )
        shown = page.locator(".upload-detail").text_content()
        check(True, f"speed and time left are shown: {shown!r}")
        page.click("[data-action=cancel]")
        stages = wait_stages(page, {"cancel-me.mkv": "cancelled"})
        check(stages == {"cancel-me.mkv": "cancelled"}, f"cancelled ({stages})")
        deadline = time.monotonic() + 5
        while state.uploads and time.monotonic() < deadline:
            time.sleep(0.05)
        check(
            state.requests["DELETE /api/uploads/<id>"] == 1 and not state.uploads,
            "the pending upload was deleted",
        )
        check(page.locator("[data-action=retry]").is_visible(), "a cancelled file can be retried")


@scenario
def resume_after_reload(context, files: Files, shots: Path | None) -> None:
    state = MockState(storage_delay_per_mib=0.1)
    big = files.make("resume.mkv", 40 * MiB + 3)  # 9 parts of 5 MiB
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, big)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uploads = list(state.uploads.values())
            if uploads and len(uploads[0].parts) >= 4:
                break
            time.sleep(0.05)
        page.close()  # the tab goes away mid-upload
        state.storage_delay_per_mib = 0
        before = len(state.put_parts)
        page = open_page(context, port)
        add_files(page, big)
        stages = wait_stages(page, {"resume.mkv": "done"})
        check(stages == {"resume.mkv": "done"}, f"resumed upload completes ({stages})")
        # What the store held when the page asked (requests cut off by the close may
        # still have landed after it closed).
        stored = set(state.status_answers[0]) if state.status_answers else set()
        resent = {n for _, n in state.put_parts[before:]}
        check(
            not (resent & stored) and resent | stored == set(range(1, 10)),
            f"only missing parts sent: stored {sorted(stored)}, sent {sorted(resent)}",
        )
        check(state.requests["GET /api/uploads/<id>"] == 1, "one status call to resume")
        shown = page.evaluate("uploadLog.events.filter(e => e.stage === 'uploading')[0]?.up")
        check(
            shown == len(stored) * 5 * MiB, f"progress starts at the parts already stored ({shown})"
        )
        no_backwards(page, "resume")


@scenario
def offline_then_online(context, files: Files, shots: Path | None) -> None:
    state = MockState(storage_delay_per_mib=0.08)
    big = files.make("offline.mkv", 25 * MiB)
    with mock_servers(state) as port:
        page = open_page(context, port)
        add_files(page, big)
        page.wait_for_function("() => rowStages()['offline.mkv'] === 'uploading'")
        time.sleep(0.3)
        context.set_offline(True)
        time.sleep(2.5)
        check(
            page.evaluate("rowStages()['offline.mkv']") == "uploading",
            "still uploading (waiting) while offline",
        )
        context.set_offline(False)
        stages = wait_stages(page, {"offline.mkv": "done"})
        check(stages == {"offline.mkv": "done"}, f"finishes once back online ({stages})")
        no_backwards(page, "offline")


@scenario
def drop_anywhere(context, files: Files, shots: Path | None) -> None:
    state = MockState()
    with mock_servers(state) as port:
        page = open_page(context, port)
        if shots:
            page.screenshot(path=str(shots / "library-empty.png"), full_page=True)
        page.evaluate("""() => {
            const dt = new DataTransfer();
            const bytes = new Uint8Array(4096).fill(7);
            dt.items.add(new File([bytes], 'dropped.webm', {type: 'video/webm'}));
            window.dropData = dt;
            const target = document.querySelector('.empty-state');
            const init = {bubbles: true, cancelable: true, dataTransfer: dt};
            target.dispatchEvent(new DragEvent('dragenter', init));
            // A real drag repeats dragover every ~50 ms while it hovers.
            const over = () => target.dispatchEvent(new DragEvent('dragover', init));
            over();
            window.dragTimer = setInterval(over, 50);
        }""")
        check(page.locator(".drop-overlay").is_visible(), "the overlay shows while dragging")
        if shots:
            time.sleep(0.2)  # the overlay fades in
            page.screenshot(path=str(shots / "drop-overlay.png"))
        page.evaluate("""() => {
            clearInterval(window.dragTimer);
            const init = {bubbles: true, cancelable: true, dataTransfer: window.dropData};
            document.querySelector('.empty-state').dispatchEvent(new DragEvent('drop', init));
        }""")
        stages = wait_stages(page, {"dropped.webm": "done"})
        check(stages == {"dropped.webm": "done"}, f"a dropped file is uploaded ({stages})")
        check(not page.locator(".drop-overlay").is_visible(), "the overlay hides after the drop")
        page.click("[data-upload-clear]")
        check(page.locator(".upload-row").count() == 0, "clear finished empties the list")

        # app.js: a form with data-confirm asks first; dismissing keeps the page.
        questions = []
        page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
        page.evaluate("document.querySelector('#confirm-form').requestSubmit()")
        check(questions and "Delete" in questions[0], f"data-confirm asked {questions}")
        check(page.url.endswith("/harness/upload.html"), "dismissing did not submit")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, help="save screenshots in this folder")
    parser.add_argument("-k", dest="only", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        files = Files(Path(tmp))
        for name, fn in SCENARIOS.items():
            if args.only and args.only not in name:
                continue
            print(f"-- {name}", flush=True)
            context = browser.new_context(viewport={"width": 1100, "height": 800})
            try:
                fn(context, files, args.screenshots)
            except Exception as error:  # a scenario crashing is one failure, not the end
                check(False, f"{name} crashed: {error!r}")
            finally:
                context.close()
    print(f"\n{len(failures)} failure(s)" if failures else "\nall upload checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
