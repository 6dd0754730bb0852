"""Subtitle files without a store: languages from names, encodings, conversion to WebVTT."""

from __future__ import annotations

import pytest

from movievault.errors import SubtitleInvalid, SubtitleTooLarge
from movievault.media.subtitle_files import MAX_SIZE, decode, parse_name, to_webvtt
from tests import media


@pytest.mark.parametrize(
    ("name", "language", "label"),
    [
        ("Film.en.srt", "en", "English"),
        ("Film.eng.forced.srt", "en", "English [forced]"),
        ("Film (2004).fre.srt", "fr", "French"),
        ("Film.2004.1080p.pt-BR.sdh.ass", "pt-BR", "Portuguese (Brazil) [SDH]"),
        ("Film.German.vtt", "de", "German"),
        ("French.srt", "fr", "French"),
        ("en.srt", "en", "English"),
        ("Film.srt", None, "Subtitles"),
        ("Long.Film.1999.1080p.BluRay.x264-GRP.srt", None, "Subtitles"),
        ("The Big One.srt", None, "Subtitles"),
    ],
)
def test_the_language_comes_from_the_end_of_the_name(
    name: str, language: str | None, label: str
) -> None:
    described = parse_name(name)
    assert (described.language, described.label) == (language, label)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp1252", "utf-16"])
def test_srt_in_each_usual_encoding_becomes_the_same_webvtt(encoding: str) -> None:
    data = media.srt_text().encode(encoding)
    assert decode(data).lstrip("\ufeff") == media.srt_text()
    vtt = to_webvtt(data, name="Film.en.srt")
    assert vtt.startswith("WEBVTT\n\n")
    assert "\ufeff" not in vtt and "\r" not in vtt
    assert "00:00:00.500 --> 00:00:01.500\nOù est la bibliothèque ?" in vtt
    assert "00:00:01.600 --> 00:00:02.400\nGröße: 12 × 3 — “quoted”" in vtt
    assert "00:00:02.500 --> 00:00:03.000\n¡Señor, ça coûte 5 €!" in vtt


ASS = r"""[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.50,0:00:01.50,Default,,0,0,0,,{\i1}Bonjour{\i0}\Nle monde
Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,a note for the translator
Dialogue: 0,0:00:02.00,0:00:03.25,Default,,0,0,0,,{\pos(10,10)}Ça va ?
"""  # noqa: E501 (the format's own line)


def test_ass_becomes_webvtt_with_italics_kept_and_comments_and_overrides_dropped() -> None:
    vtt = to_webvtt(ASS.encode("utf-8"), name="Film.fr.ass")
    cues = vtt.split("\n\n")[1:]
    assert [cue.split("\n", 1)[1] for cue in cues if cue] == [
        "00:00:00.500 --> 00:00:01.500\n<i>Bonjour</i>\nle monde",
        "00:00:02.000 --> 00:00:03.250\nÇa va ?",
    ]


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (bytes(range(256)) * 8, "Film.srt"),  # random-looking bytes
        (b"just some words\nand more", "Film.srt"),
        (b"", "Film.vtt"),
        (ASS.encode(), "Film.txt"),  # not a subtitle extension
    ],
)
def test_what_holds_no_cue_is_refused_with_a_reason(data: bytes, name: str) -> None:
    with pytest.raises(SubtitleInvalid) as refused:
        to_webvtt(data, name=name)
    assert refused.value.status == 422 and refused.value.message


def test_a_file_over_the_limit_is_refused_as_too_large() -> None:
    with pytest.raises(SubtitleTooLarge) as refused:
        to_webvtt(b"x" * (MAX_SIZE + 1), name="Film.srt")
    assert refused.value.status == 413
