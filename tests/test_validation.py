"""Input rules: hashes, sizes, names, content types."""

from __future__ import annotations

import pytest

from movievault import validation
from movievault.errors import InvalidInput

GOOD_SHA = "ab" * 32


@pytest.mark.parametrize("value", [GOOD_SHA, GOOD_SHA.upper()])
def test_sha256_accepts_hex_and_lowers_it(value: str) -> None:
    assert validation.sha256_hex(value) == GOOD_SHA


@pytest.mark.parametrize("value", ["", "ab" * 31, "zz" * 32, GOOD_SHA + "0", 123, None, [GOOD_SHA]])
def test_sha256_refuses_anything_else(value: object) -> None:
    with pytest.raises(InvalidInput):
        validation.sha256_hex(value)


@pytest.mark.parametrize("value", [0, -1, 11, 1.5, "10", True, None])
def test_size_refuses_out_of_range_and_non_integers(value: object) -> None:
    with pytest.raises(InvalidInput):
        validation.file_size(value, maximum=10)


def test_size_accepts_the_bounds() -> None:
    assert validation.file_size(1, maximum=10) == 1
    assert validation.file_size(10, maximum=10) == 10


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("movie.mp4", "movie.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\film.mkv", "film.mkv"),
        ("bad\nname\t.mp4", "badname.mp4"),
        ("  spaced.mp4  ", "spaced.mp4"),
        ("<img src=x onerror=alert(1)>.mp4", "<img src=x onerror=alert(1)>.mp4"),  # escaped later
        ("Cafe\u0301.mkv", "Café.mkv"),  # NFC
    ],
)
def test_file_name_drops_paths_and_control_characters(raw: str, clean: str) -> None:
    assert validation.file_name(raw) == clean


@pytest.mark.parametrize("raw", ["", "   ", "..", "dir/", "\x00\x01", 5, None])
def test_file_name_refuses_empty_results(raw: object) -> None:
    with pytest.raises(InvalidInput):
        validation.file_name(raw)


def test_long_names_keep_their_extension() -> None:
    name = validation.file_name("x" * 400 + ".mkv")
    assert len(name) == 255
    assert name.endswith(".mkv")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("video/mp4", "video/mp4"),
        ("Video/X-Matroska", "video/x-matroska"),
        ("video/mp4; codecs=avc1", "video/mp4"),
        ("", "application/octet-stream"),
        ("not a type", "application/octet-stream"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_content_type_is_type_slash_subtype_or_octet_stream(raw: object, clean: str) -> None:
    assert validation.content_type(raw) == clean


@pytest.mark.parametrize(
    ("declared", "stored"),
    [
        ("video/mp4", "video/mp4"),
        ("video/webm", "video/webm"),
        ("audio/ogg", "audio/ogg"),
        ("image/webp", "image/webp"),
        ("image/jpeg", "image/jpeg"),
        ("text/vtt", "text/vtt"),
        ("application/x-subrip", "application/x-subrip"),
        ("text/x-ssa", "text/x-ssa"),
        ("application/x-matroska", "application/x-matroska"),
        ("application/mp4", "application/mp4"),
        ("application/ogg", "application/ogg"),
        # What would turn an upload into a page, a script or a style sheet:
        ("text/html", "application/octet-stream"),
        ("application/xhtml+xml", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("IMAGE/SVG+XML; charset=utf-8", "application/octet-stream"),
        ("video/x+xml", "application/octet-stream"),
        ("text/javascript", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("text/css", "application/octet-stream"),
        ("text/xml", "application/octet-stream"),
        ("application/pdf", "application/octet-stream"),
        ("text/plain", "application/octet-stream"),
        ("multipart/x-mixed-replace", "application/octet-stream"),
    ],
)
def test_only_what_a_movie_library_keeps_is_accepted_as_a_content_type(
    declared: str, stored: str
) -> None:
    assert validation.content_type(declared) == stored


@pytest.mark.parametrize(("value", "clean"), [(None, None), (GOOD_SHA.upper(), GOOD_SHA)])
def test_an_optional_digest_may_be_absent_and_is_lowered(value: object, clean: str | None) -> None:
    assert validation.optional_digest(value, "fingerprint") == clean


@pytest.mark.parametrize("value", ["", "ab" * 31, "zz" * 32, 0, [GOOD_SHA]])
def test_an_optional_digest_that_is_given_must_be_hex_and_is_named(value: object) -> None:
    with pytest.raises(InvalidInput, match="^fingerprint must be 64 hexadecimal"):
        validation.optional_digest(value, "fingerprint")


@pytest.mark.parametrize("value", [1, 7, 10])
def test_positive_int_accepts_one_to_the_maximum(value: int) -> None:
    assert validation.positive_int(value, name="part number", maximum=10) == value


@pytest.mark.parametrize("value", [0, -1, 11, True, 1.0, "1", None])
def test_positive_int_refuses_the_rest_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidInput, match="^part number must be an integer from 1 to 10"):
        validation.positive_int(value, name="part number", maximum=10)


@pytest.mark.parametrize("value", [[], "{}", None, 1])
def test_a_body_must_be_a_json_object(value: object) -> None:
    with pytest.raises(InvalidInput, match="The request body must be a JSON object"):
        validation.require_object(value)
    assert validation.require_object({"a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("x" * 20 + ".mkv", "x" * 6 + ".mkv"),
        ("x" * 4 + " " * 5 + "y" * 9 + ".mkv", "x" * 4 + ".mkv"),  # no space before the dot
        ("x" * 20, "x" * 10),  # no extension
        ("x" * 3 + "." + "e" * 17, "x" * 3 + "." + "e" * 6),  # too long to be an extension
        ("x" * 10, "x" * 10),
    ],
)
def test_shorten_keeps_a_short_extension(name: str, short: str) -> None:
    assert validation.shorten(name, limit=10) == short
