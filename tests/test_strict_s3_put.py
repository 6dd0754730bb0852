"""The strict S3 lane for uploads that carry their SHA-256: a single presigned PUT
(`S3_UPLOAD_METHOD=put`) signs the content type, the exact length and the file's checksum,
and each part of a multipart upload signs its own; LocalStack's S3 then refuses other bytes
(400 BadDigest) or another length (the signature no longer matches), as AWS does and moto
does not. See tests/test_strict_s3.py for the rest of the lane.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.config import DEFAULTS
from movievault.models import StoredFile
from tests.localstack import drop_bucket, signed_until, store_error, use_localstack, wait_until_past
from tests.support import MIB, LiveServer, download, keys, override_settings, rows

pytestmark = [
    pytest.mark.strict_s3,
    # Remove once presigned PUT uploads and part checksums are in (S3_UPLOAD_METHOD).
    pytest.mark.skipif(
        "S3_UPLOAD_METHOD" not in DEFAULTS,
        reason="presigned PUT uploads and part checksums (S3_UPLOAD_METHOD) are not built yet",
    ),
]

SMALL = 64 * 1024
#: Three parts of the suite's 5 MiB part size: 5 + 5 + 1 MiB.
BIG = 11 * MIB
CHECKSUM_HEADER = "x-amz-checksum-sha256"


@pytest.fixture
def backend() -> str:
    """S3 only: this lane is about what an S3 store enforces."""
    return "s3"


@pytest.fixture(autouse=True)
def _drop_the_bucket(app: Flask) -> Iterator[None]:
    """Leave nothing in LocalStack's files after the test."""
    yield
    drop_bucket(get_storage(app))


@pytest.fixture
def s3_endpoint(localstack_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """LocalStack's S3 instead of moto's, with credentials it accepts signatures from."""
    return use_localstack(localstack_endpoint, monkeypatch)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Single uploads by presigned PUT (LocalStack takes forms too: `auto` would POST)."""
    return {**app_config, "S3_UPLOAD_METHOD": "put"}


def _flipped(data: bytes, at: int = 0) -> bytes:
    """`data` with one byte changed: the same length, another hash."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _put(upload: dict[str, Any], body: bytes, **headers: str | None) -> requests.Response:
    """PUT `body` to the upload's URL with its headers, some replaced (None: left out)."""
    sent = {**upload["put"]["headers"], **headers}
    return requests.put(upload["put"]["url"], data=body, timeout=60,
                        headers={k: v for k, v in sent.items() if v is not None})


def _refused_and_nothing_kept(alice: ApiClient, live_server: LiveServer,
                              upload: dict[str, Any]) -> None:
    """The store holds nothing, and completing the upload records nothing."""
    assert keys(get_storage(live_server.app)) == set()
    answer = alice.complete(upload["id"])
    assert answer.status_code == 422
    assert answer.json()["error"] == "No object was uploaded for this upload."
    assert rows(live_server.app, StoredFile) == []


# --- a single PUT ---------------------------------------------------------------------------


def test_a_put_upload_to_strict_s3_completes(alice: ApiClient) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="small.mp4", data=data).json()["upload"]
    assert upload["method"] == "put"
    assert upload["put"]["headers"]["Content-Type"] == "video/mp4"
    assert CHECKSUM_HEADER in upload["put"]["headers"]
    stored = alice.put_whole(upload, data)
    assert stored.status_code == 200, stored.text
    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text
    assert final.json()["file"]["sha256"] == sha256_of(data)
    assert download(alice, final.json()["file"]["id"]).content == data


@pytest.mark.parametrize("extra", [-1, 1], ids=["short", "long"])
def test_strict_s3_refuses_a_put_of_another_length(
    alice: ApiClient, live_server: LiveServer, extra: int
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="liar.mp4", data=data).json()["upload"]
    sent = data[:extra] if extra < 0 else data + os.urandom(extra)
    answer = _put(upload, sent)  # requests sends the body's own Content-Length
    assert answer.status_code == 403 and store_error(answer) == "SignatureDoesNotMatch"
    _refused_and_nothing_kept(alice, live_server, upload)


def test_strict_s3_refuses_a_put_of_other_bytes(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="corrupt.mp4", data=data).json()["upload"]
    answer = _put(upload, _flipped(data, SMALL // 2))
    assert answer.status_code == 400 and store_error(answer) == "BadDigest", answer.text
    _refused_and_nothing_kept(alice, live_server, upload)


@pytest.mark.parametrize(
    "changed", [{CHECKSUM_HEADER: None}, {"Content-Type": "text/html"}],
    ids=["without-checksum", "another-type"],
)
def test_strict_s3_refuses_a_put_without_the_signed_headers(
    alice: ApiClient, live_server: LiveServer, changed: dict[str, str | None]
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="headers.mp4", data=data).json()["upload"]
    answer = _put(upload, data, **changed)
    assert answer.status_code == 403 and store_error(answer) == "SignatureDoesNotMatch"
    _refused_and_nothing_kept(alice, live_server, upload)


def test_strict_s3_refuses_an_expired_put_url_and_a_fresh_one_works(
    alice: ApiClient, live_server: LiveServer
) -> None:
    override_settings(live_server.app, url_expires=1)
    data = os.urandom(SMALL)
    stale = alice.create(name="late.mp4", data=data).json()["upload"]
    wait_until_past(signed_until(stale["put"]["url"]))
    late = alice.put_whole(stale, data)
    assert late.status_code == 403, late.text
    assert store_error(late) == "AccessDenied" and "Request has expired" in late.text
    override_settings(live_server.app, url_expires=60)
    again = alice.create(name="late.mp4", data=data)
    assert again.status_code == 200 and again.json()["upload"]["id"] == stale["id"]
    assert alice.put_whole(again.json()["upload"], data).status_code == 200
    assert alice.complete(stale["id"]).status_code == 201


# --- parts that carry their SHA-256 ---------------------------------------------------------


def test_strict_s3_refuses_a_part_with_a_wrong_checksum_and_takes_it_resent(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert upload["method"] == "multipart" and upload["checksum"] == "sha256"
    size = upload["part_size"]
    parts = alice.sign_parts(upload, [1, 2, 3], data)
    assert all(CHECKSUM_HEADER in part.headers for part in parts.values())
    # A part corrupted on the way (same length, other bytes) is refused by the store...
    refused = parts[2].put(_flipped(data[size : 2 * size]))
    assert refused.status_code == 400 and store_error(refused) == "BadDigest", refused.text
    # ...and so is one sent without its checksum header, or of another length.
    bare = requests.put(parts[2].url, data=data[size : 2 * size], timeout=60)
    assert bare.status_code == 403 and store_error(bare) == "SignatureDoesNotMatch"
    longer = parts[3].put(data[2 * size :] + b"!")
    assert longer.status_code == 403 and store_error(longer) == "SignatureDoesNotMatch"
    assert alice.status(upload["id"])["uploaded_parts"] == []
    # Re-sent whole, every part is taken, and the movie is exactly the file.
    etags: dict[int, str] = {}
    for number, part in parts.items():
        sent = part.put(data[(number - 1) * size : number * size])
        assert sent.status_code == 200, sent.text
        etags[number] = sent.headers["ETag"]
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    assert download(alice, final.json()["file"]["id"]).content == data


def test_a_multipart_upload_with_checksums_completes_without_a_part_list(
    alice: ApiClient,
) -> None:
    # As the page completes: {} (the app lists the parts, with their checksums, itself).
    data = os.urandom(2 * 5 * MIB + 1000)
    done = alice.upload(name="page.mkv", data=data)
    assert done["file"]["sha256"] == sha256_of(data)
    assert download(alice, done["file"]["id"]).content == data
