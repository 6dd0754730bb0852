"""Subtitles in headless Chromium, on both stores: a subtitle dropped beside its movie is
attached and plays as a track; the movie page adds and removes subtitles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from movievault.models import Subtitle
from tests import media
from tests.e2e.support import add_files, expect_stage, list_row, screenshot
from tests.support import LiveServer, rows

CUES = """() => {
  const video = document.querySelector("video.player");
  const tracks = [...video.textTracks];
  for (const track of tracks) track.mode = "showing";
  return tracks.map((t) => ({language: t.language, label: t.label,
                             cues: t.cues ? [...t.cues].map((c) => [c.startTime, c.text]) : []}));
}"""


def tracks(page: Page, count: int) -> list[dict[str, Any]]:
    """The player's text tracks, shown, once each has loaded its cues."""
    page.evaluate(CUES)
    page.wait_for_function(
        """(count) => { const t = document.querySelector("video.player").textTracks;
           return t.length === count && [...t].every((x) => x.cues && x.cues.length > 0); }""",
        arg=count, timeout=15_000,
    )
    result: list[dict[str, Any]] = page.evaluate(CUES)
    return result


def subtitle_row(page: Page, name: str) -> Any:
    """The upload panel's row for a subtitle file."""
    return page.locator(f'.subtitle-row[data-subtitle-name="{name}"]')


def test_a_dropped_srt_plays_as_a_track_and_the_page_adds_and_removes_subtitles(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    movie = media.make_h264_mp4(tmp_path / "Film.mp4", seconds=4.0)
    srt = media.write_srt(tmp_path / "Film.en.srt")
    stray = media.write_srt(tmp_path / "Other.fr.srt")
    add_files(page, movie, srt, stray)
    expect_stage(page, movie.name, "done")
    expect(subtitle_row(page, srt.name)).to_have_attribute("data-stage", "done", timeout=30_000)
    expect(subtitle_row(page, srt.name)).to_contain_text("Attached to Film.mp4 (English)")
    expect(subtitle_row(page, stray.name)).to_have_attribute("data-stage", "skipped")
    expect(subtitle_row(page, stray.name)).to_contain_text("No movie of the same name")
    screenshot(page, "subtitles-dropped")

    # The same movie and subtitle dropped again: both found in the library, nothing sent.
    page.get_by_role("button", name="Clear finished").click()
    add_files(page, movie, srt)
    expect_stage(page, movie.name, "duplicate")
    expect(subtitle_row(page, srt.name)).to_contain_text("Already attached to Film.mp4 (English)")
    assert len(rows(e2e_server.app, Subtitle)) == 1

    list_row(page, movie.name).get_by_role("link", name="Play").click()
    expect(page.locator(".subtitle-item")).to_have_count(1)
    expect(page.locator(".subtitle-item .subtitle-label")).to_have_text("English")
    (shown,) = tracks(page, 1)
    assert (shown["language"], shown["label"]) == ("en", "English")
    assert shown["cues"] == [[start, text] for start, _, text in media.SRT_CUES]
    page.evaluate("""() => new Promise((done) => { const v = document.querySelector("video.player");
        v.addEventListener("seeked", done, {once: true}); v.currentTime = 0.8; })""")
    screenshot(page, "subtitles-movie-page")

    # "Add subtitles": a Windows-1252 file, attached from the page, which then shows it.
    french = media.write_srt(tmp_path / "Film.fre.srt", encoding="cp1252")
    page.set_input_files("[data-subtitle-input]", str(french))
    expect(page.locator(".subtitle-item")).to_have_count(2, timeout=30_000)
    both = tracks(page, 2)
    assert [(t["language"], t["label"]) for t in both] == [("en", "English"), ("fr", "French")]
    assert both[1]["cues"] == [[start, text] for start, _, text in media.SRT_CUES]

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".subtitle-item").filter(has_text="English").get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.locator(".subtitle-item")).to_have_count(1)
    (left,) = tracks(page, 1)
    assert left["language"] == "fr"
