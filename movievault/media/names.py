"""Titles and years from file names ("Long.Film.1999.1080p.BluRay.x264-GRP.mkv")."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

MAX_TITLE_LENGTH = 200
#: The first films were shot in the late 1880s; a year a few ahead is an announced release.
FIRST_YEAR = 1870
YEARS_AHEAD = 5
# guessit's rules are compiled on first use and its matcher keeps state while it runs: one
# name at a time (about 16 ms each), which the catalogue's rate of new files never notices.
_lock = threading.Lock()
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def latest_year() -> int:
    """The latest year a film may have: this year plus a few (announced releases)."""
    return datetime.now(UTC).year + YEARS_AHEAD


def plausible_year(value: Any) -> int | None:
    """`value` when it is a year a film can have, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        if FIRST_YEAR <= value <= latest_year():
            return value
    return None


#: What names and titles drop: controls, formats (bidi overrides, zero-width spaces),
#: surrogates and private use. Unassigned code points stay: which ones are unassigned
#: depends on the Unicode version of the Python serving the app, which no client can know.
DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def is_dropped(char: str) -> bool:
    """Whether names and titles drop `char` (see DROPPED_CATEGORIES)."""
    return unicodedata.category(char) in DROPPED_CATEGORIES


def clean_title(text: str) -> str:
    """Drop control characters and surrounding space, NFC-normalise, cut to 200 characters."""
    visible = "".join(ch for ch in text if not is_dropped(ch))
    return unicodedata.normalize("NFC", visible).strip()[:MAX_TITLE_LENGTH].strip()


def _stem_title(filename: str) -> str:
    """The name without its extension, dots and underscores read as spaces; never empty."""
    stem = _EXTENSION.sub("", filename)
    return clean_title(_spaced(stem)) or clean_title(stem) or clean_title(filename) or "Untitled"


def _spaced(text: str) -> str:
    """Dots and underscores read as spaces, runs of spaces as one."""
    return re.sub(r"\s+", " ", re.sub(r"[._]+", " ", text))


#: What may stand between a title and its sequel's number: "Part", "Pt", "Vol", "Volume".
_SEQUEL_WORD = re.compile(r"[\s._-]*(?:part|pt|vol|volume)?[\s._-]*", re.IGNORECASE)


def _sequel_title(filename: str, matches: Any) -> dict[str, Any]:
    """The title (or the alternative title after it) with its sequel's number, where guessit
    read that number as a part or volume of a film split across files ("The Godfather Part
    II (1974)" gave every sequel its first film's title); {} when there is none.

    A part names the sequel when it follows the title and comes before the year, or, with
    no year, is spelled as a word or in Roman numerals: "Film (1962) Part 2" and "Film Part
    2" stay the split film's parts. A volume ("Kill Bill Vol. 2") always names the sequel.
    """
    numbers = [*matches.get("part", []), *matches.get("volume", [])]
    named = [*matches.get("title", []), *matches.get("alternative_title", [])]
    if not numbers or not named:
        return {}
    number = min(numbers, key=lambda match: match.start)
    before = [match for match in named if match.end <= number.start]
    if not before:
        return {}
    last = max(before, key=lambda match: match.end)
    years = matches.get("year") or []
    if years:
        names_the_sequel = number.start < years[0].start
    else:
        names_the_sequel = not str(number.raw).strip("._- ").isdigit()
    if not names_the_sequel or not _SEQUEL_WORD.fullmatch(filename[last.end:number.start]):
        return {}
    whole = _spaced(filename[last.start:number.end]).strip(" -")
    if last.name == "title":
        return {"title": whole}
    alternatives = [match.value for match in matches.get("alternative_title", [])]
    alternatives[matches.get("alternative_title", []).index(last)] = whole
    return {"alternative_title": alternatives}


def _guess(filename: str, *, sequels: bool = True) -> dict[str, Any]:
    """guessit's reading of the name as a movie, sequel numbers kept in the title (unless
    not `sequels`); {} when it fails on an odd name."""
    from guessit import guessit  # its rules take half a second to load: only when needed

    try:
        with _lock:
            guess: Any = guessit(filename, {"type": "movie"})  # a dict with the matches
        found = dict(guess)
    except Exception as error:  # any failure inside guessit means "no better guess"
        log.warning("could not parse the name %r: %s", filename, error)
        return {}
    if sequels:
        try:
            found.update(_sequel_title(filename, guess.matches))
        except Exception as error:  # guessit's matches unlike expected: its own reading
            log.warning("could not read a sequel number in %r: %s", filename, error)
    return found


def warm_up() -> None:
    """Load guessit's rules now (half a second), as a thread can while other work goes on,
    so the first title read does not wait for them."""
    _guess("Warm Up (2000).mkv")


def _text(value: Any) -> str:
    """A guessit property as text (it gives a list when it found several)."""
    if isinstance(value, list):
        return " - ".join(str(item) for item in value)
    return "" if value is None else str(value)


def parse_title(filename: str, *, sequels: bool = True) -> tuple[str, int | None]:
    """The film's title and year as the name tells them; the title is never empty.

    "Long Film (1999).mkv" and "Long.Film.1999.1080p.BluRay.x264-GRP.mkv" both give
    ("Long Film", 1999). A name guessit finds no title in gives its stem ("2012.mkv" gives
    ("2012", None): the number is the title there, not a year). `sequels=False` reads names
    as releases before revision 0010 did: "The Godfather Part II" gave "The Godfather".
    """
    guess = _guess(filename, sequels=sequels)
    year = plausible_year(guess.get("year"))
    title = _text(guess.get("title"))
    alternative = _text(guess.get("alternative_title"))
    if title and alternative:
        # "Star Wars Episode IV - A New Hope": guessit splits such titles at the dash.
        title = f"{title} - {alternative}"
    title = clean_title(title)
    if not title:
        title = _stem_title(filename)
        if year is not None and title.strip("()[] ") == str(year):
            year = None
    return title, year
