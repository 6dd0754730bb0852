"""How movies read on the pages: running times, resolution badges, placeholder initials."""

from __future__ import annotations

import pytest

from movievault import display


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, ""),
        (float("nan"), ""),
        (-3.0, ""),
        (0.2, "1 s"),
        (40.4, "40 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (52 * 60 + 10, "52 min"),
        (59 * 60 + 29, "59 min"),
        (59 * 60 + 31, "1 h"),
        (7440, "2 h 4 min"),
        (2 * 3600 + 3 * 60 + 50, "2 h 4 min"),  # rounded to the nearest minute
        (2 * 3600 + 10, "2 h"),
        (3 * 3600 + 59 * 60 + 59, "4 h"),
    ],
)
def test_running_time(seconds: float | None, shown: str) -> None:
    assert display.running_time(seconds) == shown


@pytest.mark.parametrize(
    ("width", "height", "badge"),
    [
        (3840, 2160, "4K"),
        (4096, 1716, "4K"),  # DCI scope
        (3840, 1600, "4K"),
        (2160, 3840, "4K"),  # portrait
        (1920, 1080, "1080p"),
        (1920, 800, "1080p"),  # 2.40:1 scope in a 1080p file
        (1440, 1080, "1080p"),  # anamorphic HDV
        (1080, 1920, "1080p"),  # a phone held upright
        (2560, 1440, "1080p"),
        (1280, 720, "720p"),
        (1280, 536, "720p"),
        (960, 720, "720p"),
        (720, 576, "SD"),
        (720, 480, "SD"),
        (640, 360, "SD"),
        (320, 180, "SD"),
        (None, None, None),
        (0, 1080, None),
        (1920, None, None),
    ],
)
def test_resolution_badge(width: int | None, height: int | None, badge: str | None) -> None:
    assert display.resolution_badge(width, height) == badge


@pytest.mark.parametrize(
    ("title", "letters"),
    [
        ("The Long Holiday", "LH"),
        ("Alien", "A"),
        ("alien resurrection", "AR"),
        ("2001: A Space Odyssey", "2A"),
        ("The", "T"),
        ("Amélie", "A"),
        ("Ça tourne", "ÇT"),
        ("  ...  ", "?"),
        ("", "?"),
        ("long_film", "LF"),  # underscores separate words, as in scene names
    ],
)
def test_initials(title: str, letters: str) -> None:
    assert display.initials(title) == letters


def test_tone_is_stable_and_spread() -> None:
    assert display.tone("Alien") == display.tone("Alien")
    tones = {display.tone(f"Movie {n}") for n in range(200)}
    assert tones == set(range(display.TONES))
