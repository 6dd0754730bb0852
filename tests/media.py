"""Real test media, made with PyAV by the tests themselves (no binary fixtures).

Every maker writes one file at `path` and returns the path. The clips are small and short
(320×180, 2–4 s, x264/x265 `ultrafast`, libvpx realtime) because the suite runs on two
cores: each takes well under a second here. Pictures are a moving gradient with bars, so
they carry detail; `black=` seconds of black frames at the start make the case a poster
must avoid (a black first frame).

What each file holds is in the constants below, so tests can compare a probe field by
field: H.264 is High profile (CABAC and 8×8 transforms turned back on over `ultrafast`),
AAC is LC, HEVC is Main, VP9 is profile 0.

Subtitles (`write_srt`) are written as UTF-8 with a byte-order mark by default, the way
Windows editors save them; `encoding="cp1252"` writes the other common kind.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

#: Frame size and rate of every clip unless a maker is told otherwise.
WIDTH, HEIGHT, FPS = 320, 180, 24
SAMPLE_RATE = 48_000
#: The cues of `write_srt`: (start, end, text) in seconds, non-ASCII on purpose.
SRT_CUES = [
    (0.5, 1.5, "Où est la bibliothèque ?"),
    (1.6, 2.4, "Größe: 12 × 3 — “quoted”"),
    (2.5, 3.0, "¡Señor, ça coûte 5 €!"),
]
#: The cover picture's size in `make_h264_mp4(cover=True)` and `make_audio_only(cover=True)`.
COVER_SIZE = 160
X264 = {"preset": "ultrafast", "x264-params": "cabac=1:8x8dct=1:log-level=error"}


@cache
def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column numbers of every pixel (kept: every frame needs them)."""
    y, x = np.mgrid[0:height, 0:width]
    return y, x


def picture(index: int, width: int, height: int, *, black: bool = False) -> np.ndarray:
    """An RGB frame: a gradient that moves with `index`, crossed by bars; or all black."""
    if black:
        return np.zeros((height, width, 3), np.uint8)
    y, x = _grid(width, height)
    red = (x * 255 // width + index * 3) % 256
    green = (y * 255 // height + index * 2) % 256
    blue = ((x + index * 4) // 16 % 2) * 160 + ((y // 12) % 2) * 60
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _video_frames(
    stream: VideoStream, *, seconds: float, black: float, fps: int
) -> Iterator[av.VideoFrame]:
    """The clip's frames, timestamped in frame units."""
    for index in range(round(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(
            picture(index, stream.width, stream.height, black=index < black * fps),
            format="rgb24",
        )
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        yield frame


def audio_frames(
    stream: AudioStream, *, seconds: float, samples: int = 1024, silent: bool = False
) -> Iterator[av.AudioFrame]:
    """A 440 Hz tone (or silence) on every channel of the stream's layout, in planar floats."""
    rate = stream.rate or SAMPLE_RATE
    channels = stream.layout.nb_channels
    total = round(seconds * rate)
    for start in range(0, total, samples):
        count = min(samples, total - start)
        t = np.arange(start, start + count) / rate
        tone = np.zeros(count, np.float32) if silent else (0.2 * np.sin(2 * np.pi * 440 * t))
        planes = np.tile(tone.astype(np.float32), (channels, 1))
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=stream.layout.name)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def _encode_interleaved(
    out: OutputContainer,
    video: VideoStream | None,
    audio: list[AudioStream],
    *,
    seconds: float,
    black: float = 0.0,
    fps: int = FPS,
) -> None:
    """Encode the clip's video and audio, muxing them in time order as real files are."""
    pending: list[tuple[float, av.VideoFrame | av.AudioFrame, VideoStream | AudioStream]] = []
    if video is not None:
        pending += [
            (float(f.pts or 0) / fps, f, video)
            for f in _video_frames(video, seconds=seconds, black=black, fps=fps)
        ]
    for stream in audio:
        size = 1536 if stream.codec_context.name in {"ac3", "eac3"} else 1024
        if stream.codec_context.name in {"opus", "libopus"}:
            size = 960
        pending += [
            (float(f.pts or 0) / (stream.rate or SAMPLE_RATE), f, stream)
            for f in audio_frames(stream, seconds=seconds, samples=size)
        ]
    for _, frame, stream in sorted(pending, key=lambda item: item[0]):
        out.mux(stream.encode(frame))  # type: ignore[arg-type]
    for stream in [video, *audio]:
        if stream is not None:
            out.mux(stream.encode(None))


def video_stream(
    out: OutputContainer,
    codec: str,
    *,
    size: tuple[int, int],
    fps: int,
    options: dict[str, str],
) -> VideoStream:
    """Add a video stream of `codec` at `size` and `fps`."""
    stream = out.add_stream(codec, rate=fps, options=options)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    return stream


def audio_stream(
    out: OutputContainer, codec: str, *, layout: str = "stereo", language: str | None = None,
    title: str | None = None, bit_rate: int | None = None,
) -> AudioStream:
    """Add an audio stream of `codec` with a channel layout and optional language/title."""
    stream = out.add_stream(codec, rate=SAMPLE_RATE)
    stream.layout = layout
    if bit_rate:
        stream.bit_rate = bit_rate
    if language:
        stream.metadata["language"] = language
    if title:
        stream.metadata["title"] = title
    return stream


def _cover_packets(out: OutputContainer) -> list[av.Packet]:
    """Add a JPEG cover picture (a flat square) as an attached picture; mux its packets
    after the other streams' (the stream must exist before the muxer writes its header)."""
    cover = out.add_stream("mjpeg")
    cover.width = cover.height = COVER_SIZE
    cover.pix_fmt = "yuvj420p"
    cover.disposition = av.stream.Disposition.attached_pic
    image = np.full((COVER_SIZE, COVER_SIZE, 3), (200, 40, 40), np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuvj420p")
    return cover.encode(frame) + cover.encode(None)


def make_h264_mp4(
    path: str | os.PathLike[str],
    *,
    seconds: float = 3.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    fps: int = FPS,
    black: float = 0.0,
    gop: int = 12,
    audio: bool = True,
    cover: bool = False,
    faststart: bool = False,
    rotation: int = 0,
) -> Path:
    """H.264 High + AAC-LC stereo in MP4, its index (moov) at the end unless `faststart`.

    `black` seconds of black frames come first; a keyframe every `gop` frames. A
    `rotation` (degrees counterclockwise) goes in the display matrix, as phones write it.
    """
    path = Path(path)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        video = video_stream(
            out, "libx264", size=size, fps=fps,
            options={**X264, "g": str(gop), "keyint_min": str(gop)},
        )
        if rotation:
            video.set_display_rotation(rotation)
        audio_streams = [audio_stream(out, "aac", language="eng")] if audio else []
        picture = _cover_packets(out) if cover else []
        _encode_interleaved(out, video, audio_streams, seconds=seconds, black=black, fps=fps)
        out.mux(picture)
    return path


def remux(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy every stream of `source` into the container `path`'s suffix names, unchanged."""
    path = Path(path)
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for stream in inp.streams:
            mapping[stream.index].metadata.update(stream.metadata)
        for packet in inp.demux():
            if packet.size == 0:  # the flush packet at the end of each stream
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return path


def make_h264_mkv(path: str | os.PathLike[str], **options: object) -> Path:
    """The H.264/AAC MP4 of `make_h264_mp4(**options)` remuxed into Matroska."""
    path = Path(path)
    source = path.with_name(path.stem + "-source.mp4")
    make_h264_mp4(source, **options)  # type: ignore[arg-type]
    try:
        return remux(source, path)
    finally:
        source.unlink()


def make_hevc_mkv(
    path: str | os.PathLike[str],
    *,
    seconds: float = 3.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    fps: int = FPS,
) -> Path:
    """A movie-rip layout: HEVC Main, AC-3 5.1 (eng), AAC stereo (fre, "Commentaire") and
    a French SRT subtitle stream, in Matroska."""
    path = Path(path)
    srt = write_srt(path.with_name(path.stem + "-subs.srt"), encoding="utf-8")
    try:
        with av.open(str(srt)) as subtitles, av.open(str(path), "w") as out:
            video = video_stream(
                out, "libx265", size=size, fps=fps,
                options={"preset": "ultrafast", "x265-params": "log-level=error:keyint=12"},
            )
            audio = [
                audio_stream(out, "ac3", layout="5.1", language="eng", bit_rate=384_000),
                audio_stream(out, "aac", language="fre", title="Commentaire"),
            ]
            text = out.add_stream_from_template(subtitles.streams[0])
            text.metadata["language"] = "fre"
            text.metadata["title"] = "Français"
            _encode_interleaved(out, video, audio, seconds=seconds, fps=fps)
            for packet in subtitles.demux(subtitles.streams[0]):
                if packet.size:
                    packet.stream = text
                    out.mux(packet)
    finally:
        srt.unlink()
    return path


def make_hdr10_mkv(path: str | os.PathLike[str], *, seconds: float = 1.0) -> Path:
    """HEVC Main 10 with the PQ transfer and BT.2020 colours (HDR10), in Matroska."""
    path = Path(path)
    params = "log-level=error:keyint=12:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
    with av.open(str(path), "w") as out:
        video = video_stream(
            out, "libx265", size=(WIDTH, HEIGHT), fps=FPS,
            options={"preset": "ultrafast", "x265-params": params},
        )
        video.pix_fmt = "yuv420p10le"
        _encode_interleaved(out, video, [], seconds=seconds)
    return path


def make_hlg_mp4(path: str | os.PathLike[str], *, seconds: float = 1.0) -> Path:
    """H.264 High 10 tagged with the HLG transfer and BT.2020 colours, in MP4."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        video = video_stream(out, "libx264", size=(WIDTH, HEIGHT), fps=FPS, options=X264)
        video.pix_fmt = "yuv420p10le"
        context = video.codec_context
        context.color_trc, context.color_primaries, context.colorspace = 18, 9, 9
        _encode_interleaved(out, video, [], seconds=seconds)
    return path


def make_av1_mp4(path: str | os.PathLike[str], *, seconds: float = 1.0) -> Path:
    """AV1 Main, 8-bit (SVT-AV1 at its fastest preset) with Opus, in MP4."""
    path = Path(path)
    os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 talks a lot otherwise
    with av.open(str(path), "w", format="mp4") as out:
        video = video_stream(
            out, "libsvtav1", size=(WIDTH, HEIGHT), fps=FPS,
            options={"preset": "12", "g": "12"},
        )
        audio = [audio_stream(out, "libopus", language="eng")]
        _encode_interleaved(out, video, audio, seconds=seconds)
    return path


def make_vp9_webm(
    path: str | os.PathLike[str],
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    fps: int = FPS,
) -> Path:
    """VP9 (profile 0, 8-bit) and Opus stereo in WebM."""
    path = Path(path)
    with av.open(str(path), "w", format="webm") as out:
        video = video_stream(
            out, "libvpx-vp9", size=size, fps=fps,
            options={"deadline": "realtime", "cpu-used": "8", "g": "12", "b": "300k"},
        )
        audio = [audio_stream(out, "libopus", language="eng")]
        _encode_interleaved(out, video, audio, seconds=seconds, fps=fps)
    return path


def make_audio_only(
    path: str | os.PathLike[str], *, seconds: float = 2.0, cover: bool = False
) -> Path:
    """A song: AAC-LC in M4A (MP3 when `path` ends in .mp3), optionally with cover art.

    With `cover`, the only "video" stream is the attached picture: the file still has no
    video to probe or to take a poster from.
    """
    path = Path(path)
    codec = "libmp3lame" if path.suffix == ".mp3" else "aac"
    container = "mp3" if path.suffix == ".mp3" else "mp4"
    with av.open(str(path), "w", format=container) as out:
        audio = [audio_stream(out, codec)]
        picture = _cover_packets(out) if cover else []
        _encode_interleaved(out, None, audio, seconds=seconds)
        out.mux(picture)
    return path


def make_random_bytes(path: str | os.PathLike[str], *, size: int = 256 * 1024) -> Path:
    """Bytes that are no media at all (name it `.mkv` to pretend otherwise); seeded."""
    path = Path(path)
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def make_truncated_mp4(path: str | os.PathLike[str], *, keep: float = 0.6) -> Path:
    """An H.264/AAC MP4 cut after `keep` of its bytes, as an interrupted copy leaves it.

    Its index was at the end, so the cut removes it: the file cannot be read at all.
    """
    path = Path(path)
    make_h264_mp4(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_mp4_with_cover(path: str | os.PathLike[str], **options: object) -> Path:
    """The H.264/AAC MP4 of `make_h264_mp4` with an attached JPEG cover picture."""
    return make_h264_mp4(path, cover=True, **options)  # type: ignore[arg-type]


def srt_text(cues: list[tuple[float, float, str]] = SRT_CUES) -> str:
    """The SubRip text of `cues`."""

    def stamp(seconds: float) -> str:
        millis = round(seconds * 1000)
        return (
            f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:"
            f"{millis // 1000 % 60:02d},{millis % 1000:03d}"
        )

    blocks = [
        f"{number}\r\n{stamp(start)} --> {stamp(end)}\r\n{text}\r\n"
        for number, (start, end, text) in enumerate(cues, 1)
    ]
    return "\r\n".join(blocks)


def write_srt(
    path: str | os.PathLike[str],
    *,
    cues: list[tuple[float, float, str]] = SRT_CUES,
    encoding: str = "utf-8-sig",
) -> Path:
    """An SRT file with CRLF lines, in UTF-8 with a BOM by default (or e.g. cp1252)."""
    path = Path(path)
    path.write_bytes(srt_text(cues).encode(encoding))
    return path
