"""Checks and clean-ups for what clients send: hashes, sizes, names, content types."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from movievault.errors import InvalidInput
from movievault.media import names

MAX_NAME_LENGTH = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
# RFC 6838 type/subtype tokens; anything else becomes application/octet-stream.
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Content types a movie library keeps. Anything else a client declares is stored as
#: application/octet-stream: the type travels with the object (the S3 upload's metadata, the
#: download's Content-Type), and a declared text/html or image/svg+xml is how an upload
#: would become a page or a script on the store's origin. Media and posters by family,
#: subtitles and the containers browsers report by name. Never SVG or another XML type
#: (`*/*+xml`): browsers open those as documents, which can run script.
ALLOWED_TYPE_FAMILIES = ("video/", "audio/", "image/")
ALLOWED_TYPES = frozenset({
    "text/vtt",  # WebVTT subtitles
    "application/x-subrip",  # .srt
    "text/x-ssa",  # .ssa and .ass
    "application/x-matroska",  # .mkv and .mka, as some systems report them
    "application/mp4",
    "application/ogg",
})


def require_object(data: Any, what: str = "request body") -> dict[str, Any]:
    """Insist on a JSON object."""
    if not isinstance(data, dict):
        raise InvalidInput(f"The {what} must be a JSON object.")
    return data


def sha256_hex(value: Any) -> str:
    """Return a lower-case 64-character hex SHA-256, or raise."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
        raise InvalidInput("sha256 must be 64 hexadecimal characters.")
    return value.lower()


def optional_digest(value: Any, name: str) -> str | None:
    """Return a lower-case 64-character hex digest, None when absent, or raise."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.lower()):
        raise InvalidInput(f"{name} must be 64 hexadecimal characters.")
    return value.lower()


def whole(value: Any) -> Any:
    """A JSON number with no fraction as an int (JSON, and its Schema, make no difference
    between 2 and 2.0); anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def file_size(value: Any, *, maximum: int) -> int:
    """Return a size from 1 to `maximum` bytes, or raise (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("size must be an integer number of bytes.")
    if value < 1:
        raise InvalidInput("size must be at least 1 byte; empty files cannot be uploaded.")
    if value > maximum:
        raise InvalidInput(f"size must be at most {maximum} bytes (MAX_FILE_SIZE).")
    return value


def file_name(value: Any) -> str:
    """Clean a file name: drop path parts and control characters, keep it ≤ 255 characters."""
    if not isinstance(value, str):
        raise InvalidInput("name must be a string.")
    # Browsers send bare names, but scripts may send paths from either OS.
    base = re.split(r"[/\\]", value)[-1]
    cleaned = "".join(ch for ch in base if not names.is_dropped(ch))
    cleaned = unicodedata.normalize("NFC", cleaned).strip()
    if cleaned in ("", ".", ".."):
        raise InvalidInput("name must contain at least one visible character.")
    return shorten(cleaned)


def shorten(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """Shorten `name` to `limit` characters, keeping a short extension."""
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 0 < len(ext) <= 16:
        return stem[: limit - len(ext) - 1].rstrip() + "." + ext
    return name[:limit]


def content_type(value: Any) -> str:
    """Return an allowed `type/subtype` (lower-cased), or application/octet-stream."""
    if not isinstance(value, str):
        return DEFAULT_CONTENT_TYPE
    candidate = value.split(";", 1)[0].strip().lower()
    if not _CONTENT_TYPE.fullmatch(candidate) or candidate.endswith("+xml"):  # SVG included
        return DEFAULT_CONTENT_TYPE
    if candidate.startswith(ALLOWED_TYPE_FAMILIES) or candidate in ALLOWED_TYPES:
        return candidate
    return DEFAULT_CONTENT_TYPE


def positive_int(value: Any, *, name: str, maximum: int) -> int:
    """Return an integer from 1 to `maximum`, or raise naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(f"{name} must be an integer from 1 to {maximum}.")
    return value


def part_requests(
    data: Any, *, count: int, limit: int, need_sha256: bool
) -> dict[int, str | None]:
    """Parse a part-URL request: `{"parts": [{"number", "sha256"}]}`, or `{"part_numbers":
    [...]}` when parts carry no checksum; return {number: sha256 or None}, in order."""
    data = require_object(data)
    parts, numbers = data.get("parts"), data.get("part_numbers")
    if parts is None and numbers is not None:
        if need_sha256:
            raise InvalidInput(
                "This upload's parts carry their SHA-256, which the store checks: send "
                '{"parts": [{"number": 1, "sha256": "<64 hex>"}, ...]} instead of part_numbers.'
            )
        parts = [{"number": number} for number in numbers] if isinstance(numbers, list) else None
    if not isinstance(parts, list) or not 1 <= len(parts) <= limit:
        raise InvalidInput(
            f"parts must be a list of 1 to {limit} objects {{number, sha256}} (or part_numbers "
            "a list of part numbers, for uploads without checksums)."
        )
    wanted: dict[int, str | None] = {}
    for part in parts:
        part = require_object(part, "each entry of parts")
        number = positive_int(part.get("number"), name="part number", maximum=count)
        sha256 = optional_digest(part.get("sha256"), "each part's sha256")
        if need_sha256 and sha256 is None:
            raise InvalidInput(f"Part {number} needs its sha256: the store checks every part.")
        wanted[number] = sha256
    return wanted


def title(value: Any) -> str:
    """A film's title: 1 to 200 visible characters (control characters are dropped)."""
    if not isinstance(value, str):
        raise InvalidInput("title must be a string.")
    cleaned = names.clean_title(value)
    if not cleaned:
        raise InvalidInput("title must contain at least one visible character.")
    if len(value.strip()) > names.MAX_TITLE_LENGTH:
        raise InvalidInput(f"title must be at most {names.MAX_TITLE_LENGTH} characters.")
    return cleaned


def year(value: Any) -> int | None:
    """A film's year, from 1870 to five years ahead, or null for none."""
    if value is None:
        return None
    found = names.plausible_year(value)
    if found is None:
        raise InvalidInput(
            f"The year must be a whole number from {names.FIRST_YEAR} to "
            f"{names.latest_year()}, or left empty (null in the API)."
        )
    return found
