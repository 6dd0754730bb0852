"""Read what a movie is (container, length, streams) from the few bytes FFmpeg needs.

`probe` opens the file with PyAV through any seekable binary file, usually the ranged
reader of a stored object, so only the header, the index and the first packets are read.
Bad input (not a video, truncated, corrupt, too slow) raises ProbeFailed with a reason a
person can read; the store's own errors (StorageUnavailable, NoSuchKey) pass through, since
trying again later may succeed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from movievault.errors import ProbeFailed, ProbeTimeout
from movievault.media.damage import ReadAt, diagnose, truncation
from movievault.media.reader import RangedReader

if TYPE_CHECKING:  # PyAV takes a quarter of a second to import: only where it is used
    from av.container import InputContainer
    from av.stream import Stream
    from av.video.stream import VideoStream

__all__ = [
    "AudioInfo", "MediaInfo", "ProbeFailed", "ProbeTimeout", "SubtitleInfo", "VideoInfo",
    "open_media", "pick_video", "probe",
]

#: Bytes of packets FFmpeg may read after the header to learn the streams' parameters
#: (its default is 5 MB). Measured on the test movies: 500 kB was enough and 250 kB was
#: not (the first audio packet came after a 262 kB keyframe, so AAC's profile was
#: missing); 1 MiB leaves room for a 1080p keyframe before the first audio packet. FFmpeg
#: stops as soon as every stream is known, so most files cost far less.
PROBE_SIZE = 1024 * 1024
#: Microseconds of the streams FFmpeg may analyse for the same purpose (default 5 s).
ANALYZE_DURATION = 2_000_000
#: The demuxers allowed to read an upload: movie and audio containers only. Playlists
#: (HLS, concat) could make FFmpeg open other files or URLs; pictures and text are not
#: movies.
CONTAINERS = (
    "mov", "matroska", "avi", "mpegts", "mpeg", "flv", "asf", "ogg", "mp3", "aac", "flac",
    "wav", "dv", "rm",
)
#: The first bytes of a file, read before FFmpeg's: they name its kind when it refuses.
HEAD_SIZE = 256
OPEN_OPTIONS = {
    "probesize": str(PROBE_SIZE),
    "analyzeduration": str(ANALYZE_DURATION),
    "format_whitelist": ",".join(CONTAINERS),
}
#: FFmpeg's names of the colour transfers (AVColorTransferCharacteristic), where known.
TRANSFERS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}
#: High dynamic range, by transfer: PQ is HDR10 (or Dolby Vision's base), HLG is HLG.
HDR = {"smpte2084": "HDR10", "arib-std-b67": "HLG"}
#: AAC's profile by its Audio Object Type, for when FFmpeg has not decoded a packet.
AAC_OBJECT_TYPES = {1: "Main", 2: "LC", 3: "SSR", 4: "LTP", 5: "HE-AAC", 29: "HE-AACv2"}


@dataclass(frozen=True)
class VideoInfo:
    """The movie's picture: codec, its profile and level, size, rate, pixels, dynamic range.

    `level` is FFmpeg's: H.264's level × 10 (40 = 4.0), HEVC's × 30 (120 = 4.0), AV1's
    seq_level_idx; None when unknown. `fps` is the average frame rate.
    """

    codec: str
    profile: str | None
    level: int | None
    codec_tag: str | None
    width: int
    height: int
    fps: float | None
    pix_fmt: str | None
    bit_depth: int | None
    hdr: str | None
    transfer: str | None


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream: codec, profile (AAC's LC/HE-AAC...), channels, language, title."""

    codec: str
    profile: str | None
    channels: int | None
    language: str | None
    title: str | None


@dataclass(frozen=True)
class SubtitleInfo:
    """One subtitle stream; `text` is False for pictures (PGS, VobSub), which need OCR."""

    codec: str
    language: str | None
    title: str | None
    text: bool


@dataclass(frozen=True)
class MediaInfo:
    """What a probe found; `video` is None for audio-only files."""

    container: str
    duration: float | None
    bitrate: int | None
    video: VideoInfo | None
    audio: list[AudioInfo] = field(default_factory=list)
    subtitles: list[SubtitleInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the catalogue stores it as text)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MediaInfo:
        """The MediaInfo `to_json` gave; unknown keys (from a newer release) are ignored."""

        def build(kind: type[Any], values: dict[str, Any]) -> Any:
            names = kind.__dataclass_fields__
            return kind(**{k: v for k, v in values.items() if k in names})

        video = data.get("video")
        return cls(
            container=data["container"],
            duration=data.get("duration"),
            bitrate=data.get("bitrate"),
            video=build(VideoInfo, video) if video else None,
            audio=[build(AudioInfo, a) for a in data.get("audio") or []],
            subtitles=[build(SubtitleInfo, s) for s in data.get("subtitles") or []],
        )


@contextmanager
def open_media(source: BinaryIO) -> Iterator[InputContainer]:
    """Open `source` with FFmpeg, translating its failures into ProbeFailed with a reason."""
    head, size = _head(source)
    with _open(source, head, size) as container:
        yield container


@contextmanager
def _open(source: BinaryIO, head: bytes, size: int) -> Iterator[InputContainer]:
    """`open_media` for a file whose first bytes and size are known."""
    if size == 0:
        raise ProbeFailed("the file is empty")
    import av

    reader = _ranged(source)
    try:
        container = av.open(source, "r", options=OPEN_OPTIONS)
    except av.FFmpegError:
        raise ProbeFailed(diagnose(head, size, reads_of(source))) from None
    except (EOFError, ValueError) as error:  # PyAV's own complaints
        raise ProbeFailed(f"the file cannot be read as a movie ({error})") from None
    # A read that fails inside FFmpeg (the store's error, a timeout) comes back out of
    # PyAV as that same exception, not as a damaged file.
    try:
        yield container
    except av.FFmpegError as error:
        raise ProbeFailed(f"the file is damaged: {_plain(error)}") from None
    finally:
        container.close()
    # Should FFmpeg ever take a failed read for the end of the file, what it found then
    # is not what the file holds: say what failed instead.
    reader.check()


def probe(source: BinaryIO) -> MediaInfo:
    """Describe the movie in `source`; ProbeFailed when it is none (or is unreadable)."""
    head, size = _head(source)
    with _open(source, head, size) as container:
        video = pick_video(container)
        audio = list(container.streams.audio)
        if video is None and not audio:
            raise ProbeFailed("not a video file: it has no video or audio streams")
        cut = truncation(head, size, reads_of(source))
        if cut:
            raise ProbeFailed(cut)
        if video is not None and video.codec_context.pix_fmt is None:
            raise ProbeFailed("the file is damaged: its video stream cannot be decoded")
        duration = container.duration / 1_000_000 if container.duration else None
        return MediaInfo(
            container=_container_name(container, head),
            duration=round(duration, 3) if duration else None,
            bitrate=container.bit_rate or None,
            video=_video_info(video) if video is not None else None,
            audio=[_audio_info(stream) for stream in audio],
            subtitles=[_subtitle_info(stream) for stream in container.streams.subtitles],
        )


class _PlainFile:
    """What `open_media` asks of a source that is not a ranged reader: nothing can fail
    unseen, since its read errors reach FFmpeg's caller as they are."""

    def check(self) -> None:
        """Nothing to report."""


def _ranged(source: BinaryIO) -> RangedReader | _PlainFile:
    """The ranged reader under `source` (a buffered one), if it is one."""
    raw = getattr(source, "raw", None)
    return raw if isinstance(raw, RangedReader) else _PlainFile()


def reads_of(source: BinaryIO) -> ReadAt:
    """Small reads at any offset of `source`: one ranged request each on a ranged reader
    (no 256 KiB buffer filled for 16 bytes), else seek and read."""
    raw = _ranged(source)
    if isinstance(raw, RangedReader):
        return raw.read_at

    def read_at(offset: int, length: int) -> bytes:
        source.seek(offset)
        return source.read(length)

    return read_at


def _head(source: BinaryIO) -> tuple[bytes, int]:
    """The first bytes of `source` and its size; the position goes back to the start.

    Through the buffered reader this costs nothing more: FFmpeg reads the same first
    buffer next.
    """
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    head = source.read(HEAD_SIZE)
    source.seek(0)
    return head, size


def _container_name(container: InputContainer, head: bytes) -> str:
    """The container's usual name: mp4, mov, matroska, webm, avi, mp3...

    FFmpeg's demuxers read families ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"); the
    file says which member it is (MP4's major brand, Matroska's DocType).
    """
    family = container.format.name.split(",")[0]
    if family == "mov":
        brand = head[8:12] if head[4:8] == b"ftyp" else b""
        return "mov" if brand == b"qt  " else "mp4"
    if family == "matroska":
        return "webm" if b"\x42\x82\x84webm" in head else "matroska"
    return family


def pick_video(container: InputContainer) -> VideoStream | None:
    """The film's picture: the default (else the first) video stream that is not cover art.

    Attached pictures (cover art, thumbnails) are video streams of one frame; a song with
    a cover has no video at all.
    """
    import av

    streams = [
        s for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic
    ]
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0] if streams else None


def _video_info(stream: VideoStream) -> VideoInfo:
    """The fields of the video stream."""
    context = stream.codec_context
    pix_fmt = context.pix_fmt
    transfer = TRANSFERS.get(int(context.color_trc or 0))
    level = context.level
    rate = stream.average_rate or stream.guessed_rate
    if not context.width or not context.height:
        raise ProbeFailed("the file is damaged: its video stream has no picture size")
    return VideoInfo(
        codec=_codec_name(stream),
        profile=context.profile or None,
        level=level if level is not None and level >= 0 else None,
        codec_tag=_tag(context.codec_tag),
        width=context.width,
        height=context.height,
        fps=round(float(rate), 3) if rate else None,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt),
        hdr=HDR.get(transfer or ""),
        transfer=transfer,
    )


def _audio_info(stream: Stream) -> AudioInfo:
    """The fields of one audio stream."""
    context: Any = stream.codec_context
    profile = context.profile or None
    if profile is None and _codec_name(stream) == "aac":
        profile = _aac_profile(bytes(context.extradata or b""))
    return AudioInfo(
        codec=_codec_name(stream),
        profile=profile,
        channels=context.channels or None,
        language=_language(stream),
        title=stream.metadata.get("title") or None,
    )


def _subtitle_info(stream: Stream) -> SubtitleInfo:
    """The fields of one subtitle stream."""
    return SubtitleInfo(
        codec=_codec_name(stream),
        language=_language(stream),
        title=stream.metadata.get("title") or None,
        text=not stream.codec_context.codec.bitmap_sub,
    )


def _codec_name(stream: Stream) -> str:
    """FFmpeg's name of the codec (`mp3`, not the decoder's `mp3float`)."""
    return str(stream.codec_context.codec.canonical_name)


def _language(stream: Stream) -> str | None:
    """The stream's ISO 639-2 language; "und" (undetermined) is None."""
    language = (stream.metadata.get("language") or "").strip().lower()
    return language if language and language != "und" else None


def _tag(tag: str | None) -> str | None:
    """The codec's four-character tag (`avc1`, `hvc1`...), None when there is none."""
    tag = (tag or "").strip("\x00 ")
    return tag if tag.isprintable() and tag else None


def _bit_depth(pix_fmt: str | None) -> int | None:
    """Bits per sample of the pixel format's first component (8, 10, 12)."""
    if not pix_fmt:
        return None
    import av

    try:
        return int(av.VideoFormat(pix_fmt).components[0].bits)
    except (ValueError, IndexError):
        return None


def _aac_profile(extradata: bytes) -> str | None:
    """AAC's profile from its AudioSpecificConfig (the first 5 bits; 31 escapes to 6 more)."""
    if len(extradata) < 2:
        return None
    object_type = extradata[0] >> 3
    if object_type == 31:
        object_type = 32 + (((extradata[0] & 0x07) << 3) | (extradata[1] >> 5))
    return AAC_OBJECT_TYPES.get(object_type)


def _plain(error: Exception) -> str:
    """An FFmpeg error's message without the errno and file name around it."""
    return str(getattr(error, "strerror", None) or error).strip().rstrip(".").lower()
