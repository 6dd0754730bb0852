"""How a movie reads on the pages: running time, resolution badge, placeholder initials.

Plain functions over plain values (no Flask, no database), registered as template filters
by `templating.py`.
"""

from __future__ import annotations

import hashlib
import re

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
