"""S3Storage against moto's in-process mock: presigning, policies, errors."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from movievault.errors import StorageRejected, StorageUnavailable
from movievault.storage.base import content_disposition, part_size_for
from movievault.storage.s3 import S3Storage

MIB = 1024 * 1024


@pytest.fixture
def storage() -> Iterator[S3Storage]:
    """An S3Storage on a mocked AWS with its bucket prepared."""
    with mock_aws():
        store = S3Storage(bucket="unit-bucket", region="eu-west-1")
        store.setup(public_url="https://movies.example.org/", abort_after_days=7)
        yield store


def test_post_form_policy_pins_key_exact_size_and_type(storage: S3Storage) -> None:
    form = storage.post_form(key="movies/1/abc", size=1234, content_type="video/mp4", expires=600)
    assert form.fields["key"] == "movies/1/abc"
    assert form.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # Signature Version 4
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1234, 1234] in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"key": "movies/1/abc"} in conditions


def test_presigned_urls_use_sigv4_and_expiry(storage: S3Storage) -> None:
    upload_id = storage.start_multipart(key="movies/1/big", content_type="video/mp4")
    url = storage.part_url(
        key="movies/1/big", upload_id=upload_id, part_number=3, size=5 * MIB, expires=900
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["partNumber"] == ["3"]


@pytest.mark.parametrize(
    ("declared", "inline", "served", "disposition"),
    [
        ("video/mp4", True, "video/mp4", "inline"),
        ("video/mp4", False, "video/mp4", "attachment"),
        ("audio/ogg", True, "audio/ogg", "inline"),
        ("text/vtt", True, "text/vtt", "inline"),
        ("image/webp", True, "image/webp", "inline"),
        ("text/html", True, "application/octet-stream", "attachment"),
        ("text/javascript", True, "application/octet-stream", "attachment"),
        ("image/svg+xml", True, "application/octet-stream", "attachment"),
        ("application/xhtml+xml", True, "application/octet-stream", "attachment"),
        ("image/gif", True, "application/octet-stream", "attachment"),
    ],
)
def test_download_url_shows_only_media_in_place(
    storage: S3Storage, declared: str, inline: bool, served: str, disposition: str
) -> None:
    # S3 answers with the type and disposition the presigned GET asks for.
    url = storage.download_url(
        key="movies/1/x", filename="trailer", content_type=declared, inline=inline, expires=60
    )
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-type"] == [served]
    assert query["response-content-disposition"][0].split(";")[0] == disposition


def test_download_url_names_the_file_for_attachment_and_inline(storage: S3Storage) -> None:
    for inline, disposition in ((False, "attachment"), (True, "inline")):
        url = storage.download_url(
            key="movies/1/x", filename="Amélie.mkv", content_type="video/x-matroska",
            inline=inline, expires=3600,
        )
        query = parse_qs(urlsplit(url).query)
        assert query["response-content-disposition"][0].startswith(disposition)
        assert "filename*=UTF-8''Am%C3%A9lie.mkv" in query["response-content-disposition"][0]
        assert query["response-content-type"] == ["video/x-matroska"]


def test_setup_applies_cors_with_etag_and_lifecycle(storage: S3Storage) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    rule = client.get_bucket_cors(Bucket="unit-bucket")["CORSRules"][0]
    assert rule["AllowedOrigins"] == ["https://movies.example.org"]
    assert set(rule["AllowedMethods"]) == {"GET", "PUT", "POST", "HEAD"}
    assert rule["ExposeHeaders"] == ["ETag"]
    lifecycle = client.get_bucket_lifecycle_configuration(Bucket="unit-bucket")["Rules"][0]
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # Running it again is harmless.
    assert "exists" in storage.setup(public_url="https://movies.example.org", abort_after_days=7)[0]


def test_object_size_and_delete(storage: S3Storage) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.put_object(Bucket="unit-bucket", Key="movies/1/k", Body=b"12345")
    assert storage.object_size("movies/1/k") == 5
    storage.delete("movies/1/k")
    assert storage.object_size("movies/1/k") is None
    storage.delete("movies/1/k")  # deleting twice is fine


def test_multipart_round_trip_and_refusal_of_a_wrong_etag(storage: S3Storage) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    upload_id = storage.start_multipart(key="movies/1/mp", content_type="video/mp4")
    etags = []
    for number, body in ((1, b"a" * 5 * MIB), (2, b"b" * 10)):
        answer = client.upload_part(
            Bucket="unit-bucket", Key="movies/1/mp", UploadId=upload_id, PartNumber=number,
            Body=body,
        )
        etags.append((number, answer["ETag"]))
    listed = storage.list_parts(key="movies/1/mp", upload_id=upload_id)
    assert [(p.part_number, p.size) for p in listed] == [(1, 5 * MIB), (2, 10)]
    with pytest.raises(StorageRejected):
        storage.complete_multipart(
            key="movies/1/mp", upload_id=upload_id, parts=[(1, etags[0][1]), (2, '"bad"')]
        )
    storage.complete_multipart(key="movies/1/mp", upload_id=upload_id, parts=etags)
    assert storage.object_size("movies/1/mp") == 5 * MIB + 10


def test_abort_of_an_unknown_upload_is_ignored(storage: S3Storage) -> None:
    storage.abort_multipart(key="movies/1/none", upload_id="no-such-upload")


def test_unreachable_endpoint_is_storage_unavailable() -> None:
    store = S3Storage(bucket="b", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    with pytest.raises(StorageUnavailable) as caught:
        store.object_size("anything")
    assert "unreachable" in caught.value.message


def test_public_endpoint_is_used_for_presigned_urls_only() -> None:
    with mock_aws():
        store = S3Storage(
            bucket="b", endpoint_url="http://minio.internal:9000",
            public_endpoint_url="https://files.example.org", region="us-east-1",
        )
        form = store.post_form(key="k", size=1, content_type="video/mp4", expires=60)
        assert form.url.startswith("https://files.example.org/")
        assert store.origins() == ["https://files.example.org"]
        assert store.client.meta.endpoint_url == "http://minio.internal:9000"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("movie.mp4", "attachment; filename=\"movie.mp4\"; filename*=UTF-8''movie.mp4"),
        (
            'say "hi".mp4',
            "attachment; filename=\"say _hi_.mp4\"; filename*=UTF-8''say%20%22hi%22.mp4",
        ),
        ("Léon.mkv", "attachment; filename=\"L_on.mkv\"; filename*=UTF-8''L%C3%A9on.mkv"),
        ("a;b\\c.mp4", "attachment; filename=\"a_b_c.mp4\"; filename*=UTF-8''a%3Bb%5Cc.mp4"),
    ],
)
def test_content_disposition_is_rfc6266(name: str, expected: str) -> None:
    assert content_disposition(name, inline=False) == expected


@pytest.mark.parametrize(
    ("size", "preferred", "expected"),
    [
        (100 * MIB, 16 * MIB, 16 * MIB),
        (100 * MIB, 1 * MIB, 5 * MIB),  # never below S3's minimum
        (500 * 1024**3, 16 * MIB, 52 * MIB),  # 500 GiB needs bigger parts to fit 10,000
    ],
)
def test_part_size_keeps_within_s3_limits(size: int, preferred: int, expected: int) -> None:
    part = part_size_for(size, preferred)
    assert part == expected
    assert -(-size // part) <= 10_000


@pytest.mark.parametrize(("checksums", "sent"), [(True, True), (False, False)])
def test_checksums_off_keeps_checksum_headers_off_the_apps_own_uploads(
    checksums: bool, sent: bool
) -> None:
    """Stores that refuse `x-amz-checksum-*` (B2) must not get them from boto3's defaults."""
    with mock_aws():
        store = S3Storage(bucket="unit-bucket", region="eu-west-1", checksums=checksums)
        store.setup(public_url="https://movies.example.org/", abort_after_days=7)
        seen: list[dict[str, str]] = []
        store.client.meta.events.register(
            "before-send.s3.PutObject",
            lambda request, **_: seen.append(dict(request.headers)),
        )
        store.put(
            key="posters/1/a.webp", stream=io.BytesIO(b"x" * 100), size=100,
            content_type="image/webp",
        )
    assert len(seen) == 1
    # boto3 announces its checksum in x-amz-sdk-checksum-algorithm and sends it as a trailer.
    names = {name.lower() for name in seen[0]}
    assert ("x-amz-sdk-checksum-algorithm" in names) is sent
    assert ("x-amz-trailer" in names) is sent


def _refuse(status: int, code: str, operation: str) -> Callable[..., None]:
    """A client call that fails as boto3 does when the store answers `status` with `code`."""

    def call(**_: object) -> None:
        """Raise the store's answer."""
        raise ClientError(
            {"Error": {"Code": code, "Message": "..."},
             "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )

    return call


def test_setup_goes_on_past_a_bucket_setting_the_store_does_not_implement(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MinIO answers PutBucketCors with 501: say what to set by hand, still apply the rest."""
    refuse = _refuse(501, "NotImplemented", "PutBucketCors")
    monkeypatch.setattr(storage.client, "put_bucket_cors", refuse)
    storage.client.delete_bucket_lifecycle(Bucket="unit-bucket")
    done = storage.setup(public_url="https://movies.example.org/", abort_after_days=5)
    skipped = "skipped: this store does not implement bucket CORS"
    assert any(line.startswith(skipped) for line in done)
    rules = storage.client.get_bucket_lifecycle_configuration(Bucket="unit-bucket")["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 5}


def test_setup_stops_at_a_bucket_setting_the_store_refuses(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access denied is not "not implemented": the admin must hear it as an error."""
    refuse = _refuse(403, "AccessDenied", "PutBucketCors")
    monkeypatch.setattr(storage.client, "put_bucket_cors", refuse)
    with pytest.raises(StorageRejected, match="AccessDenied"):
        storage.setup(public_url="https://movies.example.org/", abort_after_days=5)
