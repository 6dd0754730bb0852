"""Subtitle files: their language from the name, and their cues as WebVTT for `<track>`.

Browsers take only WebVTT in a `<track>`, so SubRip and SubStation Alpha files are
converted once, when they are attached (pysubs2 parses and writes; nothing here parses
cues by hand). SubRip files from the wild are often Windows-1252, or UTF-8 with a BOM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pysubs2

from movievault.errors import SubtitleInvalid, SubtitleTooLarge

if TYPE_CHECKING:  # its language tables take 0.2 s to load: only when a name is read
    import babelfish

#: Extensions attached as subtitles, and pysubs2's name for each format.
FORMATS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa"}
#: Larger than any real subtitle file (a feature film's SRT is ~100 KB).
MAX_SIZE = 5 * 1024 * 1024
#: Name parts that describe the track rather than its language ("Film.en.forced.srt").
FLAGS = {"forced": "forced", "sdh": "SDH", "cc": "CC", "hi": "SDH", "default": ""}
_REGION = re.compile(r"^([a-z]{2})[-_]([a-z]{2}|[0-9]{3})$", re.IGNORECASE)


@dataclass(frozen=True)
class SubtitleName:
    """What a subtitle file's name says: its language (BCP 47) and a label for people."""

    language: str | None
    label: str


def subtitle_format(name: str) -> str:
    """pysubs2's format name for the file's extension, or SubtitleInvalid."""
    extension = name[name.rfind("."):].lower() if "." in name else ""
    if extension not in FORMATS:
        raise SubtitleInvalid("Subtitles must be .srt, .vtt, .ass or .ssa files.")
    return FORMATS[extension]


def _language(token: str, *, names: bool) -> babelfish.Language | None:
    """The language a name part stands for: an ISO 639-1/-2 code, `pt-BR`, or (when
    `names`) an English name such as "French"."""
    import babelfish

    try:
        region = _REGION.match(token)
        if region:
            return babelfish.Language.fromietf(f"{region[1].lower()}-{region[2].upper()}")
        if len(token) == 2:
            return babelfish.Language.fromalpha2(token.lower())
        if len(token) == 3:
            try:
                return babelfish.Language.fromalpha3b(token.lower())
            except babelfish.Error:
                return babelfish.Language.fromalpha3t(token.lower())
        if names and token.isalpha():
            return babelfish.Language.fromname(token.capitalize())
    except (babelfish.Error, ValueError, KeyError):
        return None
    return None


def _tag(language: babelfish.Language) -> str:
    """The shortest BCP 47 tag: `en`, `pt-BR`, or the ISO 639-3 code when there is no
    two-letter one."""
    import babelfish

    try:
        base = language.alpha2
    except babelfish.LanguageConvertError:
        base = language.alpha3
    return f"{base}-{language.country.alpha2}" if language.country else base


def parse_name(name: str) -> SubtitleName:
    """Read the language and flags from the parts before the extension, last first:
    `Film.en.srt`, `Film.eng.forced.srt`, `Film.2004.pt-BR.srt`, `French.srt`."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    parts = [part for part in re.split(r"[.\s]+", stem) if part]
    language: babelfish.Language | None = None
    flags: list[str] = []
    # The first part is the film's name, unless it is the only one ("en.srt", "French.srt").
    candidates = parts[1:] if len(parts) > 1 else parts
    for part in reversed(candidates):
        if part.lower() in FLAGS:
            flags.append(FLAGS[part.lower()])
            continue
        language = _language(part, names=len(parts) == 1 or part[:1].isupper())
        break
    label = language.name if language is not None else "Subtitles"
    if language is not None and language.country is not None:
        label += f" ({language.country.name.title()})"
    shown = [flag for flag in reversed(flags) if flag]
    if shown:
        label += f" [{', '.join(shown)}]"
    return SubtitleName(language=_tag(language) if language else None, label=label)


def decode(data: bytes) -> str:
    """The text of a subtitle file: UTF-8 (with or without a BOM), UTF-16 with a BOM, else
    Windows-1252 (what most other SubRip files are), else Latin-1, which takes any byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def to_webvtt(data: bytes, *, name: str) -> str:
    """The cues of a .srt/.vtt/.ass/.ssa file as WebVTT text; SubtitleInvalid when the
    bytes hold no cue (not a subtitle file, or an empty one)."""
    if len(data) > MAX_SIZE:
        raise SubtitleTooLarge(f"Subtitle files are limited to {MAX_SIZE // 2**20} MiB.")
    text = decode(data).replace("\x00", "")
    try:
        subtitles = pysubs2.SSAFile.from_string(text, format_=subtitle_format(name))
    except SubtitleInvalid:
        raise
    except Exception as error:  # pysubs2 raises several kinds for malformed input
        raise SubtitleInvalid(f"This is not a readable subtitle file: {error}") from None
    # Comments and drawings of SubStation Alpha files are not text to show.
    subtitles.events = [
        event for event in subtitles.events
        if not event.is_comment and not event.is_drawing and event.plaintext.strip()
    ]
    if not subtitles.events:
        raise SubtitleInvalid(f"No subtitle cues were found in {name}.")
    return str(subtitles.to_string("vtt"))
