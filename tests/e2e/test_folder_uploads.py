"""Folders in the browser: picked with "Add folder" or dropped, walked recursively, movies
queued with their subtitles, everything else listed as skipped with the reason."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from movievault import db
from movievault.backends import get_storage
from movievault.client import sha256_of
from movievault.models import StoredFile, Subtitle, User
from tests.drops import DROP_FOLDERS
from tests.e2e.support import api_calls, expect_stage, screenshot, upload_row
from tests.media import write_srt
from tests.support import LiveServer, rows


@pytest.fixture
def backend() -> str:
    """Walking folders happens in the page: one backend is enough."""
    return "local"


def _skipped(page: Page) -> list[str]:
    """The lines of the panel's "skipped in folders" list."""
    return page.locator("[data-upload-skipped] li").all_text_contents()


def _subtitle_row(page: Page, name: str) -> Any:
    """The upload panel's row for a subtitle file."""
    return page.locator(f'.subtitle-row[data-subtitle-name="{name}"]')


def test_a_picked_folder_queues_its_movies_with_their_subtitles_and_lists_the_rest(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    trip = tmp_path / "Trip"
    (trip / "Day 1").mkdir(parents=True)
    (trip / "Day 2" / "Deep").mkdir(parents=True)
    (trip / ".thumbnails").mkdir()
    (trip / "Day 1" / "Heat (1995).mp4").write_bytes(os.urandom(200_000))
    write_srt(trip / "Day 1" / "Heat (1995).en.srt")
    (trip / "Day 1" / "notes.txt").write_text("bring snacks")
    (trip / "Day 2" / "Deep" / "clip.mkv").write_bytes(os.urandom(150_000))
    (trip / "Day 2" / "Deep" / "cover.jpg").write_bytes(os.urandom(5_000))
    # A subtitle whose movie is in another folder is not paired with it.
    write_srt(trip / "Day 2" / "clip.srt")
    (trip / ".thumbnails" / "thumb.mp4").write_bytes(os.urandom(1_000))
    calls = api_calls(page)

    page.set_input_files("[data-upload-folder-input]", str(trip))

    expect_stage(page, "Heat (1995).mp4", "done")
    expect_stage(page, "clip.mkv", "done")
    expect(_subtitle_row(page, "Heat (1995).en.srt")).to_have_attribute("data-stage", "done")
    expect(_subtitle_row(page, "clip.srt")).to_have_attribute("data-stage", "skipped")
    expect(_subtitle_row(page, "clip.srt")).to_contain_text("in its folder")
    expect(upload_row(page, "thumb.mp4")).to_have_count(0)
    expect(page.locator("[data-upload-skipped] summary")).to_have_text("Skipped in folders: 3")
    assert sorted(_skipped(page)) == [
        "Trip/.thumbnails/: hidden folder",
        "Trip/Day 1/notes.txt: not a video",
        "Trip/Day 2/Deep/cover.jpg: not a video",
    ]
    page.locator("[data-upload-skipped] summary").click()
    screenshot(page, "folder-picked")
    # One duplicate check for the whole folder, with both movies in it.
    checks = [body for path, body in calls if path == "/api/files/check"]
    assert [len(body["files"]) for body in checks] == [2]
    stored = sorted(f.name for f in rows(e2e_server.app, StoredFile))
    assert stored == ["Heat (1995).mp4", "clip.mkv"]
    assert [s.name for s in rows(e2e_server.app, Subtitle)] == ["Heat (1995).en.srt"]


def test_dropped_folders_are_walked_in_batches(page: Page, e2e_server: LiveServer) -> None:
    calls = api_calls(page)
    tree = {
        "Films": {
            "Alien (1979)": {"Alien (1979).mp4": "video", "Alien (1979).srt": "srt",
                             "poster.png": "image", "info.nfo": "text"},
            "Extras": {"Deeper": {"making of.mkv": "video", "readme.md": "text"}},
            "Brazil.mp4": "video",
            ".DS_Store": "junk",
            "Scratch.mkv": "unreadable file",
            "Private": "unreadable folder",
        },
        "More": {"Heat.webm": "video", "Heat.fr.srt": "srt"},
    }
    assert page.evaluate(DROP_FOLDERS, tree) is True
    for name in ("Alien (1979).mp4", "making of.mkv", "Brazil.mp4", "Heat.webm"):
        expect_stage(page, name, "done")
    for name in ("Alien (1979).srt", "Heat.fr.srt"):
        expect(_subtitle_row(page, name)).to_have_attribute("data-stage", "done")
    expect(page.locator("[data-upload-skipped] summary")).to_have_text("Skipped in folders: 6")
    assert sorted(_skipped(page)) == sorted([
        "Films/.DS_Store: hidden file",
        "Films/Alien (1979)/info.nfo: not a video",
        "Films/Alien (1979)/poster.png: not a video",
        "Films/Extras/Deeper/readme.md: not a video",
        "Films/Private/: could not be read",
        "Films/Scratch.mkv: could not be read",
    ])
    checks = [body for path, body in calls if path == "/api/files/check"]
    assert [len(body["files"]) for body in checks] == [4]
    subtitles = {s.name for s in rows(e2e_server.app, Subtitle)}
    assert subtitles == {"Alien (1979).srt", "Heat.fr.srt"}
    screenshot(page, "folder-dropped")
    # Clear finished empties the skipped list too.
    page.get_by_role("button", name="Clear finished").click()
    expect(page.locator("[data-upload-skipped]")).to_be_hidden()


def test_three_hundred_files_queue_with_one_check_and_a_live_page(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """300 files already in the library: one bulk check answers for all of them, and the
    page keeps drawing frames while they are walked, hashed and checked."""
    folder = tmp_path / "Archive"
    app = e2e_server.app
    [owner] = [user.id for user in rows(app, User) if user.username == "alice"]
    assert owner is not None
    store = get_storage(app)
    with db.session_scope(app) as session:  # one commit for all (add_file makes one each)
        for n in range(300):
            data = os.urandom(2_000)
            (folder / f"part {n // 100}").mkdir(parents=True, exist_ok=True)
            (folder / f"part {n // 100}" / f"clip {n:03}.mp4").write_bytes(data)
            key = f"movies/{owner}/{n:032x}"
            store.put(key=key, stream=io.BytesIO(data), size=len(data), content_type="video/mp4")
            session.add(StoredFile(owner_id=owner, name=f"clip {n:03}.mp4", size=len(data),
                                   sha256=sha256_of(data), content_type="video/mp4", key=key))
        session.commit()
    calls = api_calls(page)
    # Frames drawn from the moment the folder's `change` has been handled (Playwright's own
    # injection of the 300 files before it is not the page's work), and how long handling
    # it took: a frozen tab shows as a long gap between two frames.
    page.evaluate("""() => {
      const input = document.querySelector("[data-upload-folder-input]");
      const seen = window.seen_ = { frames: 0, longest: 0, handling: null };
      let last = null;
      const tick = (now) => {
        if (last !== null) {
          seen.frames += 1;
          seen.longest = Math.max(seen.longest, now - last);
        }
        if (seen.handling !== null) last = now;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      let start = 0;
      input.addEventListener("change", () => { start = performance.now(); }, true);
      // The panel's listener on the input runs in between; this one runs after it.
      window.addEventListener("change", () => { seen.handling = performance.now() - start; });
    }""")
    page.set_input_files("[data-upload-folder-input]", str(folder))
    expect(page.locator('.upload-row[data-stage="duplicate"]')).to_have_count(300, timeout=120_000)
    seen = page.evaluate("window.seen_")
    checks = [body for path, body in calls if path == "/api/files/check"]
    assert [len(body["files"]) for body in checks] == [300]
    assert not [path for path, _ in calls if path == "/api/uploads"]
    assert seen["handling"] < 1000, seen
    assert seen["frames"] > 20 and seen["longest"] < 1000, seen
    print(f"300 files: change handled in {seen['handling']:.0f} ms, then {seen['frames']} frames,"
          f" longest gap {seen['longest']:.0f} ms")
