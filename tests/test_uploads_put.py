"""Files sent whole by one presigned PUT, and parts that carry their SHA-256, on both
backends (S3_UPLOAD_METHOD, S3_CHECKSUMS).

A PUT's URL signs the content type, the exact length and (when the file's hash is known at
create) `x-amz-checksum-sha256`, as headers: the store itself refuses other bytes. The
local store checks all three itself; moto checks none, so for S3 the tests read what the
URLs sign. The browser's side is in tests/e2e/test_upload_checksums.py and, against an
S3 without form uploads, tests/e2e/test_upload_no_post.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask

from movievault import create_app
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.config import ConfigError
from movievault.storage.embedded import EmbeddedS3Storage
from movievault.storage.s3 import S3Storage
from movievault.storage.s3_client import single_upload_method
from tests.support import MIB, LiveServer, download, keys

SMALL = 300_000  # sent whole (MULTIPART_THRESHOLD is 6 MiB here)
BIG = 11 * MIB  # parts of 5, 5 and 1 MiB
CHECKSUM = "x-amz-checksum-sha256"


@pytest.fixture
def upload_method() -> str:
    """S3_UPLOAD_METHOD for the app under test (tests parametrize it)."""
    return "put"


def b64(data: bytes) -> str:
    """The checksum header's value for `data`: its SHA-256, base64."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hex_of(data: bytes) -> str:
    """The API's form of a SHA-256: hex."""
    return hashlib.sha256(data).hexdigest()


def signed_headers(url: str) -> list[str]:
    """The headers a presigned S3 URL signs (and so the request must carry)."""
    return parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")


def query_names(url: str) -> set[str]:
    """The query parameters of a URL, lower-cased."""
    return {name.lower() for name in parse_qs(urlsplit(url).query)}


def damaged(data: bytes) -> bytes:
    """The same length, one byte different: what a bad cable or a bad disk read gives."""
    return data[:100] + bytes([data[100] ^ 0x01]) + data[101:]


def part(data: bytes, number: int) -> bytes:
    """Part `number` of `data` (5 MiB parts)."""
    return data[(number - 1) * 5 * MIB : number * 5 * MIB]


def files_under(folder: Path) -> list[Path]:
    """Every regular file below `folder`."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- a whole file by PUT --------------------------------------------------------------------


def test_a_put_upload_goes_round_trip_and_resumes_with_a_fresh_url(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(SMALL)
    created = alice.create(name="clip.mp4", data=data)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    assert upload["method"] == "put" and "post" not in upload
    # Exactly what the client must send; Content-Length is signed too, as the size.
    assert upload["put"]["headers"] == {"Content-Type": "video/mp4", CHECKSUM: b64(data)}
    status = alice.status(upload["id"])
    assert status["upload"]["put"]["headers"] == upload["put"]["headers"]
    assert status["uploaded_parts"] == []

    # Cut off before sending: the same file added again resumes the upload, fresh URL.
    done = alice.upload(name="clip.mp4", data=data)
    assert done["file"]["sha256"] == hex_of(data) and done["file"]["size"] == SMALL
    assert [method for method, _ in alice.calls].count("POST") >= 3
    assert download(alice, done["file"]["id"]).content == data
    assert len(keys(get_storage(live_server.app))) == 1


@pytest.mark.parametrize("backend", ["s3"])
def test_s3_put_urls_sign_the_type_the_length_and_the_checksum_as_headers(
    alice: ApiClient,
) -> None:
    data, other = os.urandom(SMALL), os.urandom(SMALL)
    hashed = alice.create(name="a.mp4", data=data).json()["upload"]["put"]
    assert signed_headers(hashed["url"]) == [
        "content-length", "content-type", "host", CHECKSUM,
    ]
    # In the query string S3 would ignore the checksum: it must not be there.
    assert not query_names(hashed["url"]) & {CHECKSUM, "content-type", "content-length"}
    # Created with only a fingerprint (hashed while sent): nothing to sign the bytes with.
    unhashed = alice.create(name="b.mp4", data=other, hashed=False).json()["upload"]["put"]
    assert unhashed["headers"] == {"Content-Type": "video/mp4"}
    assert signed_headers(unhashed["url"]) == ["content-length", "content-type", "host"]


@pytest.mark.parametrize("backend", ["local"])
def test_the_local_store_refuses_other_bytes_and_writes_nothing(
    alice: ApiClient, live_server: LiveServer
) -> None:
    store = get_storage(live_server.app)
    data = os.urandom(SMALL)
    upload = alice.create(name="film.mp4", data=data).json()["upload"]
    url, headers = urljoin(alice.base, upload["put"]["url"]), upload["put"]["headers"]

    def send(body: bytes, sent: dict[str, str] = headers) -> requests.Response:
        """PUT `body` to the upload's URL with `sent` headers."""
        return requests.put(url, data=body, headers=sent, timeout=60)

    for body, status, code in [
        (data + b"x", 400, "IncompleteBody"),
        (data[:-1], 400, "IncompleteBody"),
        (damaged(data), 400, "BadDigest"),
    ]:
        answer = send(body)
        assert (answer.status_code, answer.json()["error"].split(":")[0]) == (status, code)
    # The signed headers must come as signed, like on S3.
    for sent in (
        {"Content-Type": "video/mp4"},
        {"Content-Type": "video/mp4", CHECKSUM: b64(damaged(data))},
        {**headers, "Content-Type": "video/webm"},
    ):
        answer = send(data, sent)
        assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.json()["error"]
    assert keys(store) == set()
    assert files_under(store.tmp) == []  # type: ignore[attr-defined]

    assert send(data).status_code == 200
    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text
    assert download(alice, final.json()["file"]["id"]).content == data
    # The same bytes again (a retry after a lost answer) change nothing; an object is
    # written once.
    assert send(data).status_code == 200
    assert len(keys(store)) == 1


@pytest.mark.parametrize("backend", ["s3"])
def test_complete_checks_the_size_s3_stored_from_a_put(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """moto checks neither signatures nor lengths: complete still refuses a short object."""
    data = os.urandom(SMALL)
    upload = alice.create(name="short.mp4", data=data).json()["upload"]
    put = upload["put"]
    sent = requests.put(put["url"], data=data[:-10], headers=put["headers"], timeout=60)
    assert sent.status_code == 200
    final = alice.complete(upload["id"])
    assert final.status_code == 422 and f"{SMALL} were declared" in final.json()["error"]
    assert keys(get_storage(live_server.app)) == set()


# --- parts with their SHA-256 ---------------------------------------------------------------


def test_part_urls_sign_each_parts_sha256_and_say_what_to_send(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert (upload["method"], upload["checksum"], upload["part_count"]) == (
        "multipart", "sha256", 3
    )
    path = f"/uploads/{upload['id']}/parts"
    answer = alice.api("POST", path, json={"parts": [
        {"number": n, "sha256": hex_of(part(data, n))} for n in (1, 2, 3)
    ]})
    assert answer.status_code == 200, answer.text
    signed = answer.json()["parts"]
    assert [p["part_number"] for p in signed] == [1, 2, 3]
    for entry in signed:
        assert entry["headers"] == {CHECKSUM: b64(part(data, entry["part_number"]))}
        if get_storage(live_server.app).kind == "s3":
            assert signed_headers(entry["url"]) == ["content-length", "host", CHECKSUM]
            assert CHECKSUM not in query_names(entry["url"])

    # Without each part's hash the store would refuse the parts: said at once instead.
    for body, words in [
        ({"part_numbers": [1, 2]}, "instead of part_numbers"),
        ({"parts": [{"number": 1, "sha256": hex_of(part(data, 1))}, {"number": 2}]},
         "Part 2 needs its sha256"),
        ({"parts": [{"number": 1, "sha256": "xyz"}]}, "64 hexadecimal"),
        ({"parts": [{"number": 4, "sha256": "a" * 64}]}, "from 1 to 3"),
        ({"parts": []}, "1 to 100"),
    ]:
        refused = alice.api("POST", path, json=body)
        assert refused.status_code == 400 and words in refused.json()["error"], refused.text

    done = alice.upload(name="big.mkv", data=data)
    assert done["file"]["sha256"] == hex_of(data)
    assert download(alice, done["file"]["id"]).content == data


@pytest.mark.parametrize("backend", ["local"])
def test_the_local_store_refuses_a_damaged_part_and_keeps_nothing_of_it(
    alice: ApiClient, live_server: LiveServer
) -> None:
    store = get_storage(live_server.app)
    data = os.urandom(BIG)
    upload = alice.create(name="parts.mkv", data=data).json()["upload"]
    first = alice.sign_parts(upload, [1], data)[1]
    refused = first.put(damaged(part(data, 1)))
    assert refused.status_code == 400 and refused.json()["error"].startswith("BadDigest")
    for sent in ({}, {CHECKSUM: b64(part(data, 2))}):
        answer = requests.put(first.url, data=part(data, 1), headers=sent, timeout=60)
        assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.json()["error"]
    assert alice.status(upload["id"])["uploaded_parts"] == []
    assert files_under(store.tmp) == []  # type: ignore[attr-defined]
    assert first.put(part(data, 1)).status_code == 200
    assert [p["part_number"] for p in alice.status(upload["id"])["uploaded_parts"]] == [1]


# --- checksums off, and the choice of method ------------------------------------------------


@pytest.mark.parametrize("checksums", ["off"])
def test_without_checksums_parts_go_by_number_and_nothing_is_signed_but_the_size(
    alice: ApiClient, live_server: LiveServer
) -> None:
    s3 = get_storage(live_server.app).kind == "s3"
    small, data = os.urandom(SMALL), os.urandom(BIG)
    put = alice.create(name="clip.mp4", data=small).json()["upload"]["put"]
    assert put["headers"] == {"Content-Type": "video/mp4"}
    if s3:
        assert signed_headers(put["url"]) == ["content-length", "content-type", "host"]
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert "checksum" not in upload
    path = f"/uploads/{upload['id']}/parts"
    by_number = alice.api("POST", path, json={"part_numbers": [1, 2]}).json()["parts"]
    # A hash sent anyway is not signed: the store was not asked to expect one.
    with_hash = alice.api("POST", path, json={"parts": [
        {"number": 3, "sha256": hex_of(part(data, 3))}]}).json()["parts"]
    assert [p["headers"] for p in by_number + with_hash] == [{}, {}, {}]
    if s3:
        assert {tuple(signed_headers(p["url"])) for p in by_number + with_hash} == {
            ("content-length", "host")
        }
    else:
        # A checksum header the URL does not sign is checked all the same, as S3 does.
        url = urljoin(alice.base, with_hash[0]["url"])
        wrong = requests.put(url, data=part(data, 3), headers={CHECKSUM: b64(b"other")},
                             timeout=60)
        assert wrong.status_code == 400 and wrong.json()["error"].startswith("BadDigest")
    for name, body in (("clip.mp4", small), ("big.mkv", data)):
        done = alice.upload(name=name, data=body)
        assert download(alice, done["file"]["id"]).content == body


@pytest.mark.parametrize("upload_method", ["auto"])
def test_auto_keeps_form_posts_where_the_store_takes_them(alice: ApiClient) -> None:
    """moto and the local store take form POSTs, which can bound the size in a policy."""
    data = os.urandom(SMALL)
    upload = alice.create(name="clip.mp4", data=data).json()["upload"]
    assert upload["method"] == "post" and "put" not in upload
    assert alice.upload(name="clip.mp4", data=data)["file"]["sha256"] == hex_of(data)


@pytest.mark.parametrize("upload_method", ["post"])
def test_a_pending_upload_follows_the_method_of_the_day(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """Begun as a form POST, resumed after S3_UPLOAD_METHOD became put: sent by PUT."""
    data = os.urandom(SMALL)
    first = alice.create(name="clip.mp4", data=data).json()["upload"]
    assert first["method"] == "post"
    storage = get_storage(live_server.app)
    storage._upload_method = "put"  # type: ignore[attr-defined]  # as after a restart
    again = alice.create(name="clip.mp4", data=data)
    assert again.status_code == 200 and again.json()["upload"]["id"] == first["id"]
    assert again.json()["upload"]["method"] == "put"
    done = alice.upload(name="clip.mp4", data=data)
    assert download(alice, done["file"]["id"]).content == data


@pytest.mark.parametrize(
    ("setting", "endpoint", "public", "method"),
    [
        ("auto", None, None, "post"),  # AWS itself
        ("auto", "http://127.0.0.1:9000", None, "post"),  # MinIO, moto...
        ("auto", "https://0123abcd.r2.cloudflarestorage.com", None, "put"),
        ("auto", "https://0123abcd.eu.r2.cloudflarestorage.com", None, "put"),
        ("auto", "https://s3.us-west-004.backblazeb2.com", None, "put"),
        ("auto", "http://127.0.0.1:9000", "https://ACCOUNT.R2.cloudflarestorage.com", "put"),
        ("auto", "https://r2.cloudflarestorage.com.example.org", None, "post"),
        ("post", "https://0123abcd.r2.cloudflarestorage.com", None, "post"),
        ("put", "https://s3.eu-west-1.amazonaws.com", None, "put"),
    ],
)
def test_auto_puts_where_the_endpoint_is_a_store_without_form_uploads(
    setting: str, endpoint: str | None, public: str | None, method: str
) -> None:
    assert single_upload_method(setting, [endpoint, public]) == method


@pytest.mark.parametrize(("setting", "method"), [("auto", "put"), ("post", "post")])
def test_the_embedded_demo_store_puts_unless_told_otherwise(
    s3_endpoint: str, setting: str, method: str
) -> None:
    """moto leaves the CORS headers off its answers to form POSTs, which browsers need."""
    store = EmbeddedS3Storage(bucket="demo", endpoint_url=s3_endpoint, region="us-east-1",
                              upload_method=setting)
    assert store.upload_method() == method


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("S3_UPLOAD_METHOD", "patch"), ("S3_UPLOAD_METHOD", ""), ("S3_CHECKSUMS", "maybe")],
)
def test_unknown_upload_settings_are_refused_at_start(
    app_config: dict[str, Any], name: str, value: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(ConfigError, match=f"MOVIEVAULT_{name} must be one of"):
        create_app({**app_config, name: value})
    app = create_app({**app_config, "S3_UPLOAD_METHOD": " PUT ", "S3_CHECKSUMS": "Off"})
    assert (app.config["S3_UPLOAD_METHOD"], app.config["S3_CHECKSUMS"]) == ("put", False)


@pytest.mark.parametrize("backend", ["s3"])
def test_setup_bucket_lets_the_page_put_with_checksums_and_read_etags(app: Flask) -> None:
    storage = get_storage(app)
    assert isinstance(storage, S3Storage)
    (rule,) = storage.client.get_bucket_cors(Bucket=storage.bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == [app.config["PUBLIC_URL"]]
    assert {"PUT", "POST", "GET", "HEAD"} <= set(rule["AllowedMethods"])
    assert {"content-type", CHECKSUM} <= {h.lower() for h in rule["AllowedHeaders"]}
    assert rule["ExposeHeaders"] == ["ETag"]


@pytest.mark.parametrize("backend", ["s3"])
def test_s3_completion_gives_each_parts_checksum_back(app: Flask) -> None:
    """An upload created with the SHA-256 algorithm is completed with each part's checksum,
    as S3 requires; the request that reaches the store carries them."""
    storage = get_storage(app)
    assert isinstance(storage, S3Storage)
    sent: list[bytes] = []

    def keep(request: Any, **_: Any) -> None:
        """Record the body of the CompleteMultipartUpload request."""
        sent.append(request.body)

    storage.client.meta.events.register("before-send.s3.CompleteMultipartUpload", keep)
    key, body = "movies/1/" + "c" * 32, os.urandom(1000)
    upload_id = storage.start_multipart(key=key, content_type="video/mp4", checksums=True)
    url = storage.part_url(key=key, upload_id=upload_id, part_number=1, size=len(body),
                           expires=60, sha256=hex_of(body))
    answer = requests.put(url, data=body, headers={CHECKSUM: b64(body)}, timeout=30)
    assert answer.status_code == 200
    storage.complete_multipart(key=key, upload_id=upload_id,
                               parts=[(1, answer.headers["ETag"])], checksums={1: b64(body)})
    assert f"<ChecksumSHA256>{b64(body)}</ChecksumSHA256>".encode() in sent[0]
    assert storage.object_size(key) == len(body)
