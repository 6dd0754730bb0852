"""The upload protocol's pure parts, without a server, a store or a database: how a file is
split into parts, how long an unfinished upload is kept, and what `complete` checks in a
declared part list against the parts the store holds.

The same rules end to end, over HTTP with a real store, are in tests/test_api_flow.py and
tests/test_reliability.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from movievault import completion, uploads
from movievault.errors import InvalidInput, UploadMismatch
from movievault.models import PendingUpload, utcnow
from movievault.storage.base import MAX_PARTS, MIN_PART_SIZE, StoredPart, part_size_for
from movievault.uploads import UploadSettings
from tests.support import upload_settings

MIB = 1024 * 1024
GIB = 1024 * MIB


def upload_of(size: int, *, part_size: int | None = 5 * MIB, method: str = "multipart") -> Any:
    """A pending upload as create records it (kept in memory only)."""
    return PendingUpload(
        id="u1", owner_id=1, sha256="a" * 64, size=size, name="film.mkv",
        content_type="video/mp4", key="movies/1/k", method=method,
        part_size=part_size if method == "multipart" else None, expires_at=utcnow(),
    )


def held(upload: PendingUpload, *numbers: int, **sizes: int) -> list[StoredPart]:
    """The parts `numbers` as the store lists them: ETag "e<n>", the expected size unless
    `sizes` says otherwise (`p2=1`: part 2 holds one byte)."""
    return [
        StoredPart(part_number=n, etag=f'"e{n}"',
                   size=sizes.get(f"p{n}", uploads.expected_part_size(upload, n)))
        for n in numbers
    ]


# --- parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "sizes"),
    [
        (1, [1]),
        (5 * MIB, [5 * MIB]),
        (5 * MIB + 1, [5 * MIB, 1]),
        (12 * MIB + 123, [5 * MIB, 5 * MIB, 2 * MIB + 123]),
        (15 * MIB, [5 * MIB, 5 * MIB, 5 * MIB]),
    ],
)
def test_a_file_is_full_parts_then_the_rest(size: int, sizes: list[int]) -> None:
    upload = upload_of(size)
    assert uploads.part_count(upload) == len(sizes)
    assert [uploads.expected_part_size(upload, n) for n in range(1, len(sizes) + 1)] == sizes


@given(
    size=st.integers(min_value=1, max_value=5 * 1024 * GIB),
    preferred=st.sampled_from([1, MIB, 5 * MIB, 8 * MIB + 1, 16 * MIB, 100 * MIB]),
)
def test_part_sizes_fit_s3_and_add_up_to_the_file(size: int, preferred: int) -> None:
    part = part_size_for(size, preferred)
    upload = upload_of(size, part_size=part)
    count = uploads.part_count(upload)
    last = uploads.expected_part_size(upload, count)
    # Whole MiB, at least what was asked and S3's minimum, and never more than S3's 10,000.
    assert part % MIB == 0 and part >= max(preferred, MIN_PART_SIZE)
    assert 1 <= count <= MAX_PARTS
    # Every part but the last is full; the last holds the rest, and something.
    assert (count - 1) * part + last == size and 0 < last <= part
    if count > 1:
        assert uploads.expected_part_size(upload, count - 1) == part
    # No larger than needed: the asked size (in whole MiB), or one MiB less needs too many.
    asked = max(-(-preferred // MIB) * MIB, MIN_PART_SIZE)
    assert part == asked or -(-size // (part - MIB)) > MAX_PARTS


# --- how long an unfinished upload is kept --------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "post", "multipart"),
    [
        (upload_settings(), 6 * 3600, 3 * 24 * 3600),
        (upload_settings(form_upload_ttl=60, upload_ttl=3600), 60, 3600),
        # A form upload never outlives what a multipart one is given.
        (upload_settings(form_upload_ttl=7200, upload_ttl=3600), 3600, 3600),
    ],
    ids=["defaults", "shorter-forms", "forms-capped"],
)
def test_form_uploads_are_kept_for_less_time_than_multipart_ones(
    settings: UploadSettings, post: int, multipart: int
) -> None:
    assert (settings.ttl("post"), settings.ttl("multipart")) == (post, multipart)


# --- the part list declared at complete -----------------------------------------------------

THREE_PARTS = 11 * MIB  # 5, 5 and 1 MiB


def test_a_form_upload_has_no_parts_whatever_is_declared() -> None:
    upload = upload_of(1000, method="post")
    assert completion._declared_parts(upload, {}) == []
    assert completion._declared_parts(upload, {"parts": "not even a list"}) == []


@pytest.mark.parametrize("data", [{}, {"parts": None}], ids=["absent", "null"])
def test_no_part_list_means_use_what_the_store_holds(data: dict[str, Any]) -> None:
    assert completion._declared_parts(upload_of(THREE_PARTS), data) is None


def test_a_part_list_is_read_sorted_with_the_last_mention_of_a_part_winning() -> None:
    parts = [
        {"part_number": 3, "etag": '"c"'},
        {"part_number": 1, "etag": '"a"'},
        {"part_number": 2, "etag": '"old"'},
        {"part_number": 2, "etag": '"b"', "extra": "ignored"},
    ]
    declared = completion._declared_parts(upload_of(THREE_PARTS), {"parts": parts})
    assert declared == [(1, '"a"'), (2, '"b"'), (3, '"c"')]


@pytest.mark.parametrize("etag", [None, "absent"], ids=["null", "absent"])
def test_a_part_without_its_etag_is_read_as_an_empty_one(etag: str | None) -> None:
    part: dict[str, Any] = {"part_number": 1}
    if etag is None:
        part["etag"] = None
    assert completion._declared_parts(upload_of(THREE_PARTS), {"parts": [part]}) == [(1, "")]


@pytest.mark.parametrize(
    "parts",
    [
        "1,2,3",
        {"part_number": 1, "etag": '"a"'},
        7,
        ["not an object"],
        [{"part_number": 0, "etag": '"a"'}],
        [{"part_number": 4, "etag": '"a"'}],  # the file has 3 parts
        [{"part_number": -1, "etag": '"a"'}],
        [{"part_number": True, "etag": '"a"'}],
        [{"part_number": "1", "etag": '"a"'}],
        [{"part_number": 1.0, "etag": '"a"'}],
        [{"etag": '"a"'}],
        [{"part_number": 1, "etag": 5}],
        [{"part_number": 1, "etag": ['"a"']}],
        [{"part_number": 1, "etag": "x" * 257}],
    ],
)
def test_a_malformed_part_list_is_invalid_input(parts: Any) -> None:
    with pytest.raises(InvalidInput):
        completion._declared_parts(upload_of(THREE_PARTS), {"parts": parts})


def test_an_etag_of_256_characters_is_read() -> None:
    parts = [{"part_number": 1, "etag": "x" * 256}]
    assert completion._declared_parts(upload_of(THREE_PARTS), {"parts": parts}) == [(1, "x" * 256)]


# --- the declared parts against the store's --------------------------------------------------


def test_parts_that_match_pass_whatever_the_quotes() -> None:
    upload = upload_of(THREE_PARTS)
    declared = [(1, '"e1"'), (2, "e2"), (3, '"e3"')]
    completion._verify_parts(upload, declared, held(upload, 3, 1, 2))


@pytest.mark.parametrize(
    ("size", "numbers", "message"),
    [
        (THREE_PARTS, [1, 3], "Completing needs all 3 parts; missing: 2."),
        (THREE_PARTS, [], "Completing needs all 3 parts; missing: 1, 2, 3."),
        # The first ten, then an ellipsis.
        (60 * MIB, [1], "Completing needs all 12 parts; missing: 2, 3, 4, 5, 6, 7, 8, 9, 10, "
                        "11 ..."),
    ],
    ids=["one", "all", "many"],
)
def test_a_part_left_out_is_refused_naming_the_missing(
    size: int, numbers: list[int], message: str
) -> None:
    upload = upload_of(size)
    everything = held(upload, *range(1, uploads.part_count(upload) + 1))
    declared = [(n, f'"e{n}"') for n in numbers]
    with pytest.raises(UploadMismatch) as refused:
        completion._verify_parts(upload, declared, everything)
    assert str(refused.value).startswith(message)
    assert ", 12" not in str(refused.value)


@pytest.mark.parametrize(
    ("declared", "stored", "message"),
    [
        ({2: ""}, {}, "Part 2 was declared without its ETag"),
        ({2: '""'}, {}, "Part 2 was declared without its ETag"),
        ({}, {"missing": 2}, "Part 2 was never uploaded."),
        ({2: '"e1"'}, {}, "Part 2's ETag does not match what the store holds."),
        ({}, {"p1": 5 * MIB - 1}, f"Part 1 holds {5 * MIB - 1} bytes; {5 * MIB} were expected."),
        ({}, {"p3": 2 * MIB}, f"Part 3 holds {2 * MIB} bytes; {MIB} were expected."),
        ({}, {"p3": 1}, f"Part 3 holds 1 bytes; {MIB} were expected."),
    ],
    ids=["empty-etag", "quotes-only", "never-sent", "swapped-etag", "short", "last-too-big",
         "last-too-small"],
)
def test_a_part_that_differs_from_the_store_is_refused(
    declared: dict[int, str], stored: dict[str, int], message: str
) -> None:
    upload = upload_of(THREE_PARTS)
    parts = {n: f'"e{n}"' for n in (1, 2, 3)} | declared
    missing = stored.pop("missing", None)
    present = [n for n in (1, 2, 3) if n != missing]
    with pytest.raises(UploadMismatch) as refused:
        completion._verify_parts(upload, sorted(parts.items()), held(upload, *present, **stored))
    assert str(refused.value).startswith(message)


def test_a_part_declared_without_its_etag_is_a_mismatch_not_a_bad_request() -> None:
    # What complete does with such a list: read it, then refuse it as a lie (422, and the
    # upload is discarded), not as malformed input (400, the upload kept).
    upload = upload_of(THREE_PARTS)
    parts = [{"part_number": 1, "etag": '"e1"'}, {"part_number": 2, "etag": '"e2"'},
             {"part_number": 3}]
    declared = completion._declared_parts(upload, {"parts": parts})
    assert declared is not None
    with pytest.raises(UploadMismatch, match="Part 3 was declared without its ETag"):
        completion._verify_parts(upload, declared, held(upload, 1, 2, 3))
