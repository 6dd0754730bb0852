"""The codec strings built from probes, as Chromium answers them.

A malformed string is answered "" like an unsupported codec, so this checks the strings
themselves: each test movie's type gets the answer MEDIA.md measured for its codecs, and
for a file that cannot play, the part that fails is the one the page will name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from movievault.media.codecs import playback_parts, playback_type
from movievault.media.probe import probe

ASK = """types => types.map(type => [
    document.createElement('video').canPlayType(type),
    window.MediaSource ? MediaSource.isTypeSupported(type) : null,
])"""

#: name: (canPlayType of the whole type, names of the parts Chromium refuses)
EXPECTED = {
    "h264.mp4": ("probably", []),
    "h264.mkv": ("probably", []),
    "vp9.webm": ("probably", []),
    "av1.mp4": ("probably", []),
    "song.m4a": ("probably", []),
    "song.mp3": ("probably", []),
    "hlg.mp4": ("probably", []),  # H.264 High 10
    "cover.mp4": ("probably", []),
    "hevc.mkv": ("", ["HEVC (H.265) video", "AC-3 (Dolby Digital) audio"]),
    "hdr10.mkv": ("", ["HEVC (H.265) video"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chromium_answers_each_movie_as_measured(
    name: str, context: BrowserContext, media_files: dict[str, Path]
) -> None:
    with open(media_files[name], "rb") as file:
        info = probe(file)
    whole = playback_type(info)
    parts = playback_parts(info)
    assert whole is not None and parts
    page = context.new_page()
    answers = page.evaluate(ASK, [whole] + [part.type for part in parts])
    expected_whole, refused = EXPECTED[name]
    assert answers[0][0] == expected_whole, (whole, answers)
    # The container alone is always playable here; each refused part is named.
    part_answers = answers[1:]
    assert part_answers[0][0] in ("probably", "maybe"), parts[0]
    assert [part.name for part, (said, _) in zip(parts, part_answers, strict=True)
            if said == ""] == refused
    if expected_whole == "probably" and info.container != "matroska":
        assert answers[0][1] is True  # MediaSource agrees (it never takes Matroska)
