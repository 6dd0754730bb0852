"""The names browsers and people give a movie's codecs.

A browser answers "can you play this?" for a MIME type with RFC 6381 codec strings,
`video/mp4; codecs="avc1.640028, mp4a.40.2"`, through `canPlayType` (and
`MediaSource.isTypeSupported`). The strings are built here from what the probe stored:
no second look at the file. When the answer is no, `describe_codec` and
`describe_container` name what is missing in plain words ("HEVC video").

The formats follow the MP4 registration authority and the codecs' own bindings: ISO/IEC
14496-15 for H.264 and HEVC, the VP9 and AV1 ISOBMFF bindings, RFC 6381 for `mp4a`.
"""

from __future__ import annotations

from dataclasses import dataclass

from movievault.media.probe import AudioInfo, MediaInfo, VideoInfo

#: MIME types by container, video first, audio-only second.
CONTAINER_TYPES = {
    # QuickTime is the ancestor of MP4 and browsers play it as MP4 (video/quicktime is
    # answered "" by Chromium although it plays the file).
    "mp4": ("video/mp4", "audio/mp4"),
    "mov": ("video/mp4", "audio/mp4"),
    "webm": ("video/webm", "audio/webm"),
    "matroska": ("video/x-matroska", "audio/x-matroska"),
    "ogg": ("video/ogg", "audio/ogg"),
    "avi": ("video/x-msvideo", "video/x-msvideo"),
    "mpegts": ("video/mp2t", "video/mp2t"),
    "mpeg": ("video/mpeg", "video/mpeg"),
    "flv": ("video/x-flv", "video/x-flv"),
    "asf": ("video/x-ms-asf", "audio/x-ms-wma"),
    "mp3": ("audio/mpeg", "audio/mpeg"),
    "aac": ("audio/aac", "audio/aac"),
    "flac": ("audio/flac", "audio/flac"),
    "wav": ("audio/wav", "audio/wav"),
}
#: Containers whose MIME type says everything: a `codecs` parameter would only confuse.
BARE_TYPES = {"mp3", "aac", "flac", "wav"}

#: H.264's profile_idc and constraint flags (byte 2 of avcC) by FFmpeg's profile name.
H264_PROFILES = {
    "Constrained Baseline": (0x42, 0x40),
    "Baseline": (0x42, 0x00),
    "Main": (0x4D, 0x40),
    "Extended": (0x58, 0x00),
    "High": (0x64, 0x00),
    "Constrained High": (0x64, 0x0C),
    "Progressive High": (0x64, 0x08),
    "High 10": (0x6E, 0x00),
    "High 10 Intra": (0x6E, 0x10),
    "High 4:2:2": (0x7A, 0x00),
    "High 4:2:2 Intra": (0x7A, 0x10),
    "High 4:4:4 Predictive": (0xF4, 0x00),
    "High 4:4:4 Intra": (0xF4, 0x10),
    "CAVLC 4:4:4 Intra": (0x2C, 0x10),
}
#: HEVC's general_profile_idc and its compatibility flags (bit-reversed hex) by name.
HEVC_PROFILES = {
    "Main": (1, "6"),
    "Main 10": (2, "4"),
    "Main Still Picture": (3, "8"),
    "Rext": (4, "10"),
}
#: The constraint byte of progressive, frame-only pictures (what films are).
HEVC_CONSTRAINTS = "90"
#: AV1's seq_profile by FFmpeg's profile name.
AV1_PROFILES = {"Main": 0, "High": 1, "Professional": 2}
#: VP9's levels by the largest picture (luma samples) and sample rate each allows.
VP9_LEVELS = [
    (36_864, 829_440, 10), (73_728, 2_764_800, 11), (122_880, 4_608_000, 20),
    (245_760, 9_216_000, 21), (552_960, 20_736_000, 30), (983_040, 36_864_000, 31),
    (2_228_224, 83_558_400, 40), (2_228_224, 160_432_128, 41),
    (8_912_896, 311_951_360, 50), (8_912_896, 588_251_136, 51),
    (8_912_896, 1_176_502_272, 52), (35_651_584, 1_176_502_272, 60),
    (35_651_584, 2_353_004_544, 61), (35_651_584, 4_706_009_088, 62),
]
#: AAC's Audio Object Type by FFmpeg's profile name (LC when unknown).
AAC_OBJECT_TYPES = {"Main": 1, "LC": 2, "SSR": 3, "LTP": 4, "HE-AAC": 5, "HE-AACv2": 29}
#: Audio codecs whose string is fixed.
AUDIO_STRINGS = {
    "ac3": "ac-3", "eac3": "ec-3", "opus": "opus", "flac": "flac", "vorbis": "vorbis",
    "mp3": "mp4a.6B", "alac": "alac", "truehd": "mlpa", "mp2": "mp4a.6B",
}
#: What people call each codec.
NAMES = {
    "h264": "H.264 video", "hevc": "HEVC (H.265) video", "vp8": "VP8 video",
    "vp9": "VP9 video", "av1": "AV1 video", "mpeg4": "MPEG-4 Part 2 (DivX/Xvid) video",
    "mpeg2video": "MPEG-2 video", "mpeg1video": "MPEG-1 video", "vc1": "VC-1 video",
    "wmv3": "Windows Media Video 9", "theora": "Theora video", "prores": "ProRes video",
    "aac": "AAC audio", "mp3": "MP3 audio", "mp2": "MPEG audio",
    "ac3": "AC-3 (Dolby Digital) audio",
    "eac3": "E-AC-3 (Dolby Digital Plus) audio", "truehd": "Dolby TrueHD audio",
    "dts": "DTS audio", "opus": "Opus audio", "vorbis": "Vorbis audio", "flac": "FLAC audio",
    "alac": "Apple Lossless audio", "wmav2": "Windows Media Audio",
}
CONTAINER_NAMES = {
    "mp4": "MP4", "mov": "QuickTime (MOV)", "webm": "WebM", "matroska": "Matroska (MKV)",
    "avi": "AVI", "mpegts": "MPEG transport stream (TS)", "mpeg": "MPEG program stream",
    "flv": "Flash video (FLV)", "asf": "Windows Media (ASF/WMV)", "ogg": "Ogg",
}


@dataclass(frozen=True)
class PlaybackPart:
    """One thing a browser must handle to play the file, with its MIME type to test.

    `type` names only this part (`video/mp4; codecs="hvc1.1.6.L120.90"`), so a page can
    ask about each and say which one fails; `name` is what to call it then.
    """

    type: str
    name: str


def playback_type(info: MediaInfo) -> str | None:
    """The MIME type with codecs for canPlayType; None for a container with no known type."""
    mime = container_type(info)
    if mime is None:
        return None
    if info.container in BARE_TYPES:
        return mime
    codecs = [c for c in (_video_string(info.video), _first_audio_string(info)) if c]
    return f'{mime}; codecs="{", ".join(codecs)}"' if codecs else mime


def playback_parts(info: MediaInfo) -> list[PlaybackPart]:
    """The container, the video and the first audio stream, each with its own type.

    Browsers play the first audio stream of a file, so it alone counts.
    """
    mime = container_type(info)
    if mime is None:
        return []
    parts = [PlaybackPart(type=mime, name=f"{describe_container(info.container)} files")]
    if info.container in BARE_TYPES:
        return parts
    video = _video_string(info.video)
    if info.video is not None and video:
        parts.append(PlaybackPart(f'{mime}; codecs="{video}"', describe_codec(info.video.codec)))
    audio = _first_audio_string(info)
    if info.audio and audio:
        parts.append(PlaybackPart(f'{mime}; codecs="{audio}"', describe_codec(info.audio[0].codec)))
    return parts


def container_type(info: MediaInfo) -> str | None:
    """The container's MIME type (audio/* when there is no video)."""
    types = CONTAINER_TYPES.get(info.container)
    if types is None:
        return None
    return types[0] if info.video is not None else types[1]


def codec_string(stream: VideoInfo | AudioInfo) -> str | None:
    """The RFC 6381 string of one stream; None for a codec without one."""
    if isinstance(stream, VideoInfo):
        return _video_string(stream)
    return _audio_string(stream)


def describe_codec(codec: str) -> str:
    """What people call the codec FFmpeg names `codec` ("hevc" → "HEVC (H.265) video")."""
    if codec in NAMES:
        return NAMES[codec]
    if codec.startswith("dts"):
        return NAMES["dts"]
    if codec.startswith("pcm_"):
        return "uncompressed (PCM) audio"
    return f"{codec.upper()} codec"


def describe_container(container: str) -> str:
    """What people call the container ("matroska" → "Matroska (MKV)")."""
    return CONTAINER_NAMES.get(container, container.upper())


def _first_audio_string(info: MediaInfo) -> str | None:
    """The string of the audio stream a browser would play (the first)."""
    return _audio_string(info.audio[0]) if info.audio else None


def _video_string(video: VideoInfo | None) -> str | None:
    """avc1/hvc1/vp09/av01/... for the video stream."""
    if video is None:
        return None
    if video.codec == "h264":
        profile_idc, constraints = H264_PROFILES.get(video.profile or "", (0x64, 0x00))
        level = video.level if video.level and video.level > 0 else 40  # unknown: 4.0
        return f"avc1.{profile_idc:02X}{constraints:02X}{level:02X}"
    if video.codec == "hevc":
        profile, compatibility = HEVC_PROFILES.get(video.profile or "", HEVC_PROFILES["Main"])
        # Safari plays HEVC only as hvc1; Matroska has no tag and stores it as hvc1 does.
        tag = "hev1" if video.codec_tag == "hev1" else "hvc1"
        level = video.level if video.level and video.level > 0 else 120  # unknown: 4.0
        return f"{tag}.{profile}.{compatibility}.L{level}.{HEVC_CONSTRAINTS}"
    if video.codec == "vp9":
        return f"vp09.{_vp9_profile(video):02d}.{_vp9_level(video):02d}.{_depth(video):02d}"
    if video.codec == "av1":
        profile = AV1_PROFILES.get(video.profile or "", 0)
        level = video.level if video.level is not None and 0 <= video.level <= 31 else 8
        # FFmpeg does not report AV1's tier; films are Main tier (M).
        return f"av01.{profile}.{level:02d}M.{_depth(video):02d}"
    simple = {"vp8": "vp8", "theora": "theora", "mpeg4": "mp4v.20.9"}
    return simple.get(video.codec)


def _audio_string(audio: AudioInfo) -> str | None:
    """mp4a.40.2/opus/ac-3/... for one audio stream."""
    if audio.codec == "aac":
        return f"mp4a.40.{AAC_OBJECT_TYPES.get(audio.profile or '', 2)}"
    if audio.codec == "dts":
        lossless = (audio.profile or "").startswith("DTS-HD")
        return "dtsh" if lossless else "dtsc"
    return AUDIO_STRINGS.get(audio.codec)


def _depth(video: VideoInfo) -> int:
    """Bits per sample, 8 when unknown."""
    return video.bit_depth if video.bit_depth in (8, 10, 12) else 8


def _vp9_profile(video: VideoInfo) -> int:
    """VP9's profile: 0/1 for 8 bits (4:2:0 / other chroma), 2/3 for 10-12 bits."""
    chroma_420 = (video.pix_fmt or "yuv420p").startswith(("yuv420p", "yuvj420p"))
    high = _depth(video) > 8
    return (2 if high else 0) + (0 if chroma_420 else 1)


def _vp9_level(video: VideoInfo) -> int:
    """The lowest VP9 level that allows the picture size and sample rate."""
    samples = video.width * video.height
    rate = samples * (video.fps or 30.0)
    for max_samples, max_rate, level in VP9_LEVELS:
        if samples <= max_samples and rate <= max_rate:
            return level
    return 62
