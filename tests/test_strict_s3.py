"""The strict S3 lane: uploads through the real API to LocalStack's S3 with signature
validation on, which refuses what AWS refuses and moto lets through (see tests/localstack.py).

A form POST outside its signed policy (size, key, type, expiry), a part URL whose signature,
part number or upload id was changed, a PUT (whole file or part) of another length or other
bytes than its URL signs, and any expired URL must be refused by the store itself; what it
accepts must come back byte for byte. LocalStack checks a form's policy conditions and expiry
but not the form's signature, so forged policies are beyond this lane.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask

from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.models import PendingUpload, StoredFile
from movievault.storage import CHECKSUM_HEADER
from tests.localstack import (
    drop_bucket,
    query_value,
    replace_query,
    signed_until,
    store_error,
    use_localstack,
    wait_until_past,
)
from tests.support import MIB, LiveServer, download, keys, override_settings, rows

# One LocalStack for the whole lane: its tests stay on one xdist worker.
pytestmark = [pytest.mark.strict_s3, pytest.mark.xdist_group("localstack")]

SMALL = 64 * 1024
#: Three parts of the suite's 5 MiB part size: 5 + 5 + 1 MiB.
BIG = 11 * MIB


@pytest.fixture
def backend() -> str:
    """S3 only: this lane is about what an S3 store enforces."""
    return "s3"


# `upload_method` ("auto": a form POST for LocalStack) and `checksums` come from
# tests/conftest.py; the PUT and checksum tests parametrize them.


@pytest.fixture(autouse=True)
def _drop_the_bucket(app: Flask) -> Iterator[None]:
    """Leave nothing in LocalStack's files after the test."""
    yield
    drop_bucket(get_storage(app))


@pytest.fixture
def s3_endpoint(localstack_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """LocalStack's S3 instead of moto's, with credentials it accepts signatures from."""
    return use_localstack(localstack_endpoint, monkeypatch)


def _post_expiry(upload: dict[str, Any]) -> datetime:
    """When a form upload's signed policy expires (as the policy states it)."""
    policy = json.loads(base64.b64decode(upload["post"]["fields"]["policy"]))
    return datetime.fromisoformat(policy["expiration"])


def _flipped(data: bytes, at: int = 0) -> bytes:
    """`data` with one byte changed: the same length, another hash."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _part(data: bytes, number: int, size: int = 5 * MIB) -> bytes:
    """Part `number` of `data`."""
    return data[(number - 1) * size : number * size]


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


# --- form POST ------------------------------------------------------------------------------


def test_a_form_upload_to_strict_s3_completes(alice: ApiClient) -> None:
    data = os.urandom(SMALL)
    done = alice.upload(name="small.mp4", data=data)
    assert done["file"]["size"] == SMALL and done["file"]["sha256"] == sha256_of(data)
    # The download URL is presigned too, with the response headers it asks for.
    got = download(alice, done["file"]["id"])
    assert got.status_code == 200 and got.content == data


@pytest.mark.parametrize(
    ("extra", "code"), [(-1, "EntityTooSmall"), (1, "EntityTooLarge")], ids=["short", "long"]
)
def test_strict_s3_refuses_a_form_post_of_another_size_than_signed(
    alice: ApiClient, live_server: LiveServer, extra: int, code: str
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="liar.mp4", data=data).json()["upload"]
    sent = data[:extra] if extra < 0 else data + os.urandom(extra)
    posted = alice.post_form(upload, sent)
    assert posted.status_code == 400 and store_error(posted) == code, posted.text
    assert keys(get_storage(live_server.app)) == set()
    answer = alice.complete(upload["id"])
    assert answer.status_code == 422
    assert answer.json()["error"] == "No object was uploaded for this upload."
    assert rows(live_server.app, StoredFile) == []


@pytest.mark.parametrize("field", ["key", "Content-Type"])
def test_strict_s3_refuses_a_form_post_for_another_key_or_type(
    alice: ApiClient, live_server: LiveServer, field: str
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="elsewhere.mp4", data=data).json()["upload"]
    fields = upload["post"]["fields"]
    changed = {"key": f"movies/other/{fields['key'].rsplit('/', 1)[-1]}",
               "Content-Type": "text/html"}[field]
    forged = {**upload, "post": {**upload["post"], "fields": {**fields, field: changed}}}
    posted = alice.post_form(forged, data)
    assert posted.status_code == 403, posted.text
    assert store_error(posted) == "AccessDenied" and "Policy Condition failed" in posted.text
    assert keys(get_storage(live_server.app)) == set()
    # The form as signed still works: the refusal was about the change.
    alice.post_form(upload, data).raise_for_status()
    assert alice.complete(upload["id"]).status_code == 201


def test_strict_s3_refuses_an_expired_form_and_fresh_fields_work(
    alice: ApiClient, live_server: LiveServer
) -> None:
    override_settings(live_server.app, url_expires=1)
    data = os.urandom(SMALL)
    stale = alice.create(name="late.mp4", data=data).json()["upload"]
    wait_until_past(_post_expiry(stale))
    late = alice.post_form(stale, data)
    assert late.status_code == 403, late.text
    assert store_error(late) == "AccessDenied" and "Policy expired" in late.text
    assert keys(get_storage(live_server.app)) == set()
    # Starting the same upload again gives fresh fields for it, within their second.
    override_settings(live_server.app, url_expires=60)
    again = alice.create(name="late.mp4", data=data)
    assert again.status_code == 200 and again.json()["upload"]["id"] == stale["id"]
    alice.post_form(again.json()["upload"], data).raise_for_status()
    final = alice.complete(stale["id"])
    assert final.status_code == 201, final.text
    assert download(alice, final.json()["file"]["id"]).content == data


# --- multipart ------------------------------------------------------------------------------


@pytest.mark.parametrize("checksums", ["on", "off"])
def test_a_multipart_upload_to_strict_s3_completes(
    alice: ApiClient, live_server: LiveServer, checksums: str
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert upload["method"] == "multipart" and upload["part_count"] == 3
    assert upload.get("checksum") == ("sha256" if checksums == "on" else None)
    # One request signs all three URLs: botocore the first, the app's own signer the rest,
    # and the store checks each signature (and, with checksums, each part's SHA-256).
    etags = alice.put_parts(upload, data, [1, 2, 3])
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    assert final.json()["file"]["sha256"] == sha256_of(data)
    assert download(alice, final.json()["file"]["id"]).content == data
    assert rows(live_server.app, PendingUpload) == []


def _put_once_answered(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """PUT `body` and return the store's answer. LocalStack may refuse before reading a
    5 MiB body and then stop reading it, so a busy machine can see the connection time out
    instead of the answer: ask again (the refusal itself is what the caller checks)."""
    for _ in range(2):
        with suppress(requests.ConnectionError):
            return requests.put(url, data=body, headers=headers, timeout=20)
    return requests.put(url, data=body, headers=headers, timeout=60)


def test_strict_s3_refuses_a_part_url_with_a_tampered_signature(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="tampered.mkv", data=data).json()["upload"]
    parts = alice.sign_parts(upload, [1, 2], data)
    signature = query_value(parts[1].url, "X-Amz-Signature")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for number, forged in (
        (1, replace_query(parts[1].url, "X-Amz-Signature", flipped)),
        (1, replace_query(parts[1].url, "partNumber", "2")),  # part 1's URL used for part 2
        (2, replace_query(parts[2].url, "uploadId", "another-upload")),
    ):
        answer = _put_once_answered(forged, _part(data, number), parts[number].headers)
        assert answer.status_code == 403, answer.text
        assert store_error(answer) == "SignatureDoesNotMatch"
    assert alice.status(upload["id"])["uploaded_parts"] == []
    # The URLs as signed are accepted: it was the tampering that was refused.
    etags = alice.put_parts(upload, data, [1, 2, 3])
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    assert download(alice, final.json()["file"]["id"]).content == data


def test_strict_s3_refuses_an_expired_part_url_and_a_fresh_one_works(
    alice: ApiClient, live_server: LiveServer
) -> None:
    override_settings(live_server.app, url_expires=1)
    data = os.urandom(BIG)
    upload = alice.create(name="slow.mkv", data=data).json()["upload"]
    stale = alice.sign_parts(upload, [1, 2, 3], data)
    wait_until_past(max(signed_until(part.url) for part in stale.values()))
    for number in (1, 3):  # signed by botocore and by the app's own signer
        late = stale[number].put(_part(data, number))
        assert late.status_code == 403, late.text
        assert store_error(late) == "AccessDenied" and "Request has expired" in late.text
    assert alice.status(upload["id"])["uploaded_parts"] == []
    override_settings(live_server.app, url_expires=60)
    final = alice.complete(upload["id"], alice.put_parts(upload, data, [1, 2, 3]))
    assert final.status_code == 201, final.text


def test_strict_s3_refuses_an_expired_download_url(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(SMALL)
    file_id = alice.upload(name="short.mp4", data=data)["file"]["id"]
    override_settings(live_server.app, url_expires=1)
    redirect = alice.http.get(f"{alice.base}/files/{file_id}/download", allow_redirects=False)
    url = urljoin(alice.base, redirect.headers["Location"])
    wait_until_past(signed_until(url))
    late = requests.get(url, timeout=60)
    assert late.status_code == 403 and store_error(late) == "AccessDenied", late.text
    override_settings(live_server.app, url_expires=60)
    assert download(alice, file_id).content == data


# --- a single PUT ---------------------------------------------------------------------------


@pytest.mark.parametrize("upload_method", ["put"])
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


@pytest.mark.parametrize("upload_method", ["put"])
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


@pytest.mark.parametrize("upload_method", ["put"])
def test_strict_s3_refuses_a_put_of_other_bytes(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="corrupt.mp4", data=data).json()["upload"]
    answer = _put(upload, _flipped(data, SMALL // 2))
    assert answer.status_code == 400 and store_error(answer) == "BadDigest", answer.text
    _refused_and_nothing_kept(alice, live_server, upload)


@pytest.mark.parametrize("upload_method", ["put"])
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


@pytest.mark.parametrize("upload_method", ["put"])
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
    parts = alice.sign_parts(upload, [1, 2, 3], data)
    assert all(CHECKSUM_HEADER in part.headers for part in parts.values())
    # A part corrupted on the way (same length, other bytes) is refused by the store...
    refused = parts[2].put(_flipped(_part(data, 2)))
    assert refused.status_code == 400 and store_error(refused) == "BadDigest", refused.text
    # ...and so is one sent without its checksum header, or of another length.
    bare = requests.put(parts[2].url, data=_part(data, 2), timeout=60)
    assert bare.status_code == 403 and store_error(bare) == "SignatureDoesNotMatch"
    longer = parts[3].put(_part(data, 3) + b"!")
    assert longer.status_code == 403 and store_error(longer) == "SignatureDoesNotMatch"
    assert alice.status(upload["id"])["uploaded_parts"] == []
    # Re-sent whole, every part is taken, and the movie is exactly the file.
    etags: dict[int, str] = {}
    for number, part in parts.items():
        sent = part.put(_part(data, number))
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
