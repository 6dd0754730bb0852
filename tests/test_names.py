"""Titles and years read from file names (movievault/media/names.py), and their checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from movievault import validation
from movievault.errors import InvalidInput
from movievault.media.names import parse_title


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Long Film (1999).mkv", ("Long Film", 1999)),
        ("Long.Film.1999.1080p.BluRay.x264-GRP.mkv", ("Long Film", 1999)),
        ("long_film_1999_720p.mp4", ("long film", 1999)),
        ("Amélie (2001) [1080p].mp4", ("Amélie", 2001)),
        ("Blade Runner 2049.mkv", ("Blade Runner 2049", None)),
        ("Blade.Runner.2049.2017.2160p.HDR.mkv", ("Blade Runner 2049", 2017)),
        ("Star Wars Episode IV - A New Hope (1977).mkv",
         ("Star Wars Episode IV - A New Hope", 1977)),
        ("The.Office.S02E03.720p.mkv", ("The Office", None)),
        # Sequels keep what tells them from the first film: a number after the title and
        # before the year, or without a year one in words or Roman numerals.
        ("The Godfather Part II (1974).mkv", ("The Godfather Part II", 1974)),
        ("Back.to.the.Future.Part.III.1990.1080p.BluRay.x264.mkv",
         ("Back to the Future Part III", 1990)),
        ("Kill.Bill.Vol.1.2003.720p.mkv", ("Kill Bill Vol 1", 2003)),
        ("Harry.Potter.and.the.Deathly.Hallows.Pt.2.2011.mkv",
         ("Harry Potter and the Deathly Hallows Pt 2", 2011)),
        ("Dune Part Two (2024) [2160p].mkv", ("Dune Part Two", 2024)),
        ("Back to the Future Part II.mkv", ("Back to the Future Part II", None)),
        ("Kill.Bill.Vol.2.mkv", ("Kill Bill Vol 2", None)),
        ("The Hunger Games - Mockingjay - Part 1 (2014).mkv",
         ("The Hunger Games - Mockingjay - Part 1", 2014)),
        ("Star Wars - Episode I - The Phantom Menace Part 2 (1999).mkv",
         ("Star Wars - Episode I - The Phantom Menace Part 2", 1999)),
        # A film split across files keeps its title in every part.
        ("Lawrence of Arabia (1962) Part 2.mkv", ("Lawrence of Arabia", 1962)),
        ("Gone.with.the.Wind.1939.Part1.avi", ("Gone with the Wind", 1939)),
        ("Movie.2010.part01.mkv", ("Movie", 2010)),
        ("Film.Part.2.of.3.mkv", ("Film", None)),
        ("Heat (1995) CD1.avi", ("Heat", 1995)),
        ("holiday.mp4", ("holiday", None)),
        ("clip", ("clip", None)),
        # No title in guessit's eyes: the stem is the title, and a lone number is no year.
        ("2012.mkv", ("2012", None)),
        ("(1999).mkv", ("(1999)", None)),
        ("S01E02.mkv", ("S01E02", None)),
        ("....mkv", ("...", None)),
        ("-.mkv", ("-", None)),
        ("\u200b.mkv", (".mkv", None)),
        # Years no film can have are dropped, the title kept.
        ("Film (1799).mkv", ("Film", None)),
        ("Film (2999).mkv", ("Film", None)),
    ],
)
def test_titles_and_years_come_from_the_name(
    filename: str, expected: tuple[str, int | None]
) -> None:
    assert parse_title(filename) == expected


def test_a_title_is_never_longer_than_200_characters() -> None:
    title, year = parse_title("A" * 300 + " (1999).mkv")
    assert title == "A" * 200 and year == 1999


@pytest.mark.parametrize(
    ("value", "expected"),
    [("  Heat ", "Heat"), ("Ça\u0301", "Çá"), ("x" * 200, "x" * 200), ("Tab\there", "Tabhere")],
)
def test_titles_are_cleaned(value: str, expected: str) -> None:
    assert validation.title(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "at least one visible character"),
        ("   ", "at least one visible character"),
        ("\u0000\u0007", "at least one visible character"),
        ("x" * 201, "at most 200 characters"),
        (None, "must be a string"),
        (12, "must be a string"),
    ],
)
def test_bad_titles_are_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validation.title(value)


def test_years_from_1870_to_five_years_ahead_or_none() -> None:
    latest = datetime.now(UTC).year + 5
    assert [validation.year(v) for v in (1870, 1999, latest, None)] == [1870, 1999, latest, None]
    for bad in (1869, latest + 1, "1999", 1999.0, True, -1):
        with pytest.raises(InvalidInput, match="year must be a whole number from 1870"):
            validation.year(bad)
