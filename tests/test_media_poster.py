"""Posters: a detailed frame (not the black opening), upright, at most 640 px wide, WebP."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from movievault.errors import ProbeFailed
from movievault.media.poster import UNIFORM, detail, frame_poster, make_poster
from movievault.media.probe import probe
from movievault.storage.base import Storage
from tests import media
from tests.test_media_probe import stored


def decoded(webp: bytes) -> av.VideoFrame:
    """The single picture of a WebP file, decoded by FFmpeg's own WebP decoder."""
    assert webp.startswith(b"RIFF") and webp[8:12] == b"WEBP"
    with av.open(io.BytesIO(webp)) as container:
        assert container.format.name == "webp_pipe"
        return next(container.decode(video=0))


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv", "hevc.mkv", "vp9.webm", "av1.mp4",
                                  "hdr10.mkv", "cover.mp4"])
def test_the_poster_is_a_detailed_webp_frame(
    name: str, bare_store: Storage, media_files: dict[str, Path]
) -> None:
    source = stored(bare_store, media_files[name])
    info = probe(source)
    poster = make_poster(source, duration=info.duration)
    assert poster is not None
    picture = decoded(poster)
    # The clips are 320×180; h264.mp4 and .mkv open with a second of black, which a poster
    # taken 10 % in would show. The cover of cover.mp4 is a flat 160×160 square.
    assert (picture.width, picture.height) == (320, 180)
    assert detail(picture) > 3 * UNIFORM


def test_a_wide_movie_is_scaled_to_640_px(tmp_path: Path) -> None:
    path = media.make_h264_mp4(tmp_path / "wide.mp4", seconds=1.0, size=(1280, 720), audio=False)
    with open(path, "rb") as file:
        poster = make_poster(file, duration=1.0)
        smaller = make_poster(file, duration=1.0, max_width=200)
    assert poster is not None and smaller is not None
    assert (decoded(poster).width, decoded(poster).height) == (640, 360)
    assert (decoded(smaller).width, decoded(smaller).height) == (200, 112)
    assert len(poster) < 100_000


def test_a_sideways_movie_gets_an_upright_poster(media_files: dict[str, Path]) -> None:
    with open(media_files["rotated.mp4"], "rb") as file:
        poster = make_poster(file, duration=1.0)
    assert poster is not None
    picture = decoded(poster).to_ndarray(format="rgb24")
    assert picture.shape[:2] == (320, 180)  # portrait
    # Turned a quarter counterclockwise, as the display matrix says: the picture's right
    # edge (most red, least green: see media.picture) is now at the top.
    top_left, bottom_left = picture[4, 4], picture[-5, 4]
    assert top_left[0] > 200 and top_left[1] < 60
    assert bottom_left[0] < 60


def test_a_file_without_video_has_no_poster(media_files: dict[str, Path]) -> None:
    for name in ("song.m4a", "song.mp3"):  # the m4a has a cover picture: not a film
        with open(media_files[name], "rb") as file:
            assert make_poster(file, duration=2.0) is None


def test_a_film_that_is_all_black_still_gets_its_best_frame(tmp_path: Path) -> None:
    path = media.make_h264_mp4(tmp_path / "night.mp4", seconds=2.0, black=2.0, audio=False)
    with open(path, "rb") as file:
        poster = make_poster(file, duration=2.0)
    assert poster is not None
    assert detail(decoded(poster)) < UNIFORM


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv"])
def test_an_unknown_duration_still_gives_a_poster(
    name: str, media_files: dict[str, Path]
) -> None:
    # 10 s, 25 s and 40 s are past the end of the 3 s clip: the seeks land on its last
    # keyframe, after the black opening.
    with open(media_files[name], "rb") as file:
        poster = make_poster(file, duration=None)
    assert poster is not None
    assert detail(decoded(poster)) > 3 * UNIFORM


def test_the_chosen_frame_is_the_one_at_that_time(media_files: dict[str, Path]) -> None:
    with open(media_files["h264.mp4"], "rb") as file:
        in_the_dark = decoded(frame_poster(file, at=0.5))
        lit = decoded(frame_poster(file, at=2.0))
        later = decoded(frame_poster(file, at=2.5))
        with pytest.raises(ProbeFailed, match="no picture at 60.0 s"):
            frame_poster(file, at=60.0)
    assert detail(in_the_dark) < UNIFORM < detail(lit)
    # The gradient moves with time (media.picture): 2.0 s and 2.5 s differ, 12 frames apart.
    difference = abs(
        lit.to_ndarray(format="rgb24").astype(int) - later.to_ndarray(format="rgb24").astype(int)
    ).mean()
    assert difference > 5


def test_a_chosen_frame_of_a_song_is_refused(media_files: dict[str, Path]) -> None:
    with open(media_files["song.m4a"], "rb") as file, pytest.raises(ProbeFailed):
        frame_poster(file, at=1.0)
