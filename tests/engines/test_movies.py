"""Movies in WebKitGTK and Firefox ESR: one plays and seeks from the store, "plays here?"
says what the engine's own `canPlayType` says (never a blank player), and subtitles load.

The movies are real and small, made once by tests/media.py; the probe worker is the app's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import media
from tests.e2e.test_movies import Worker, _wait_ready
from tests.engines.driver import Browser
from tests.engines.support import add_files, wait_stage
from tests.support import LiveServer

PLAYER = "document.querySelector('video.player')"


@pytest.fixture(scope="session")
def engine_movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 4 s H.264/AAC MP4 and a 2 s HEVC/AC-3 Matroska, made once per worker."""
    folder = tmp_path_factory.mktemp("engine-media")
    return {
        "h264": media.make_h264_mp4(folder / "h264.mp4", seconds=4.0),
        "hevc": media.make_hevc_mkv(folder / "hevc.mkv", seconds=2.0),
    }


@pytest.fixture
def worker(e2e_server: LiveServer) -> Iterator[Worker]:
    """The app's probe worker, running during the test."""
    probe = Worker(e2e_server)
    probe.start()
    yield probe
    probe.stop()


def upload_ready(server: LiveServer, path: Path, name: str, content_type: str) -> int:
    """Upload through the API as alice and wait until the worker analysed it; its id."""
    answer = server.client_for("alice").upload(
        name=name, data=path.read_bytes(), content_type=content_type
    )
    file_id = int(answer["file"]["id"])
    _wait_ready(server, file_id)
    return file_id


def test_movie_plays_and_seeks(
    signed_in: Browser, e2e_server: LiveServer, worker: Worker, engine_movies: dict[str, Path]
) -> None:
    page = signed_in
    file_id = upload_ready(e2e_server, engine_movies["h264"], "Seekers (2003).mp4", "video/mp4")
    page.goto(f"{e2e_server.url}/files/{file_id}")
    page.wait_for(f"return {PLAYER}.readyState >= 1")
    assert page.evaluate("return document.querySelector('[data-cannot-play]').hidden") is True
    page.evaluate(f"const v = {PLAYER}; v.muted = true; return v.play()")
    page.wait_for(f"return {PLAYER}.currentTime > 0.3")
    state = page.evaluate(f"""const v = {PLAYER}; v.pause();
        return new Promise((done) => {{
          v.addEventListener("seeked", () => done({{time: v.currentTime,
                                                    error: v.error && v.error.code}}),
                             {{once: true}});
          v.currentTime = 3.0;
        }})""")
    assert state["error"] is None
    assert abs(state["time"] - 3.0) < 0.1, state
    page.screenshot("movie-playing")


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize("kind", ["h264", "hevc"])
def test_plays_here_says_what_the_engine_answers(
    signed_in: Browser, e2e_server: LiveServer, worker: Worker, engine_movies: dict[str, Path],
    kind: str,
) -> None:
    """Whatever the engine answers for the movie's type, the page says the same; a movie
    said to play loads in the player or is explained, never a blank player."""
    page = signed_in
    content_type = {"h264": "video/mp4", "hevc": "video/x-matroska"}[kind]
    path = engine_movies[kind]
    file_id = upload_ready(e2e_server, path, f"{kind}{path.suffix}", content_type)
    page.goto(f"{e2e_server.url}/files/{file_id}")
    playback_type = page.evaluate(
        "return document.querySelector('[data-player]').dataset.playbackType"
    )
    answer = page.evaluate(
        "return document.createElement('video').canPlayType(arguments[0])", playback_type
    )
    # The page's own verdict (static/js/playback.js), asked of this engine.
    verdict = page.evaluate("""const root = document.querySelector('[data-player]');
        return import('/static/js/playback.js').then(({ verdict }) =>
          verdict(root.dataset.playbackType, JSON.parse(root.dataset.playbackParts)))""")
    assert verdict["plays"] == (answer != ""), (playback_type, answer, verdict)
    if not verdict["plays"]:
        assert page.evaluate("return !document.querySelector('[data-cannot-play]').hidden")
        assert page.evaluate(f"return {PLAYER}.hidden") is True
        reason = page.evaluate(
            "return document.querySelector('[data-cannot-play-reason]').textContent"
        )
        assert reason == verdict["message"] and reason.startswith("This browser can't")
    else:
        # Said to play: it loads, or its failure is explained in the player's place.
        outcome = page.wait_for(
            f"""const v = {PLAYER};
            if (v.readyState >= 1 && !v.hidden) return "loaded";
            if (!document.querySelector('[data-cannot-play]').hidden) return "explained";
            return null""",
            timeout=20,
        )
        if kind == "h264":
            assert outcome == "loaded"
    page.screenshot(f"plays-here-{kind}")


@pytest.mark.parametrize("backend", ["local"])
def test_a_subtitle_picked_with_its_movie_loads_as_a_track(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path, engine_movies: dict[str, Path]
) -> None:
    page = signed_in
    movie = tmp_path / "Film.mp4"
    movie.write_bytes(engine_movies["h264"].read_bytes())
    srt = media.write_srt(tmp_path / "Film.en.srt")
    add_files(page, movie, srt)
    wait_stage(page, movie.name, "done")
    page.wait_for(
        "return document.querySelector(`.subtitle-row[data-subtitle-name='Film.en.srt']`)"
        "?.dataset.stage === 'done'"
    )
    page.click("#file-list .file-row .file-name a")
    page.wait_for(f"return document.readyState === 'complete' && {PLAYER} !== null")
    cues = page.wait_for(f"""const tracks = [...{PLAYER}.textTracks];
        for (const track of tracks) track.mode = "showing";
        const cues = tracks[0] && tracks[0].cues;
        return tracks.length === 1 && cues && cues.length > 0 &&
          [tracks[0].language, [...cues].map((c) => [c.startTime, c.text])]""")
    assert cues == ["en", [[start, text] for start, _, text in media.SRT_CUES]]
    page.evaluate(f"""const v = {PLAYER};
        return new Promise((done) => {{
          v.addEventListener("seeked", done, {{once: true}}); v.currentTime = 0.8; }})""")
    page.screenshot("subtitles")
