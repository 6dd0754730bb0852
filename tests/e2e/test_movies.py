"""The movie library in headless Chromium: the poster grid, the view switch, sorting, cards
that fill in while the probe worker runs, "plays here?", the frame picker and the title.

The movies are real, made with PyAV by tests/media.py; the probe worker is the app's own,
started by the `worker` fixture (or later, by the test that needs files to stay pending).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlmodel import Session

from movievault import db, display
from movievault.backends import get_storage
from movievault.config import settings
from movievault.models import StoredFile
from movievault.worker import ProbeWorker
from tests import media
from tests.e2e.support import choose_view, screenshot
from tests.support import LiveServer

#: Every H.264 clip of these tests: 4 s, so a seek to 2.5 s has somewhere to go.
SECONDS = 4.0


class Worker:
    """The app's probe worker, started and stopped by the test."""

    def __init__(self, server: LiveServer) -> None:
        app = server.app
        # Polls often: uploads through the API client do not wake a worker of a test.
        self.worker = ProbeWorker(
            session_factory=partial(Session, db.engine_of(app), expire_on_commit=False),
            storage=get_storage(app), settings=settings(app).probing, poll=0.2,
        )

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop(30)
        assert not self.worker.running


@pytest.fixture
def worker(e2e_server: LiveServer) -> Iterator[Worker]:
    """The probe worker, not yet started; stopped after the test."""
    probe = Worker(e2e_server)
    yield probe
    probe.stop()


@pytest.fixture
def upload(page: Page, e2e_server: LiveServer) -> Callable[[Path, str], int]:
    """Upload a file as alice through the API (the page's own uploader is tested elsewhere)
    under `name`; its id."""
    client = e2e_server.client_for("alice")

    def send(path: Path, name: str) -> int:
        answer = client.upload(name=name, data=path.read_bytes(),
                               content_type=_content_type(path))
        return int(answer["file"]["id"])

    return send


def _content_type(path: Path) -> str:
    """The type a browser would send for the file."""
    return {".mkv": "video/x-matroska", ".webm": "video/webm"}.get(path.suffix, "video/mp4")


def stored(server: LiveServer, file_id: int) -> StoredFile:
    """The file's catalogue row as it is now."""
    with db.session_scope(server.app) as session:
        row = session.get(StoredFile, file_id)
        assert row is not None
        session.expunge(row)
        return row


def card(page: Page, title: str) -> Locator:
    """The grid's card of the movie titled `title`."""
    name = page.locator(".movie-card-title").filter(has_text=title)
    return page.locator("#file-list .movie-card").filter(has=name)


def open_library(page: Page, server: LiveServer, view: str = "grid") -> None:
    """Show the library in `view`."""
    choose_view(page, server.url, view)
    page.goto(f"{server.url}/")


def decoded_width(image: Locator) -> int:
    """How wide the browser decoded the image (0: not loaded or not decodable)."""
    image.evaluate("img => img.decode().catch(() => null)")
    return int(image.evaluate("img => img.complete ? img.naturalWidth : 0"))


def test_grid_shows_posters_titles_lengths_and_badges(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path,
) -> None:
    """After the worker ran, each card has a decoded poster, its title, year, length and
    resolution; the HDR10 film has its badge, and the HEVC ones are marked unplayable."""
    upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=SECONDS, size=(1280, 720)),
           "The Long Holiday (1999).mp4")
    train_id = upload(media.make_hevc_mkv(tmp_path / "b.mkv", seconds=2.0),
                      "Night.Train.2004.1080p.BluRay.x265-GRP.mkv")
    upload(media.make_hdr10_mkv(tmp_path / "c.mkv", seconds=1.0), "Bright Lights (2021).mkv")
    worker.start()
    open_library(page, e2e_server)
    cards = page.locator("#file-list .movie-card")
    expect(cards).to_have_count(3)
    expect(page.locator("#file-list .movie-card-pending")).to_have_count(0, timeout=30_000)
    screenshot(page, "library-grid")

    holiday = card(page, "The Long Holiday")
    expect(holiday.locator(".movie-card-meta > span")).to_have_text(["1999", "4 s"])
    expect(holiday.locator(".poster-badges")).to_have_text("720p")
    expect(holiday.locator("[data-noplay-badge]")).to_be_hidden()
    train = card(page, "Night Train")
    length = display.running_time(stored(e2e_server, train_id).duration)
    assert length in ("2 s", "3 s")  # Matroska ends with the last AC-3 frame's padding
    expect(train.locator(".movie-card-meta > span")).to_have_text(["2004", length])
    expect(train.locator("[data-noplay-badge]")).to_be_visible()
    expect(card(page, "Bright Lights").locator(".badge-hdr")).to_have_text("HDR10")

    images = page.locator("#file-list .poster-image")
    expect(images).to_have_count(3)
    for index in range(3):
        assert decoded_width(images.nth(index)) > 0
    assert holiday.locator("img").get_attribute("alt") == "Poster of The Long Holiday"
    page.set_viewport_size({"width": 390, "height": 844})
    # On a phone the grid narrows to two columns and nothing sticks out sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    left = [box["x"] for box in (cards.nth(i).bounding_box() for i in range(3)) if box]
    assert len(set(left)) == 2
    screenshot(page, "library-grid-phone")


def test_view_switch_is_remembered(
    page: Page, e2e_server: LiveServer, upload: Callable[[Path, str], int], tmp_path: Path,
    context: BrowserContext,
) -> None:
    """Posters or list: the choice survives a reload and a fresh visit, and the server
    renders the remembered view at once (no flash of the other one)."""
    upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=1.0), "Alpha (2001).mp4")
    open_library(page, e2e_server, "grid")
    expect(page.locator(".movie-grid")).to_be_visible()

    page.get_by_role("radio", name="List").check()
    expect(page.locator("table.file-list")).to_be_visible()
    expect(page.locator(".movie-grid")).to_have_count(0)
    page.reload()
    expect(page.locator("table.file-list")).to_be_visible()
    page.goto(f"{e2e_server.url}/")
    expect(page.locator("table.file-list")).to_be_visible()
    expect(page.get_by_role("radio", name="List")).to_be_checked()
    first_render = context.request.get(f"{e2e_server.url}/").text()
    assert 'class="file-list"' in first_render and "movie-grid" not in first_render
    screenshot(page, "library-list")

    page.get_by_role("radio", name="Posters").check()
    expect(page.locator(".movie-grid")).to_be_visible()
    page.goto(f"{e2e_server.url}/")
    expect(page.locator(".movie-grid")).to_be_visible()
    first_render = context.request.get(f"{e2e_server.url}/").text()
    assert "movie-grid" in first_render and 'class="file-list"' not in first_render


def test_sort_by_title_year_and_length(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path,
) -> None:
    """Choosing a sort reorders the cards without a reload."""
    upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=2.0), "Beta (1999).mp4")
    upload(media.make_h264_mp4(tmp_path / "b.mp4", seconds=3.0), "Alpha (2010).mp4")
    upload(media.make_h264_mp4(tmp_path / "c.mp4", seconds=1.0), "Gamma (2005).mp4")
    worker.start()
    open_library(page, e2e_server)
    expect(page.locator("#file-list .movie-card-pending")).to_have_count(0, timeout=30_000)
    page.evaluate("window.notReloaded = true")
    titles = page.locator("#file-list .movie-card-title")
    expect(titles).to_have_text(["Gamma", "Alpha", "Beta"])  # newest first

    page.locator("#sort").select_option("title")
    expect(titles).to_have_text(["Alpha", "Beta", "Gamma"])
    page.locator("#sort").select_option("-year")
    expect(titles).to_have_text(["Alpha", "Gamma", "Beta"])
    page.locator("#sort").select_option("-duration")
    expect(titles).to_have_text(["Alpha", "Beta", "Gamma"])
    page.locator("#sort").select_option("duration")
    expect(titles).to_have_text(["Gamma", "Beta", "Alpha"])
    assert "sort=duration" in page.url
    assert page.evaluate("window.notReloaded") is True


@pytest.mark.parametrize("view", ["grid", "list"])
def test_pending_movie_fills_in_without_reload(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path, view: str,
) -> None:
    """A movie not yet analysed says so; once the worker has run, its card (or row) shows
    the poster and length by itself, and stops asking."""
    file_id = upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=SECONDS),
                     "Slow Burn (1987).mp4")
    open_library(page, e2e_server, view)
    item = page.locator(f"#file-{file_id}")
    expect(item).to_contain_text("Analysing…")
    assert item.get_attribute("hx-trigger") == "every 2s"
    page.evaluate("window.notReloaded = true")
    screenshot(page, f"library-{view}-pending")

    worker.start()
    expect(item).not_to_contain_text("Analysing…", timeout=30_000)
    expect(item).to_contain_text("4 s")
    assert item.get_attribute("hx-trigger") is None
    if view == "grid":
        assert decoded_width(item.locator("img.poster-image")) > 0
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, f"library-{view}-ready")


@pytest.mark.parametrize("backend", ["local"])
def test_failed_probe_is_shown_and_the_player_explains_its_error(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path, expected_console_errors: list[str],
) -> None:
    """A file that is no movie is marked "not analysed" with the reason; its page keeps the
    player (nothing is known up front), and when the player fails, says so with the
    download link instead of a blank box."""
    expected_console_errors.append(r"Failed to load resource")
    file_id = upload(media.make_random_bytes(tmp_path / "noise.mkv"), "Noise (2020).mkv")
    worker.start()
    open_library(page, e2e_server)
    status = page.locator(f"#file-{file_id} .movie-card-failed")
    expect(status).to_contain_text("Not analysed: ", timeout=30_000)

    page.goto(f"{e2e_server.url}/files/{file_id}")
    assert page.locator("[data-player]").get_attribute("data-playback-type") is None
    box = page.locator("[data-cannot-play]")
    expect(box).to_be_visible()
    expect(box).to_contain_text("This browser can't play this file.")
    expect(box.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/files/{file_id}/download"
    )
    expect(page.locator("video.player")).to_be_hidden()


def test_h264_movie_plays_and_seeks(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path,
) -> None:
    """The browser can play it: the player shows the poster, plays, and seeks."""
    file_id = upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=SECONDS),
                     "Seekers (2003).mp4")
    worker.start()
    _wait_ready(e2e_server, file_id)
    page.goto(f"{e2e_server.url}/files/{file_id}")
    video = page.locator("video.player")
    expect(video).to_be_visible()
    expect(page.locator("[data-cannot-play]")).to_be_hidden()
    poster = video.get_attribute("poster")
    assert poster and poster.startswith(f"/files/{file_id}/poster?v=")
    page.wait_for_function("() => document.querySelector('video.player').readyState >= 1")
    screenshot(page, "movie-h264")

    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('video.player').currentTime > 0.3")
    video.evaluate("v => v.pause()")
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true});"
        " v.currentTime = 3.0; })"
    )
    state = video.evaluate("v => ({time: v.currentTime, error: v.error && v.error.code})")
    assert state["error"] is None
    assert abs(state["time"] - 3.0) < 0.1, state


def test_hevc_movie_says_it_cannot_play_here(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path, context: BrowserContext,
) -> None:
    """Chromium decodes neither HEVC nor AC-3: the page says so by name, offers the
    download and a stream address that works without the session (VLC, mpv)."""
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=e2e_server.url)
    source = media.make_hevc_mkv(tmp_path / "h.mkv", seconds=2.0)
    file_id = upload(source, "Night.Train.2004.mkv")
    worker.start()
    _wait_ready(e2e_server, file_id)
    page.goto(f"{e2e_server.url}/files/{file_id}")
    box = page.locator("[data-cannot-play]")
    expect(box).to_be_visible()
    expect(box.locator("[data-cannot-play-reason]")).to_have_text(
        "This browser can't decode HEVC (H.265) video or AC-3 (Dolby Digital) audio."
    )
    expect(page.locator("video.player")).to_be_hidden()
    expect(page.locator("[data-player-tools]")).to_be_hidden()
    expect(box.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/files/{file_id}/download"
    )
    box.get_by_role("button", name="Copy").click()
    expect(box.locator("#stream-url-status")).to_have_text("Copied.")
    address = page.evaluate("navigator.clipboard.readText()")
    assert address == page.locator("#stream-url").input_value()
    assert address.startswith("http")
    screenshot(page, "movie-hevc-cannot-play")
    # As VLC would: no cookie, the address alone; a seeking player asks for ranges.
    answer = requests.get(address, headers={"Range": "bytes=0-99"}, timeout=30)
    assert answer.status_code == 206
    assert answer.content == source.read_bytes()[:100]


def test_frame_picker_changes_the_poster(
    page: Page, e2e_server: LiveServer, worker: Worker, upload: Callable[[Path, str], int],
    tmp_path: Path,
) -> None:
    """"Use this frame as poster" at 3 s replaces the poster: a new object, other bytes,
    shown at once beside the button and as the player's poster."""
    file_id = upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=SECONDS, size=(640, 360)),
                     "Picked (2011).mp4")
    worker.start()
    _wait_ready(e2e_server, file_id)
    before = stored(e2e_server, file_id).poster_key
    assert before is not None
    old_bytes = _object(e2e_server, before)

    page.goto(f"{e2e_server.url}/files/{file_id}")
    thumb = page.locator("img[data-poster-thumb]")
    old_src = thumb.get_attribute("src")
    assert decoded_width(thumb) > 0
    video = page.locator("video.player")
    page.wait_for_function("() => document.querySelector('video.player').readyState >= 1")
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true});"
        " v.currentTime = 3.0; })"
    )
    page.get_by_role("button", name="Use this frame as poster").click()
    expect(page.locator("[data-poster-status]")).to_have_text("Poster saved: the frame at 0:03.")

    after = stored(e2e_server, file_id).poster_key
    assert after is not None and after != before
    assert _object(e2e_server, after) != old_bytes
    assert before not in {key for key in get_storage(e2e_server.app).iter_keys()}
    new_src = thumb.get_attribute("src")
    assert new_src and new_src != old_src
    assert video.get_attribute("poster") == new_src
    assert decoded_width(thumb) > 0
    screenshot(page, "movie-frame-picked")


def test_title_and_year_are_edited_on_the_movie_page(
    page: Page, e2e_server: LiveServer, upload: Callable[[Path, str], int], tmp_path: Path,
    expected_console_errors: list[str],
) -> None:
    """The title form saves through htmx; a bad year is refused with the reason, and the
    file name stays what it was."""
    expected_console_errors.append(r"status of 422")
    file_id = upload(media.make_h264_mp4(tmp_path / "a.mp4", seconds=1.0),
                     "the.long.holiday.1999.mp4")
    page.goto(f"{e2e_server.url}/files/{file_id}")
    expect(page.locator("h1.movie-title")).to_have_text("the long holiday (1999)")
    page.get_by_role("button", name="Edit title").click()
    page.get_by_label("Title", exact=True).fill("The Long Holiday")
    page.get_by_label("Year (optional)", exact=True).fill("1")
    # The field's own pattern would stop the form; the server's check is what is tested.
    page.locator("input[name=year]").evaluate("field => field.removeAttribute('pattern')")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#title-error")).to_contain_text("year must be a whole number")
    screenshot(page, "movie-title-error")

    page.get_by_label("Year (optional)", exact=True).fill("1998")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1.movie-title")).to_have_text("The Long Holiday (1998)")
    expect(page.locator(".movie-file")).to_have_text("the.long.holiday.1999.mp4")
    row = stored(e2e_server, file_id)
    assert (row.title, row.year, row.name) == (
        "The Long Holiday", 1998, "the.long.holiday.1999.mp4"
    )
    expect(page).to_have_title("The Long Holiday · MovieVault")


@pytest.mark.parametrize("backend", ["local"])
def test_plays_here_answers_name_the_culprit(page: Page) -> None:
    """The verdicts of static/js/playback.js in this Chromium, for the types of MEDIA.md."""
    cases: dict[str, Any] = {
        "h264": ('video/mp4; codecs="avc1.640028, mp4a.40.2"',
                 [["video/mp4", "MP4 files"], ['video/mp4; codecs="avc1.640028"', "H.264"],
                  ['video/mp4; codecs="mp4a.40.2"', "AAC"]]),
        "hevc": ('video/mp4; codecs="hvc1.1.6.L120.90, mp4a.40.2"',
                 [["video/mp4", "MP4 files"], ['video/mp4; codecs="hvc1.1.6.L120.90"', "HEVC"],
                  ['video/mp4; codecs="mp4a.40.2"', "AAC"]]),
        "ac3": ('video/mp4; codecs="avc1.640028, ac-3"',
                [["video/mp4", "MP4 files"], ['video/mp4; codecs="avc1.640028"', "H.264"],
                 ['video/mp4; codecs="ac-3"', "AC-3"]]),
        "mkv": ('video/x-matroska; codecs="avc1.640028, opus"',
                [["video/x-matroska", "Matroska files"]]),
        "avi": ('video/x-msvideo; codecs="mp4v.20.9"', [["video/x-msvideo", "AVI files"]]),
    }
    answers = page.evaluate(
        """async (cases) => {
          const { verdict } = await import("/static/js/playback.js");
          const out = {};
          for (const [key, [type, parts]] of Object.entries(cases)) {
            out[key] = verdict(type, parts.map(([t, name]) => ({ type: t, name })));
          }
          return out;
        }""",
        cases,
    )
    assert answers["h264"] == {"plays": True, "culprits": [], "message": ""}
    assert answers["mkv"]["plays"] is True
    assert answers["hevc"] == {
        "plays": False, "culprits": ["HEVC"], "message": "This browser can't decode HEVC.",
    }
    assert answers["ac3"]["message"] == "This browser can't decode AC-3."
    assert answers["avi"]["message"] == "This browser can't play AVI files."


def _wait_ready(server: LiveServer, file_id: int) -> None:
    """Wait (30 s at most) until the worker has analysed the file."""
    deadline = time.monotonic() + 30
    while stored(server, file_id).media_status == "pending":
        assert time.monotonic() < deadline, "the probe worker did not get to the file"
        time.sleep(0.1)
    assert stored(server, file_id).media_status == "ready", json.dumps(
        stored(server, file_id).media_error
    )


def _object(server: LiveServer, key: str) -> bytes:
    """The bytes the store holds at `key`."""
    with get_storage(server.app).open(key) as stream:
        return bytes(stream.read())
