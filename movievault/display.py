"""How a movie reads on the pages: running time, resolution badge, placeholder initials,
and the facts of one movie the templates show (`movie_facts`).

No Flask: `templating.py` registers these for the templates.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from movievault import posters
from movievault.models import StoredFile, as_utc, utcnow

if TYPE_CHECKING:
    from movievault.media.probe import MediaInfo

#: Placeholder posters come in this many tones (classes .poster-tone-0 … -7 in app.css:
#: the CSP allows no inline styles, so a colour cannot be written into the page).
TONES = 8
#: Leading articles that make poor initials ("The Long Holiday" reads as "LH").
_ARTICLES = frozenset({"the", "a", "an", "le", "la", "les", "der", "die", "das", "el"})
_WORD = re.compile(r"[^\W_]+")


def running_time(seconds: float | None) -> str:
    """A length as a programme guide writes it: "2 h 4 min", "52 min", "40 s"; "" if unknown."""
    if seconds is None or seconds != seconds or seconds < 0:  # None, NaN or nonsense
        return ""
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def resolution_badge(width: int | None, height: int | None) -> str | None:
    """4K, 1080p, 720p or SD for a picture of that size; None when the size is unknown.

    Judged on the long and the short side together, so a 1920x800 scope film is 1080p, a
    1440x1080 anamorphic one too, and a phone's 1080x1920 portrait video as well.
    """
    if not width or not height or width <= 0 or height <= 0:
        return None
    long_side, short_side = max(width, height), min(width, height)
    if long_side >= 3200 or short_side >= 1800:
        return "4K"
    if long_side >= 1800 or short_side >= 1000:
        return "1080p"
    if long_side >= 1200 or short_side >= 700:
        return "720p"
    return "SD"


def initials(title: str) -> str:
    """One or two letters standing for a title on a placeholder poster ("?" for none)."""
    words = _WORD.findall(title)
    if len(words) > 1 and words[0].lower() in _ARTICLES:
        words = words[1:]
    letters = "".join(word[0] for word in words[:2]).upper()
    return letters or "?"


def tone(title: str) -> int:
    """A placeholder colour for a title: stable across requests and processes."""
    digest = hashlib.blake2s(title.encode("utf-8", "surrogatepass"), digest_size=2).digest()
    return int.from_bytes(digest, "big") % TONES


#: People's words for a channel count.
_CHANNELS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


@dataclass(frozen=True)
class MovieFacts:
    """What the pages show of a movie, read from its catalogue row for one render."""

    title: str
    year: int | None
    status: str  # "pending", "ready" or "failed"
    error: str | None
    running_time: str
    resolution: str | None
    hdr: str | None
    poster_url: str | None
    #: The MIME type with codecs for canPlayType; None while the streams are unknown.
    playback_type: str | None
    #: The container and each codec alone ({"type", "name"}), to say which one fails.
    playback_parts: list[dict[str, str]]
    #: (label, value) lines of the movie page's details, from the probe.
    details: list[tuple[str, str]]
    initials: str
    tone: int
    #: Seconds between a pending movie's htmx polls (see `poll_interval`).
    poll_seconds: int


def poll_interval(age_seconds: float) -> int:
    """How often a page asks again about a movie still being analysed: every 2 s while a
    probe should be seconds away, then less and less often, so a long queue (a big import,
    or probing switched off with MEDIA_WORKERS=0) costs an idle tab almost nothing."""
    if age_seconds < 120:
        return 2
    if age_seconds < 1800:
        return 10
    return 60


def movie_facts(stored: StoredFile, *, root: str = "") -> MovieFacts:
    """The facts of a movie for the pages (`root`: the app's path, for the poster URL)."""
    title = stored.title or stored.name
    info = _media_info(stored)
    playback_type, parts, details = None, [], []
    if info is not None:
        from movievault.media import codecs  # loads PyAV: only once a movie was analysed

        playback_type = codecs.playback_type(info)
        parts = [{"type": p.type, "name": p.name} for p in codecs.playback_parts(info)]
        details = _details(info)
    return MovieFacts(
        title=title,
        year=stored.year,
        status=stored.media_status,
        error=stored.media_error,
        running_time=running_time(stored.duration),
        resolution=resolution_badge(stored.width, stored.height),
        hdr=stored.hdr,
        poster_url=posters.poster_url(stored, root=root),
        playback_type=playback_type,
        playback_parts=parts,
        details=details,
        initials=initials(title),
        tone=tone(title),
        poll_seconds=poll_interval((utcnow() - as_utc(stored.created_at)).total_seconds()),
    )


def _media_info(stored: StoredFile) -> MediaInfo | None:
    """What the probe recorded, once it is ready; None before, or if it is unreadable."""
    if stored.media_status != "ready" or not stored.media_info:
        return None
    from movievault.media.probe import MediaInfo

    try:
        return MediaInfo.from_json(json.loads(stored.media_info))
    except (ValueError, KeyError, TypeError):  # a row written by a newer or broken release
        return None


def _details(info: MediaInfo) -> list[tuple[str, str]]:
    """The movie page's lines about the streams and the container."""
    from movievault.media.codecs import describe_codec, describe_container

    lines: list[tuple[str, str]] = []
    if info.duration:
        lines.append(("Length", running_time(info.duration)))
    video = info.video
    if video is not None:
        picture = [f"{video.width}×{video.height}"]
        badge = resolution_badge(video.width, video.height)
        if badge:
            picture.append(badge)
        if video.hdr:
            picture.append(video.hdr)
        if video.fps:
            picture.append(f"{video.fps:.3f}".rstrip("0").rstrip(".") + " fps")
        lines.append(("Picture", " · ".join(picture)))
        codec = [describe_codec(video.codec)]
        if video.profile:
            codec.append(f"{video.profile} profile")
        if video.bit_depth and video.bit_depth > 8:
            codec.append(f"{video.bit_depth}-bit")
        lines.append(("Video", " · ".join(codec)))
    for audio in info.audio:
        sound = [describe_codec(audio.codec)]
        if audio.channels:
            sound.append(_CHANNELS.get(audio.channels, f"{audio.channels} channels"))
        sound += [text for text in (audio.language, audio.title) if text]
        lines.append(("Audio", " · ".join(sound)))
    # Subtitle streams are listed in the page's Subtitles section, beside subtitle files.
    container = describe_container(info.container)
    if info.bitrate:
        container += f" · {info.bitrate / 1_000_000:.1f} Mbit/s"
    lines.append(("Container", container))
    return lines
