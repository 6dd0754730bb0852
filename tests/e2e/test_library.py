"""The library page in headless Chromium: upload, progress, list, duplicates, download, play."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Response, Route, expect
from playwright.sync_api import Error as PlaywrightError
from sqlmodel import select

from movievault import claims, db
from movievault.backends import get_storage
from movievault.models import PendingUpload, StoredFile
from tests.drops import DROP_FILE
from tests.e2e.support import (
    add_files,
    api_calls,
    chromium_resolving,
    expect_stage,
    file_sha256,
    list_row,
    media_loaded,
    screenshot,
    sign_in_page,
    store_keys,
    stored_digests,
    upload_row,
    write_random,
    write_wav,
)
from tests.support import MIB, LiveServer, add_file, make_user, user_id

# Records, in the page, every stage and upload-bar value each row shows, and marks the
# window: the mark still being there later proves the page was never reloaded.
WATCH_ROWS = """() => {
  window.mvWatch = { loadedOnce: true, stages: {}, upload: {} };
  const rows = document.querySelector("[data-upload-rows]");
  new MutationObserver((records) => {
    for (const record of records) {
      const row = record.target.closest(".upload-row");
      const name = row?.querySelector(".upload-name")?.title;
      if (!name) continue;
      if (record.attributeName === "data-stage") {
        (window.mvWatch.stages[name] ??= []).push(row.dataset.stage);
      } else if (record.target.matches("progress.progress-upload")) {
        (window.mvWatch.upload[name] ??= []).push(record.target.value);
      }
    }
  }).observe(rows, { subtree: true, attributes: true, attributeFilter: ["data-stage", "value"] });
}"""


def part_number_of(url: str) -> int:
    """The part a part URL is for (S3: its partNumber; the local store: its last segment)."""
    split = urlsplit(url)
    number = parse_qs(split.query).get("partNumber")
    return int(number[0]) if number else int(split.path.rsplit("/", 1)[1])


def is_part_put(route: Route) -> bool:
    """Whether the request is a multipart part sent to the store (S3 or the local store)."""
    return route.request.method == "PUT"


class PartGate:
    """Lets the first parts through and holds the others, so a test sees an upload midway.

    Unlike network throttling, this stops the bar at a known place whatever the machine.
    """

    def __init__(self, page: Page, let_through: int) -> None:
        self.page, self.let_through, self.held = page, let_through, []
        self.passed: list[int] = []
        page.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        if not is_part_put(route):
            route.fallback()
        elif len(self.passed) < self.let_through:
            self.passed.append(len(route.request.post_data_buffer or b""))
            route.continue_()
        else:
            self.held.append(route)

    def stop(self) -> None:
        """Hold no more parts."""
        self.page.unroute("**/*", self._route)

    def drop(self) -> None:
        """Fail the held parts in the browser (never sent), and hold no more."""
        for route in self.held:
            with contextlib.suppress(PlaywrightError):  # the page may have cancelled it
                route.abort()
        self.stop()

    def open(self) -> None:
        """Send the held parts on, and every later one."""
        for route in self.held:
            route.continue_()
        self.stop()


def test_upload_progress_list_and_duplicate(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """A form upload and a multipart one show progress, join the list, and are not sent twice."""
    small, big = tmp_path / "small clip.mp4", tmp_path / "big movie.mp4"
    write_random(small, 300 * 1024)
    write_random(big, 16 * MIB)  # parts of 5, 5, 5 and 1 MiB
    expect(page.locator("#list-summary")).to_contain_text("0 movies")
    expect(page.locator(".empty-state")).to_be_visible()
    screenshot(page, "library-empty")

    page.evaluate(WATCH_ROWS)
    gate = PartGate(page, let_through=2)
    add_files(page, small, big)
    bar = upload_row(page, big.name).locator("progress.progress-upload")
    # It stops at two of four parts stored (10 of 16 MiB) until the gate opens.
    page.wait_for_function(
        "bar => bar.value >= 15 && bar.value <= 70", arg=bar.element_handle(), timeout=30_000
    )
    expect_stage(page, small.name, "done")
    screenshot(page, "library-uploading")
    gate.open()
    expect_stage(page, big.name, "done")

    # The list refreshed itself through htmx: no reload happened.
    expect(list_row(page, small.name)).to_be_visible()
    expect(list_row(page, big.name)).to_be_visible()
    expect(page.locator("#list-summary")).to_contain_text("2 movies")
    watch = page.evaluate("window.mvWatch")
    assert watch["loadedOnce"] is True
    for name in (small.name, big.name):
        stages = watch["stages"][name]
        assert stages[-1] == "done", stages
        # Rows are drawn once a frame: a stage shorter than that (hashing 300 KB, or a big
        # file's fingerprint) may never be shown; its bar says it was done.
        assert {"uploading", "finishing"} <= set(stages), stages
        expect(upload_row(page, name).locator("progress.progress-hash")).to_have_attribute(
            "value", "100"
        )
    values = watch["upload"][big.name]
    assert any(0 < value < 100 for value in values), values
    assert values == sorted(values), f"the upload bar ran backwards: {values}"
    assert values[-1] == 100
    expect(upload_row(page, big.name).locator(".upload-detail")).to_have_text(
        f"Added to your library as {big.name}."
    )
    screenshot(page, "library-after-upload")

    # The same bytes under another name: reported as a duplicate of the first, not stored.
    keys = store_keys(e2e_server.app)
    assert len(keys) == 2
    again = tmp_path / "copy of small.mp4"
    again.write_bytes(small.read_bytes())
    add_files(page, again)
    expect_stage(page, again.name, "duplicate")
    expect(upload_row(page, again.name).locator(".upload-detail")).to_have_text(
        f"Already in your library as {small.name}. Nothing was uploaded."
    )
    assert store_keys(e2e_server.app) == keys
    expect(page.locator("#list-summary")).to_contain_text("2 movies")
    assert page.evaluate("window.mvWatch.loadedOnce") is True
    # The duplicate's row links to the movie it matches, like the list does.
    match = upload_row(page, again.name).locator(".upload-detail a")
    expect(match).to_have_attribute(
        "href",
        list_row(page, small.name).get_by_role("link", name=small.name).get_attribute("href"),
    )
    screenshot(page, "library-duplicate")
    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing may stick out sideways on a phone: the rows and the table fit the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "library-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Clear finished").click()
    expect(page.locator(".upload-row")).to_have_count(0)
    expect(page.get_by_role("button", name="Clear finished")).to_be_hidden()


def test_big_file_is_hashed_while_it_uploads(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """Above the multipart threshold: fingerprint checked, then hashing and sending at once."""
    source = tmp_path / "hashed along.mkv"
    digest = write_random(source, 16 * MIB)
    calls = api_calls(page)
    add_files(page, source)
    expect_stage(page, source.name, "done")

    paths = [path for path, _ in calls]
    assert paths[:2] == ["/api/files/check", "/api/uploads"], paths
    (checked,) = calls[0][1]["files"]
    assert set(checked) == {"fingerprint", "size"}
    created = calls[1][1]
    assert "sha256" not in created and created["fingerprint"] == checked["fingerprint"]
    data = source.read_bytes()
    assert checked["fingerprint"] == hashlib.sha256(data[:MIB] + data[-MIB:]).hexdigest()
    # The whole file's hash, computed while the parts were sent, comes with complete.
    complete = next(body for path, body in calls if path.endswith("/complete"))
    # No part list: the app takes it from the store, so complete stays small.
    assert complete == {"sha256": digest}
    assert stored_digests(e2e_server.app) == [digest]
    expect(list_row(page, source.name)).to_be_visible()
    with db.session_scope(e2e_server.app) as session:
        (stored,) = session.exec(select(StoredFile)).all()
    assert (stored.sha256, stored.fingerprint) == (digest, checked["fingerprint"])


def test_big_file_that_might_be_a_duplicate_is_hashed_before_any_byte_is_sent(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """A possible match (same size, same or unknown fingerprint) is hashed and checked first."""
    first, copy, other, third = (
        tmp_path / n for n in ("first.mkv", "copy.mkv", "other.mkv", "third.mkv")
    )
    write_random(first, 16 * MIB)
    copy.write_bytes(first.read_bytes())
    other_digest, third_digest = write_random(other, 16 * MIB), write_random(third, 16 * MIB)
    add_files(page, first)
    expect_stage(page, first.name, "done")

    calls = api_calls(page)
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    add_files(page, copy, other)
    expect_stage(page, copy.name, "duplicate")
    expect_stage(page, other.name, "done")
    checks = [body["files"] for path, body in calls if path == "/api/files/check"]
    creates = [body for path, body in calls if path == "/api/uploads"]
    # Both are checked by fingerprint. The copy's matches the first movie's, so it is hashed
    # in full and found by its sha256; the other's differs, so it is hashed while it uploads.
    assert [sorted(f) for f in checks[0]] == [["fingerprint", "size"]] * 2
    assert [sorted(f) for f in checks[1]] == [["sha256", "size"]]
    assert [(c["name"], "sha256" in c) for c in creates] == [(other.name, False)]
    assert len(puts) == 4  # the other file's four parts; none of the copy's

    # A movie recorded without a fingerprint (by a script, say) might be any file of its size.
    with db.session_scope(e2e_server.app) as session:
        for stored in session.exec(select(StoredFile)).all():
            stored.fingerprint = None
            session.add(stored)
        session.commit()
    calls.clear()
    add_files(page, third)
    expect_stage(page, third.name, "done")
    creates = [body for path, body in calls if path == "/api/uploads"]
    assert [(c["name"], c.get("sha256")) for c in creates] == [(third.name, third_digest)]
    assert len(puts) == 8
    digests = set(stored_digests(e2e_server.app))
    assert len(digests) == 3 and {other_digest, third_digest} <= digests
    expect(page.locator("#list-summary")).to_contain_text("3 movies")


def test_download_matches_source(page: Page, tmp_path: Path) -> None:
    """The Download button saves the very bytes that were uploaded (multipart assembled)."""
    source = tmp_path / "holiday.mkv"
    digest = write_random(source, 7 * MIB)  # above the threshold: two parts
    add_files(page, source)
    expect_stage(page, source.name, "done")
    row = list_row(page, source.name)
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == source.name
    assert file_sha256(Path(download.path())) == digest


def test_movie_page_video_loads_metadata(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """The movie page's player loads the media's metadata from the signed stream URL."""
    clip = tmp_path / "tone.wav"
    write_wav(clip, seconds=1.5)
    add_files(page, clip)
    expect_stage(page, clip.name, "done")
    list_row(page, clip.name).get_by_role("link", name="Play").click()
    expect(page.locator(".movie-file")).to_have_text(clip.name)
    state = media_loaded(page)
    assert state["error"] is None
    assert abs(state["duration"] - 1.5) < 0.05, state
    screenshot(page, "movie-page")


def test_rename_and_delete_in_the_list(
    page: Page, e2e_server: LiveServer, tmp_path: Path, expected_console_errors: list[str]
) -> None:
    """Inline rename and confirmed delete go through htmx without leaving the page."""
    expected_console_errors.append(r"status of 422")
    source = tmp_path / "untitled.mp4"
    write_random(source, 64 * 1024)
    page.evaluate(WATCH_ROWS)
    add_files(page, source)
    expect_stage(page, source.name, "done")
    row = list_row(page, source.name)
    row.get_by_role("button", name="Rename").click()

    field = page.locator("#file-list input[name=name]")
    expect(field).to_have_value(source.name)
    # A name of blanks passes the browser's `required` but not the server: the form stays
    # open with the reason (a 422 fragment that htmx swaps in).
    field.fill("   ")
    page.locator("#file-list").get_by_role("button", name="Save").click()
    expect(page.locator("#file-list .form-error")).to_have_text(
        "name must contain at least one visible character."
    )
    screenshot(page, "library-rename-error")
    field = page.locator("#file-list input[name=name]")
    field.fill("The Long Holiday (1999).mp4")
    page.locator("#file-list").get_by_role("button", name="Save").click()
    renamed = list_row(page, "The Long Holiday (1999).mp4")
    expect(renamed).to_be_visible()
    expect(list_row(page, source.name)).to_have_count(0)
    assert len(store_keys(e2e_server.app)) == 1

    questions: list[str] = []

    def answer(dialog: object) -> None:
        """Record the confirmation question and accept it."""
        questions.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.once("dialog", answer)
    renamed.get_by_role("button", name="Delete").click()
    expect(page.locator("#file-list .file-row")).to_have_count(0)
    expect(page.locator("#list-summary")).to_contain_text("0 movies")
    expect(page.locator(".empty-state")).to_be_visible()
    assert questions and "The Long Holiday (1999).mp4" in questions[0]
    assert store_keys(e2e_server.app) == []
    assert page.evaluate("window.mvWatch.loadedOnce") is True


def test_interrupted_upload_resumes_with_missing_parts(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """Cut off after two parts, the same file added after a reload sends only the other two."""
    source = tmp_path / "long film.mp4"
    digest = write_random(source, 16 * MIB)  # parts of 5, 5, 5 and 1 MiB
    first_sizes: list[int] = []
    held: list[Route] = []

    def two_then_hold(route: Route) -> None:
        """Let two parts through; hold the others until the page goes away."""
        if len(first_sizes) < 2:
            first_sizes.append(len(route.request.post_data_buffer or b""))
            route.continue_()
        else:
            held.append(route)

    page.route(
        "**/*", lambda route: two_then_hold(route) if is_part_put(route) else route.fallback()
    )
    stored: list[Response] = []

    def second_part_stored(response: Response) -> bool:
        """True once the store has answered for both parts let through."""
        if response.request.method == "PUT" and response.ok:
            stored.append(response)
        return len(stored) == 2

    # One waiter that counts: two nested waiters for "a PUT answered" would both be
    # satisfied by the first answer, and the reload could then cut off the second part.
    with page.expect_response(second_part_stored):
        add_files(page, source)
    expect_stage(page, source.name, "uploading")
    assert len(first_sizes) == 2
    # The store holds those two parts now (it answered); the other two hang until the
    # reload cuts them off, as a closed tab or a lost network would.
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while uploading
    page.reload()
    page.unroute("**/*")
    expect(upload_row(page, source.name)).to_have_count(0)
    expect(page.locator("#list-summary")).to_contain_text("0 movies")

    resumed_sizes: list[int] = []

    def count(route: Route) -> None:
        """Count the parts sent after the reload."""
        resumed_sizes.append(len(route.request.post_data_buffer or b""))
        route.continue_()

    page.route("**/*", lambda route: count(route) if is_part_put(route) else route.fallback())
    add_files(page, source)
    expect_stage(page, source.name, "done")
    assert len(resumed_sizes) == 2, resumed_sizes
    assert sorted(first_sizes + resumed_sizes) == [1 * MIB, 5 * MIB, 5 * MIB, 5 * MIB]
    expect(list_row(page, source.name)).to_be_visible()
    assert stored_digests(e2e_server.app) == [digest]


def test_failed_part_is_retried(
    page: Page, e2e_server: LiveServer, tmp_path: Path, expected_console_errors: list[str]
) -> None:
    """A part whose connection breaks is sent again; the upload ends with the same bytes."""
    expected_console_errors.append(r"ERR_CONNECTION_RESET|ERR_FAILED")
    source = tmp_path / "flaky.mp4"
    digest = write_random(source, 11 * MIB)  # parts of 5, 5 and 1 MiB
    sent: list[str] = []

    def break_first(route: Route) -> None:
        """Reset the connection of the first part request, let every later one through."""
        sent.append(route.request.url)
        if len(sent) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.evaluate(WATCH_ROWS)
    page.route("**/*", lambda route: break_first(route) if is_part_put(route) else route.fallback())
    add_files(page, source)
    expect_stage(page, source.name, "done")
    assert len(sent) == 4, sent  # three parts, one of them twice
    assert sent[0] in sent[1:], "the broken part was not sent again"
    values = page.evaluate("window.mvWatch.upload")[source.name]
    assert values == sorted(values), f"the upload bar ran backwards: {values}"
    assert stored_digests(e2e_server.app) == [digest]


def test_expired_part_url_is_replaced_and_the_upload_finishes(
    page: Page, e2e_server: LiveServer, tmp_path: Path, expected_console_errors: list[str]
) -> None:
    """A part PUT answered 403 (its URL expired) gets a fresh URL and is sent again."""
    expected_console_errors.append(r"403")
    source = tmp_path / "slow start.mp4"
    digest = write_random(source, 11 * MIB)  # parts of 5, 5 and 1 MiB
    calls = api_calls(page)
    refused: list[str] = []

    def expire_first(route: Route) -> None:
        """Answer the first part request as S3 answers an expired URL; pass the others."""
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        origin = route.request.headers.get("origin", "*")
        route.fulfill(status=403, body="<Error><Code>AccessDenied</Code></Error>",
                      headers={"Access-Control-Allow-Origin": origin})

    page.route(
        "**/*", lambda route: expire_first(route) if is_part_put(route) else route.fallback()
    )
    add_files(page, source)
    expect_stage(page, source.name, "done")
    # Each part's URL is asked for once its hash is known (with the hash: the store checks
    # it), several at a time when they are; the refused part's once more, alone.
    signing = [[part["number"] for part in body["parts"]]
               for path, body in calls if path.endswith("/parts")]
    refused_part = part_number_of(refused[0])
    asked = [n for batch in signing for n in batch]
    assert sorted(asked) == sorted([1, 2, 3, refused_part]), signing
    first = min(i for i, batch in enumerate(signing) if refused_part in batch)
    assert [refused_part] in signing[first + 1 :], signing
    assert stored_digests(e2e_server.app) == [digest]


def test_files_dropped_anywhere_on_the_page_are_uploaded(
    page: Page, e2e_server: LiveServer
) -> None:
    """Dragging shows the drop overlay; dropping on the page (not a target) uploads the file."""
    dropped = page.evaluate(DROP_FILE)
    assert dropped["overlay"] is True
    expect(page.locator(".drop-overlay")).to_be_hidden()
    expect_stage(page, "dropped clip.mp4", "done")
    expect(list_row(page, "dropped clip.mp4")).to_be_visible()
    assert stored_digests(e2e_server.app) == [hashlib.sha256(bytes(dropped["bytes"])).hexdigest()]


def test_storage_down_shows_error_and_retry_works(
    page: Page,
    e2e_server: LiveServer,
    tmp_path: Path,
    expected_console_errors: list[str],
) -> None:
    """A store that cannot be reached fails the file with the reason; Retry then succeeds."""
    from movievault.errors import StorageUnavailable

    expected_console_errors.append(r"status of 503")
    storage = get_storage(e2e_server.app)

    def down() -> None:
        """The store does not answer."""
        raise StorageUnavailable("The storage cannot be reached right now. Try again later.")

    source = tmp_path / "patience.mp4"
    digest = write_random(source, 200 * 1024)
    row = upload_row(page, source.name)
    retry = row.get_by_role("button", name=f"Retry uploading {source.name}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "ping", down)
        add_files(page, source)
        expect_stage(page, source.name, "failed")
        expect(row.locator(".upload-detail")).to_contain_text("storage cannot be reached")
        expect(retry).to_be_visible()
        screenshot(page, "library-storage-down")
        assert store_keys(e2e_server.app) == []

    retry.click()
    expect_stage(page, source.name, "done")
    expect(list_row(page, source.name)).to_be_visible()
    assert stored_digests(e2e_server.app) == [digest]


COMPLETE = re.compile(r"/api/uploads/[^/]+/complete$")


@pytest.mark.parametrize("backend", ["local"])  # the page's side: any store does
def test_complete_the_proxy_gave_up_on_is_retried_without_sending_again(
    page: Page, e2e_server: LiveServer, tmp_path: Path, expected_console_errors: list[str]
) -> None:
    """A proxy answers 504 for a complete the app went on to finish (the parts of a big
    movie take minutes to join): Retry asks for that complete again, and nothing else."""
    expected_console_errors.append(r"status of 504")
    source = tmp_path / "long join.mkv"
    digest = write_random(source, 11 * MIB)  # parts of 5, 5 and 1 MiB
    calls = api_calls(page)
    puts: list[str] = []
    page.on("request", lambda request: request.method == "PUT" and puts.append(request.url))

    def proxy_gives_up(route: Route) -> None:
        """The app gets the request and answers; the page gets the proxy's timeout."""
        route.fetch()
        route.fulfill(status=504, content_type="text/html",
                      body="<html><body><h1>504 Gateway Time-out</h1></body></html>")

    page.route(COMPLETE, proxy_gives_up, times=1)
    add_files(page, source)
    expect_stage(page, source.name, "failed")
    row = upload_row(page, source.name)
    expect(row.locator(".upload-detail")).to_contain_text("may still be adding this file")
    screenshot(page, "library-complete-timed-out")
    sent_before, calls_before = len(puts), len(calls)

    row.get_by_role("button", name=f"Retry uploading {source.name}").click()
    expect_stage(page, source.name, "done")
    expect(row.locator(".upload-detail")).to_have_text(f"Added to your library as {source.name}.")
    expect(list_row(page, source.name)).to_be_visible()
    screenshot(page, "library-complete-timed-out-retried")
    retried = [path for path, _ in calls[calls_before:]]
    assert len(retried) == 1 and COMPLETE.search(retried[0]), retried
    assert len(puts) == sent_before == 3
    assert stored_digests(e2e_server.app) == [digest]


@pytest.mark.parametrize("backend", ["local"])  # the page's side: any store does
def test_retrying_a_complete_the_server_forgot_meanwhile_sends_the_file_again(
    page: Page, e2e_server: LiveServer, tmp_path: Path, expected_console_errors: list[str]
) -> None:
    """The answer to complete was lost, and the upload was removed before Retry (expired
    and collected, or cancelled from another tab): Retry finds it gone (404) and sends the
    file again, in the same click."""
    expected_console_errors.append(r"status of (504|404)")
    app = e2e_server.app
    source = tmp_path / "forgotten.mp4"
    digest = write_random(source, 200 * 1024)
    page.route(COMPLETE, lambda route: route.fulfill(status=504, body="Gateway Time-out"),
               times=1)
    add_files(page, source)
    expect_stage(page, source.name, "failed")
    with db.session_scope(app) as session:
        (upload,) = session.exec(select(PendingUpload)).all()
        assert claims.claim_and_discard(session=session, storage=get_storage(app), upload=upload)
    calls = api_calls(page)

    retry = f"Retry uploading {source.name}"
    upload_row(page, source.name).get_by_role("button", name=retry).click()
    expect_stage(page, source.name, "done")
    paths = [path for path, _ in calls]
    assert COMPLETE.search(paths[0]) and "/api/uploads" in paths[1:] and COMPLETE.search(
        paths[-1]), paths
    assert stored_digests(app) == [digest]
    expect(list_row(page, source.name)).to_be_visible()


def test_search_and_sort_without_reload(page: Page, tmp_path: Path) -> None:
    """Typing in the search box and choosing a sort swap the list through htmx."""
    alpha, beta = tmp_path / "Alpha Centauri.mp4", tmp_path / "Beta Max.mp4"
    write_random(alpha, 20 * 1024)
    write_random(beta, 90 * 1024)
    page.evaluate(WATCH_ROWS)
    add_files(page, alpha, beta)
    expect_stage(page, alpha.name, "done")
    expect_stage(page, beta.name, "done")
    expect(page.locator("#list-summary")).to_contain_text("2 movies")
    names = page.locator("#file-list .file-name")

    page.locator("#search").press_sequentially("centau", delay=40)
    expect(names).to_have_text([alpha.name])
    expect(page.locator("#list-summary")).to_contain_text("1 movie matches “centau”")
    assert "q=centau" in page.url  # the search is in the address bar, so it can be shared
    page.locator("#search").fill("nothing like this")
    expect(page.locator(".empty-state")).to_contain_text("No movies match “nothing like this”")
    page.locator("#search").fill("")
    expect(names).to_have_count(2)

    page.locator("#sort").select_option("-size")
    expect(names).to_have_text([beta.name, alpha.name])
    page.locator("#sort").select_option("name")
    expect(names).to_have_text([alpha.name, beta.name])
    page.locator("#sort").select_option("-name")
    expect(names).to_have_text([beta.name, alpha.name])
    assert page.evaluate("window.mvWatch.loadedOnce") is True


def test_cancel_mid_upload_then_retry(page: Page, e2e_server: LiveServer, tmp_path: Path) -> None:
    """Cancel stops a multipart upload and drops it on the server; Retry starts it afresh."""
    source = tmp_path / "second thoughts.mp4"
    digest = write_random(source, 16 * MIB)
    gate = PartGate(page, let_through=1)
    # One part stored, the others held in the browser: nothing is cut off half-sent.
    with page.expect_response(lambda r: r.request.method == "PUT" and r.ok):
        add_files(page, source)
    row = upload_row(page, source.name)
    bar = row.locator("progress.progress-upload")
    page.wait_for_function("bar => bar.value >= 5", arg=bar.element_handle(), timeout=30_000)
    with page.expect_response(lambda r: r.request.method == "DELETE") as dropped:
        row.get_by_role("button", name=f"Cancel uploading {source.name}").click()
    assert dropped.value.status == 204
    expect_stage(page, source.name, "cancelled")
    expect(row.locator(".upload-detail")).to_have_text("Cancelled.")
    with db.session_scope(e2e_server.app) as session:
        assert session.exec(select(PendingUpload)).all() == []
    assert store_keys(e2e_server.app) == []

    gate.drop()
    row.get_by_role("button", name=f"Retry uploading {source.name}").click()
    expect_stage(page, source.name, "done")
    assert stored_digests(e2e_server.app) == [digest]


def test_uploads_work_on_a_plain_http_lan_address(
    browser: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """Reached as http://<name>:<port>, as on a home network: no crypto.subtle, still hashing."""
    port = urlsplit(e2e_server.url).port
    lan = f"http://movievault.lan.test:{port}"
    # The bucket's CORS rules name the origin the browser uses (setup-bucket with PUBLIC_URL).
    get_storage(e2e_server.app).setup(public_url=lan, abort_after_days=7)
    make_user(e2e_server.app, "alice")
    other = chromium_resolving(browser, "movievault.lan.test")
    try:
        page = other.new_page()
        sign_in_page(page, lan)
        assert page.evaluate("[isSecureContext, typeof crypto.subtle]") == [False, "undefined"]
        small, big = tmp_path / "lan clip.mp4", tmp_path / "lan movie.mkv"
        digests = {write_random(small, 200_000), write_random(big, 11 * MIB)}
        add_files(page, small, big)
        expect_stage(page, small.name, "done")
        expect_stage(page, big.name, "done")
    finally:
        other.close()
    assert set(stored_digests(e2e_server.app)) == digests



# Counts, in the page, the polls of list rows htmx really sends (a poll it queues or drops
# is never counted), and every request it sends, by path.
COUNT_POLLS = """() => {
  window.mvPolls = 0;
  window.mvSent = [];
  document.body.addEventListener("htmx:beforeSend", (event) => {
    const path = event.detail.requestConfig.path;
    window.mvSent.push(path);
    if (/\\/files\\/\\d+\\/row/.test(path)) window.mvPolls += 1;
  });
}"""
#: The list's own requests: no byte of a movie goes to the store, one store is enough.
ONE_STORE = pytest.mark.parametrize("backend", ["local"])
ROW_POLL = re.compile(r"/files/\d+/row")
EDIT_FORM = re.compile(r"/files/\d+/edit")


class Held:
    """Requests matching a pattern, kept in the browser until the test lets them go."""

    def __init__(self, page: Page, pattern: re.Pattern[str]) -> None:
        self.routes: list[Route] = []
        page.route(pattern, self._hold)

    def _hold(self, route: Route) -> None:
        self.routes.append(route)

    def release(self) -> None:
        """Send the held requests on (those the page has given up on are skipped)."""
        for route in self.routes:
            with contextlib.suppress(PlaywrightError):
                route.continue_()


def library_being_analysed(page: Page, server: LiveServer, *names: str) -> None:
    """The library with movies still being analysed, its timers run only by the test."""
    alice = user_id(server.app, "alice")
    for name in names:
        add_file(server.app, alice, name, data=name.encode())
    now = time.time()
    page.clock.install(time=now)
    page.clock.pause_at(now + 1)
    page.goto(f"{server.url}/")
    page.evaluate(COUNT_POLLS)
    for name in names:
        expect(list_row(page, name)).to_have_attribute("hx-trigger", "every 2s")


def library_with(page: Page, server: LiveServer, name: str) -> int:
    """The library page showing one movie of alice's, its requests counted; alice's id."""
    alice = user_id(server.app, "alice")
    add_file(server.app, alice, name, data=name.encode())
    page.goto(f"{server.url}/")
    page.evaluate(COUNT_POLLS)
    return alice


@ONE_STORE
def test_rename_clicked_while_the_row_asks_about_itself_opens_the_form(
    page: Page, e2e_server: LiveServer
) -> None:
    """A row being analysed polls itself; a Rename click cancels the poll on its way (it was
    queued behind it before, then lost with the row the poll's answer replaced), and the
    next poll, due while that one was slow to answer, is not sent in its place."""
    library_being_analysed(page, e2e_server, "polling.mp4")
    polls = Held(page, ROW_POLL)
    with page.expect_request(ROW_POLL):
        page.clock.run_for(2_100)
    page.clock.run_for(2_000)  # the next poll falls due while the first is still out
    with page.expect_event("requestfailed", lambda r: bool(ROW_POLL.search(r.url))):
        list_row(page, "polling.mp4").get_by_role("button", name="Rename").click()
    field = page.locator("#file-list input[name=name]")
    expect(field).to_have_value("polling.mp4")
    polls.release()
    page.clock.run_for(60_000)  # the row being edited asks nothing more of the server
    assert page.evaluate("window.mvSent") == ["/files/1/row", "/files/1/edit"]
    expect(field).to_be_visible()
    screenshot(page, "library-rename-while-analysing")


@ONE_STORE
def test_rename_clicked_the_moment_a_poll_replaced_the_row_opens_the_form(
    page: Page, e2e_server: LiveServer
) -> None:
    """A poll's answer replaces the row every few seconds; a click on the new row's Rename
    right after works (htmx bound the new buttons only 20 ms after the swap, and a click
    in between did nothing)."""
    library_being_analysed(page, e2e_server, "swapped.mp4")
    polls = Held(page, ROW_POLL)
    with page.expect_request(ROW_POLL):
        page.clock.run_for(2_100)
    row = list_row(page, "swapped.mp4")
    old = row.element_handle()
    with page.expect_response(ROW_POLL):
        polls.release()
    page.wait_for_function("old => !old.isConnected", arg=old)  # swapped, clock still paused
    row.get_by_role("button", name="Rename").click()
    expect(page.locator("#file-list input[name=name]")).to_have_value("swapped.mp4")
    assert page.evaluate("window.mvSent") == ["/files/1/row", "/files/1/edit"]


@ONE_STORE
def test_a_poll_due_while_the_rename_form_is_on_its_way_waits(
    page: Page, e2e_server: LiveServer
) -> None:
    """A poll falling due while Rename's request is out is not sent, so its answer cannot
    replace the row the form is meant for."""
    library_being_analysed(page, e2e_server, "waiting.mp4")
    forms, polls = Held(page, EDIT_FORM), Held(page, ROW_POLL)
    with page.expect_request(EDIT_FORM):
        list_row(page, "waiting.mp4").get_by_role("button", name="Rename").click()
    page.clock.run_for(2_100)
    sent = page.evaluate("window.mvPolls")
    for route in polls.routes:  # had it been sent, its answer lands first
        with page.expect_response(ROW_POLL):
            route.continue_()
    forms.release()
    expect(page.locator("#file-list input[name=name]")).to_have_value("waiting.mp4")
    assert sent == 0


@ONE_STORE
def test_rows_being_analysed_do_not_wait_for_one_another_or_hold_up_the_list(
    page: Page, e2e_server: LiveServer
) -> None:
    """Each row polls on its own, and a refresh after an upload is sent while polls are out
    (all shared one queue keeping only its last request: rows starved, refreshes were lost)."""
    library_being_analysed(page, e2e_server, "first.mp4", "second.mp4")
    polls = Held(page, ROW_POLL)
    page.clock.run_for(2_100)
    assert page.evaluate("window.mvPolls") == 2
    with page.expect_request(lambda request: urlsplit(request.url).path == "/"):
        page.evaluate("document.body.dispatchEvent(new CustomEvent('files-changed'))")
    polls.release()
    expect(page.locator("#file-list .file-row")).to_have_count(2)


@ONE_STORE
def test_an_upload_finishing_while_a_row_is_renamed_leaves_the_form_alone(
    page: Page, e2e_server: LiveServer
) -> None:
    """The list's refresh after an upload waits for the rename under way (it would take the
    form and what was typed away), and comes once the name is saved."""
    app = e2e_server.app
    alice = library_with(page, e2e_server, "first.mp4")
    list_row(page, "first.mp4").get_by_role("button", name="Rename").click()
    field = page.locator("#file-list input[name=name]")
    field.fill("Renamed (2001).mp4")
    add_file(app, alice, "second.mp4", data=b"second")
    # As the upload panel does when a file is done; htmx handles it before this returns.
    page.evaluate("document.body.dispatchEvent(new CustomEvent('files-changed'))")
    assert "/" not in page.evaluate("window.mvSent")
    expect(field).to_have_value("Renamed (2001).mp4")
    screenshot(page, "library-rename-during-upload")

    page.locator("#file-list").get_by_role("button", name="Save").click()
    expect(list_row(page, "Renamed (2001).mp4")).to_be_visible()
    expect(list_row(page, "second.mp4")).to_be_visible()
    assert page.evaluate("window.mvSent").count("/") == 1


LIST_REFRESH = re.compile(r"^[^?]+://[^/]+/\?")  # the library page, with the list's controls


@ONE_STORE
def test_a_refresh_on_its_way_when_rename_is_clicked_is_sent_again_after_the_save(
    page: Page, e2e_server: LiveServer
) -> None:
    """A refresh already sent when Rename is clicked would land after the form and take it
    away: it is cancelled, and sent again once the name is saved."""
    app = e2e_server.app
    alice = library_with(page, e2e_server, "first.mp4")
    refreshes = Held(page, LIST_REFRESH)
    add_file(app, alice, "second.mp4", data=b"second")
    with page.expect_request(LIST_REFRESH):
        page.evaluate("document.body.dispatchEvent(new CustomEvent('files-changed'))")
    with page.expect_event("requestfailed", lambda r: bool(LIST_REFRESH.search(r.url))):
        list_row(page, "first.mp4").get_by_role("button", name="Rename").click()
    page.unroute(LIST_REFRESH)
    refreshes.release()  # skips the cancelled refresh: nothing comes of it
    field = page.locator("#file-list input[name=name]")
    field.fill("Renamed (2001).mp4")
    assert page.evaluate("window.mvSent").count("/") == 1
    page.locator("#file-list").get_by_role("button", name="Save").click()
    expect(list_row(page, "Renamed (2001).mp4")).to_be_visible()
    expect(list_row(page, "second.mp4")).to_be_visible()
    assert page.evaluate("window.mvSent").count("/") == 2


@ONE_STORE
def test_an_upload_finishing_while_the_rename_form_is_on_its_way_leaves_it_alone(
    page: Page, e2e_server: LiveServer
) -> None:
    """The refresh also waits for a Rename click's answer (it would land in no row), and
    comes once the form is closed."""
    app = e2e_server.app
    alice = library_with(page, e2e_server, "first.mp4")
    forms = Held(page, EDIT_FORM)
    with page.expect_request(EDIT_FORM):
        list_row(page, "first.mp4").get_by_role("button", name="Rename").click()
    add_file(app, alice, "second.mp4", data=b"second")
    page.evaluate("document.body.dispatchEvent(new CustomEvent('files-changed'))")
    assert "/" not in page.evaluate("window.mvSent")
    # Clicked again while the first is out: the second cancels the first, and the
    # refresh still waits (the first's end is no sign the list is left alone).
    with page.expect_event("requestfailed", lambda r: bool(EDIT_FORM.search(r.url))):
        list_row(page, "first.mp4").get_by_role("button", name="Rename").click()
    page.evaluate("new Promise((done) => setTimeout(done, 0))")
    assert "/" not in page.evaluate("window.mvSent")
    forms.release()
    expect(page.locator("#file-list input[name=name]")).to_have_value("first.mp4")
    assert "/" not in page.evaluate("window.mvSent")

    page.locator("#file-list").get_by_role("button", name="Cancel").click()
    expect(list_row(page, "second.mp4")).to_be_visible()
    expect(list_row(page, "first.mp4")).to_be_visible()
    assert page.evaluate("window.mvSent").count("/") == 1
