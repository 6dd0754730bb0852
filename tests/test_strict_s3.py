"""The strict S3 lane: uploads through the real API to LocalStack's S3 with signature
validation on, which refuses what AWS refuses and moto lets through (see tests/localstack.py).

A form POST outside its signed policy (size, key, type, expiry), a part URL whose signature
or part number was changed, and any expired URL must be refused by the store itself; what
it accepts must come back byte for byte. LocalStack checks a form's policy conditions and
expiry but not the form's signature, so forged policies are beyond this lane.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask

from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.models import PendingUpload, StoredFile
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

pytestmark = pytest.mark.strict_s3

SMALL = 64 * 1024
#: Three parts of the suite's 5 MiB part size: 5 + 5 + 1 MiB.
BIG = 11 * MIB


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


def _post_expiry(upload: dict[str, Any]) -> datetime:
    """When a form upload's signed policy expires (as the policy states it)."""
    policy = json.loads(base64.b64decode(upload["post"]["fields"]["policy"]))
    return datetime.fromisoformat(policy["expiration"])


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


def test_a_multipart_upload_to_strict_s3_completes(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert upload["method"] == "multipart" and upload["part_count"] == 3
    # One request signs all three URLs: botocore the first, the app's own signer the rest,
    # and the store checks each signature.
    etags = alice.put_parts(upload, data, [1, 2, 3])
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    assert final.json()["file"]["sha256"] == sha256_of(data)
    assert download(alice, final.json()["file"]["id"]).content == data
    assert rows(live_server.app, PendingUpload) == []


def test_strict_s3_refuses_a_part_url_with_a_tampered_signature(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="tampered.mkv", data=data).json()["upload"]
    urls = alice.sign_parts(upload["id"], [1, 2])
    part = data[: 5 * MIB]
    signature = query_value(urls[1], "X-Amz-Signature")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for forged in (
        replace_query(urls[1], "X-Amz-Signature", flipped),
        replace_query(urls[1], "partNumber", "2"),  # part 1's URL used for part 2
        replace_query(urls[2], "uploadId", "another-upload"),
    ):
        answer = requests.put(urljoin(alice.base, forged), data=part, timeout=60)
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
    stale = alice.sign_parts(upload["id"], [1, 2, 3])
    wait_until_past(max(signed_until(url) for url in stale.values()))
    for number in (1, 3):  # signed by botocore and by the app's own signer
        start = (number - 1) * upload["part_size"]
        late = requests.put(urljoin(alice.base, stale[number]),
                            data=data[start : start + upload["part_size"]], timeout=60)
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
