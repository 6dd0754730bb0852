"""RFC 6381 codec strings and MIME types from stored metadata, and their human names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from movievault.media.codecs import (
    PlaybackPart,
    codec_string,
    describe_codec,
    describe_container,
    playback_parts,
    playback_type,
)
from movievault.media.probe import AudioInfo, MediaInfo, VideoInfo, probe

VIDEO = VideoInfo(
    codec="h264", profile="High", level=40, codec_tag="avc1", width=1920, height=1080,
    fps=23.976, pix_fmt="yuv420p", bit_depth=8, hdr=None, transfer=None,
)
AAC = AudioInfo(codec="aac", profile="LC", channels=2, language="eng", title=None)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "avc1.640028"),
        ({"level": 41}, "avc1.640029"),
        ({"profile": "Main", "level": 31}, "avc1.4D401F"),
        ({"profile": "Constrained Baseline", "level": 30}, "avc1.42401E"),
        ({"profile": "Baseline", "level": 21}, "avc1.420015"),
        ({"profile": "High 10", "level": 51, "bit_depth": 10}, "avc1.6E0033"),
        ({"profile": "High 4:4:4 Predictive", "level": 52}, "avc1.F40034"),
        ({"level": None}, "avc1.640028"),  # unknown level: 4.0
        ({"codec": "hevc", "profile": "Main", "level": 120, "codec_tag": None},
         "hvc1.1.6.L120.90"),
        ({"codec": "hevc", "profile": "Main 10", "level": 153, "codec_tag": "hvc1"},
         "hvc1.2.4.L153.90"),
        ({"codec": "hevc", "profile": "Main", "level": 93, "codec_tag": "hev1"},
         "hev1.1.6.L93.90"),
        ({"codec": "vp9", "profile": "Profile 0", "level": None}, "vp09.00.40.08"),
        ({"codec": "vp9", "width": 3840, "height": 2160, "fps": 60.0, "bit_depth": 10,
          "pix_fmt": "yuv420p10le"}, "vp09.02.51.10"),
        ({"codec": "vp9", "width": 640, "height": 360, "fps": 30.0}, "vp09.00.21.08"),
        ({"codec": "vp9", "width": 1280, "height": 720, "fps": 30.0}, "vp09.00.31.08"),
        ({"codec": "vp9", "pix_fmt": "yuv444p"}, "vp09.01.40.08"),
        ({"codec": "av1", "profile": "Main", "level": 8}, "av01.0.08M.08"),
        ({"codec": "av1", "profile": "Main", "level": 12, "bit_depth": 10}, "av01.0.12M.10"),
        ({"codec": "av1", "profile": "High", "level": None}, "av01.1.08M.08"),
        ({"codec": "vp8"}, "vp8"),
        ({"codec": "mpeg2video"}, None),
    ],
)
def test_video_codec_strings(changes: dict[str, object], expected: str | None) -> None:
    assert codec_string(replace(VIDEO, **changes)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("codec", "profile", "expected"),
    [
        ("aac", "LC", "mp4a.40.2"),
        ("aac", "HE-AAC", "mp4a.40.5"),
        ("aac", "HE-AACv2", "mp4a.40.29"),
        ("aac", None, "mp4a.40.2"),
        ("mp3", None, "mp4a.6B"),
        ("ac3", None, "ac-3"),
        ("eac3", None, "ec-3"),
        ("opus", None, "opus"),
        ("flac", None, "flac"),
        ("vorbis", None, "vorbis"),
        ("truehd", None, "mlpa"),
        ("dts", "DTS", "dtsc"),
        ("dts", "DTS-HD MA", "dtsh"),
        ("pcm_s16le", None, None),
    ],
)
def test_audio_codec_strings(codec: str, profile: str | None, expected: str | None) -> None:
    assert codec_string(replace(AAC, codec=codec, profile=profile)) == expected


def media_info(container: str, video: VideoInfo | None, *audio: AudioInfo) -> MediaInfo:
    """A MediaInfo of a two-hour film."""
    return MediaInfo(container=container, duration=7200.0, bitrate=8_000_000, video=video,
                     audio=list(audio))


def test_playback_types_name_the_container_and_the_first_audio_stream() -> None:
    ac3 = replace(AAC, codec="ac3", profile=None, channels=6)
    assert playback_type(media_info("mp4", VIDEO, AAC, ac3)) == (
        'video/mp4; codecs="avc1.640028, mp4a.40.2"'
    )
    assert playback_type(media_info("mov", VIDEO, ac3)) == 'video/mp4; codecs="avc1.640028, ac-3"'
    assert playback_type(media_info("matroska", VIDEO)) == 'video/x-matroska; codecs="avc1.640028"'
    webm = media_info("webm", replace(VIDEO, codec="vp9", profile="Profile 0"),
                      replace(AAC, codec="opus", profile=None))
    assert playback_type(webm) == 'video/webm; codecs="vp09.00.40.08, opus"'
    assert playback_type(media_info("mp4", None, AAC)) == 'audio/mp4; codecs="mp4a.40.2"'
    assert playback_type(media_info("mp3", None, replace(AAC, codec="mp3"))) == "audio/mpeg"
    assert playback_type(media_info("avi", VIDEO, AAC)) == (
        'video/x-msvideo; codecs="avc1.640028, mp4a.40.2"'
    )
    assert playback_type(media_info("nut", VIDEO, AAC)) is None
    # A codec without a string is left out: the container's own answer decides.
    assert playback_type(media_info("mpeg", replace(VIDEO, codec="mpeg2video"))) == "video/mpeg"


def test_playback_parts_let_a_page_say_which_one_fails() -> None:
    hevc = replace(VIDEO, codec="hevc", profile="Main", level=120, codec_tag=None)
    ac3 = replace(AAC, codec="ac3", profile=None)
    assert playback_parts(media_info("matroska", hevc, ac3, AAC)) == [
        PlaybackPart("video/x-matroska", "Matroska (MKV) files"),
        PlaybackPart('video/x-matroska; codecs="hvc1.1.6.L120.90"', "HEVC (H.265) video"),
        PlaybackPart('video/x-matroska; codecs="ac-3"', "AC-3 (Dolby Digital) audio"),
    ]
    assert playback_parts(media_info("mp3", None, replace(AAC, codec="mp3"))) == [
        PlaybackPart("audio/mpeg", "MP3 files"),
    ]
    assert playback_parts(media_info("nut", VIDEO)) == []


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("hevc", "HEVC (H.265) video"),
        ("h264", "H.264 video"),
        ("ac3", "AC-3 (Dolby Digital) audio"),
        ("eac3", "E-AC-3 (Dolby Digital Plus) audio"),
        ("dts", "DTS audio"),
        ("dtshd", "DTS audio"),
        ("pcm_s24le", "uncompressed (PCM) audio"),
        ("cinepak", "CINEPAK codec"),
    ],
)
def test_codecs_have_names_people_know(codec: str, name: str) -> None:
    assert describe_codec(codec) == name


def test_containers_have_names_people_know() -> None:
    assert describe_container("matroska") == "Matroska (MKV)"
    assert describe_container("avi") == "AVI"
    assert describe_container("nut") == "NUT"


#: The type each test movie gets, from its probe.
TYPES = {
    "h264.mp4": 'video/mp4; codecs="avc1.64000C, mp4a.40.2"',
    "h264.mkv": 'video/x-matroska; codecs="avc1.64000C, mp4a.40.2"',
    "hevc.mkv": 'video/x-matroska; codecs="hvc1.1.6.L60.90, ac-3"',
    "vp9.webm": 'video/webm; codecs="vp09.00.11.08, opus"',
    "av1.mp4": 'video/mp4; codecs="av01.0.00M.08, opus"',
    "hdr10.mkv": 'video/x-matroska; codecs="hvc1.2.4.L60.90"',
    "hlg.mp4": 'video/mp4; codecs="avc1.6E000C"',
    "song.m4a": 'audio/mp4; codecs="mp4a.40.2"',
    "song.mp3": "audio/mpeg",
    "cover.mp4": 'video/mp4; codecs="avc1.64000C, mp4a.40.2"',
}


@pytest.mark.parametrize("name", sorted(TYPES))
def test_each_test_movie_gets_its_type(name: str, media_files: dict[str, Path]) -> None:
    with open(media_files[name], "rb") as file:
        assert playback_type(probe(file)) == TYPES[name]
