"""Probing real movies made by tests/media.py, through ranged reads on both backends."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from movievault.errors import ProbeFailed, ProbeTimeout, StorageUnavailable
from movievault.media.poster import make_poster
from movievault.media.probe import PROBE_SIZE, AudioInfo, MediaInfo, SubtitleInfo, VideoInfo, probe
from movievault.media.reader import RangedReader, open_ranged
from movievault.storage.base import Storage
from tests import media
from tests.large_media import make_large_mp4
from tests.support import run_without

MIB = 1024 * 1024


def stored(store: Storage, path: Path) -> io.BufferedReader:
    """Put the file in the store and open it as the app does: a buffered ranged reader."""
    key = "movies/1/" + re.sub(r"[^A-Za-z0-9_-]", "_", path.name)
    size = path.stat().st_size
    with open(path, "rb") as file:
        store.put(key=key, stream=file, size=size, content_type="video/mp4")
    return open_ranged(store, key, size)


def video(codec: str, profile: str | None, level: int | None, tag: str | None, **more: object
          ) -> VideoInfo:
    """The VideoInfo of a 320×180, 24 fps test clip."""
    fields: dict[str, object] = {
        "codec": codec, "profile": profile, "level": level, "codec_tag": tag, "width": 320,
        "height": 180, "fps": 24.0, "pix_fmt": "yuv420p", "bit_depth": 8, "hdr": None,
        "transfer": None,
    }
    fields.update(more)
    return VideoInfo(**fields)  # type: ignore[arg-type]


H264 = video("h264", "High", 12, "avc1")
AAC_ENG = AudioInfo(codec="aac", profile="LC", channels=2, language="eng", title=None)
OPUS_ENG = AudioInfo(codec="opus", profile=None, channels=2, language="eng", title=None)
#: name: (container, duration, video, audio, subtitles)
EXPECTED: dict[str, tuple[str, float, VideoInfo | None, list[AudioInfo], list[SubtitleInfo]]] = {
    "h264.mp4": ("mp4", 3.0, H264, [AAC_ENG], []),
    "h264.mkv": ("matroska", 3.0, video("h264", "High", 12, None), [AAC_ENG], []),
    "hevc.mkv": (
        "matroska", 3.0, video("hevc", "Main", 60, None),
        [
            AudioInfo(codec="ac3", profile=None, channels=6, language="eng", title=None),
            AudioInfo(codec="aac", profile="LC", channels=2, language="fre", title="Commentaire"),
        ],
        [SubtitleInfo(codec="subrip", language="fre", title="Français", text=True)],
    ),
    "vp9.webm": ("webm", 2.0, video("vp9", "Profile 0", None, None), [OPUS_ENG], []),
    "av1.mp4": ("mp4", 1.0, video("av1", "Main", 0, "av01"), [OPUS_ENG], []),
    "hdr10.mkv": (
        "matroska", 1.0,
        video("hevc", "Main 10", 60, None, pix_fmt="yuv420p10le", bit_depth=10, hdr="HDR10",
              transfer="smpte2084"),
        [], [],
    ),
    "hlg.mp4": (
        "mp4", 1.0,
        video("h264", "High 10", 12, "avc1", pix_fmt="yuv420p10le", bit_depth=10, hdr="HLG",
              transfer="arib-std-b67"),
        [], [],
    ),
    # A song with cover art: the picture is not a video stream.
    "song.m4a": ("mp4", 2.0, None, [AudioInfo("aac", "LC", 2, None, None)], []),
    "song.mp3": ("mp3", 2.0, None, [AudioInfo("mp3", None, 2, None, None)], []),
    # The attached cover (a 160×160 JPEG) is not taken for the film.
    "cover.mp4": ("mp4", 3.0, H264, [AAC_ENG], []),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_probe_reads_every_field(
    name: str, bare_store: Storage, media_files: dict[str, Path]
) -> None:
    source = stored(bare_store, media_files[name])
    info = probe(source)
    container, duration, video_info, audio, subtitles = EXPECTED[name]
    assert info.container == container
    assert info.duration == pytest.approx(duration, abs=0.05)
    assert info.video == video_info
    assert info.audio == audio
    assert info.subtitles == subtitles
    # The overall bit rate is the file's size over its length.
    size = media_files[name].stat().st_size
    assert info.bitrate == pytest.approx(size * 8 / info.duration, rel=0.05)
    raw = source.raw
    assert isinstance(raw, RangedReader)
    assert raw.bytes_read <= size  # small files: at most once, whatever the seeks


def test_media_info_round_trips_through_json(media_files: dict[str, Path]) -> None:
    with open(media_files["hevc.mkv"], "rb") as file:
        info = probe(file)
    text = json.dumps(info.to_json())
    assert MediaInfo.from_json(json.loads(text)) == info
    newer = {**json.loads(text), "chapters": []}  # a field a later release may add
    newer["video"]["rotation"] = 0
    assert MediaInfo.from_json(newer) == info
    audio_only = MediaInfo(container="mp3", duration=None, bitrate=None, video=None)
    assert MediaInfo.from_json(audio_only.to_json()) == audio_only


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("random.mkv", "not a video file: its format is not one FFmpeg recognises"),
        ("truncated.mp4", "the file is truncated: it ends 60% of the way through its 'mdat' box"),
        ("subtitles.srt", "not a video file: it is text"),
    ],
)
def test_bad_files_fail_with_a_reason(
    name: str, reason: str, bare_store: Storage, media_files: dict[str, Path]
) -> None:
    with pytest.raises(ProbeFailed) as failure:
        probe(stored(bare_store, media_files[name]))
    assert failure.value.reason.startswith(reason)
    with pytest.raises(ProbeFailed):
        make_poster(stored(bare_store, media_files[name]), duration=None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "not a video file: it is a PNG picture"),
        (b"%PDF-1.7\n" + bytes(5000), "not a video file: it is a PDF document"),
        (b"\xff\xd8\xff\xe0" + bytes(5000), "not a video file: it is a JPEG picture"),
    ],
)
def test_other_files_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(ProbeFailed) as failure:
        probe(io.BytesIO(data))
    assert failure.value.reason == reason


def test_a_playlist_is_refused_without_following_it(
    tmp_path: Path, media_files: dict[str, Path]
) -> None:
    # Were the HLS demuxer allowed, FFmpeg would open the movie this playlist names and the
    # probe would describe it: an upload could make the server read its own files.
    playlist = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-VERSION:3\n"
        f"#EXTINF:3.0,\n{media_files['h264.mp4']}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(ProbeFailed) as failure:
        probe(io.BytesIO(playlist.encode()))
    assert failure.value.reason == "not a video file: it is a playlist"


def test_a_matroska_file_cut_short_is_truncated(tmp_path: Path) -> None:
    whole = media.make_h264_mkv(tmp_path / "whole.mkv", seconds=2.0)
    data = whole.read_bytes()
    for keep in (0.5, 0.02):
        with pytest.raises(ProbeFailed) as failure:
            probe(io.BytesIO(data[: int(len(data) * keep)]))
        assert failure.value.reason.startswith("the file is truncated: it holds ")
    assert probe(io.BytesIO(data)).video is not None


def test_an_mp4_with_its_index_first_but_cut_data_is_truncated(tmp_path: Path) -> None:
    path = media.make_h264_mp4(tmp_path / "fast.mp4", faststart=True)
    data = path.read_bytes()
    assert data[36:40] == b"moov" or b"moov" in data[:200]  # the index comes first
    with pytest.raises(ProbeFailed) as failure:
        probe(io.BytesIO(data[: int(len(data) * 0.7)]))
    assert "truncated" in failure.value.reason
    assert probe(io.BytesIO(data)).duration == pytest.approx(3.0, abs=0.05)


@pytest.fixture(scope="module")
def large_movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100 MB, 10-minute 1280×720 movie with its index at the end (mostly a hole)."""
    folder = tmp_path_factory.mktemp("large")
    return make_large_mp4(folder / "large.mp4", size=100_000_000, seconds=600)


def test_probe_and_poster_of_a_100_mb_movie_read_a_few_megabytes(
    bare_store: Storage, large_movie: Path
) -> None:
    source = stored(bare_store, large_movie)
    info = probe(source)
    assert info.duration == pytest.approx(600, abs=0.1)
    assert info.video is not None and (info.video.width, info.video.height) == (1280, 720)
    raw = source.raw
    assert isinstance(raw, RangedReader)
    probed = raw.bytes_read
    poster = make_poster(source, duration=info.duration)
    assert poster is not None and poster.startswith(b"RIFF")
    assert raw.bytes_read <= 8 * MIB
    # The poster reads keyframes, not the index again.
    assert raw.bytes_read - probed <= 3 * MIB
    assert probed <= PROBE_SIZE + 2 * MIB
    bare_store.delete("movies/1/large_mp4")


def test_a_probe_past_its_deadline_raises_probe_timeout(
    bare_store: Storage, media_files: dict[str, Path]
) -> None:
    path = media_files["h264.mp4"]
    stored(bare_store, path)
    ticks = iter(range(1_000))
    raw = RangedReader(
        bare_store, "movies/1/h264_mp4", path.stat().st_size, deadline=1.5,
        clock=lambda: float(next(ticks)),
    )
    # Small buffers, so the probe needs more reads than the deadline allows: the clock
    # ticks a second per read, so the third is past the deadline.
    with pytest.raises(ProbeTimeout):
        probe(io.BufferedReader(raw, 4096))
    unhurried = RangedReader(bare_store, "movies/1/h264_mp4", path.stat().st_size)
    assert probe(io.BufferedReader(unhurried, 4096)).video == H264
    assert raw.requests <= 2 < unhurried.requests


class FailingStore:
    """A store that answers a few reads, then is unreachable."""

    def __init__(self, store: Storage, answers: int) -> None:
        self.store = store
        self.answers = answers

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Read, until the answers run out."""
        if self.answers <= 0:
            raise StorageUnavailable("The storage service is unavailable.")
        self.answers -= 1
        return self.store.read_range(key, start, length)


@pytest.mark.parametrize("answers", [1, 2, 3, 5, 8])
def test_an_unreachable_store_is_not_a_bad_file(
    answers: int, bare_store: Storage, large_movie: Path
) -> None:
    # Wherever the store stops answering (the header, the index, the first packets, a
    # keyframe), the error is the store's: the job may try again later.
    source = stored(bare_store, large_movie)
    failing = FailingStore(bare_store, answers=answers)
    raw = RangedReader(failing, "movies/1/large_mp4", large_movie.stat().st_size)  # type: ignore[arg-type]
    reader = io.BufferedReader(raw, 64 * 1024)
    with pytest.raises(StorageUnavailable):
        info = probe(reader)
        make_poster(reader, duration=info.duration)
    assert probe(source).duration == pytest.approx(600, abs=0.1)
    bare_store.delete("movies/1/large_mp4")


def test_the_media_core_needs_no_flask_database_or_numpy(
    tmp_path: Path, media_files: dict[str, Path]
) -> None:
    # numpy draws the test movies; the app itself must not need it.
    blocked = (
        "flask", "flask_login", "flask_wtf", "sqlalchemy", "sqlmodel", "alembic", "numpy",
        "boto3", "movievault.config", "movievault.db", "movievault.models",
        "movievault.backends",
    )
    script = f"""
import importlib, pkgutil, shutil
import movievault.media
for module in pkgutil.iter_modules(movievault.media.__path__):
    importlib.import_module(f"movievault.media.{{module.name}}")
from movievault.media.codecs import playback_type
from movievault.media.poster import make_poster
from movievault.media.probe import probe
from movievault.media.reader import open_ranged
from movievault.storage.local import LocalStorage

store = LocalStorage(root="store", secret="a-secret-of-32-bytes-or-more-0123")
store.setup()
with open({str(media_files["h264.mkv"])!r}, "rb") as file:
    store.put(key="movies/1/film", stream=file, size={media_files["h264.mkv"].stat().st_size},
              content_type="video/x-matroska")
reader = open_ranged(store, "movies/1/film", store.object_size("movies/1/film"))
info = probe(reader)
poster = make_poster(reader, duration=info.duration)
print(playback_type(info), poster[:4].decode())
"""
    output = run_without(blocked, script, cwd=tmp_path)
    assert output == 'video/x-matroska; codecs="avc1.64000C, mp4a.40.2" RIFF'
