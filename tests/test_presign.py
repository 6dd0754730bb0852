"""Part URLs signed by the S3 backend's own SigV4 signer equal botocore's, byte for byte,
with the part's size and (when given) its SHA-256 checksum signed as headers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import pytest

from movievault.storage import s3, sha256_base64
from movievault.storage.s3 import S3Storage

INSTANT = datetime(2026, 11, 24, 18, 5, 9)


class _FrozenDatetime:
    """Stands in for the s3 module's `datetime`: now() is always INSTANT."""

    @staticmethod
    def now(tz: Any = None) -> datetime:
        return INSTANT.replace(tzinfo=UTC)


def _botocore_url(
    storage: S3Storage, key: str, upload_id: str, number: int, sha256: str | None
) -> str:
    checksum = {"ChecksumSHA256": sha256_base64(sha256)} if sha256 else {}
    return storage.presigner.generate_presigned_url(
        "upload_part",
        Params={"Bucket": storage.bucket, "Key": key, "UploadId": upload_id,
                "PartNumber": number, "ContentLength": 5, **checksum},
        ExpiresIn=900,
    )


def _parts(url: str) -> tuple[tuple[str, str, str], list[tuple[str, str]]]:
    split = urlsplit(url)
    return (split.scheme, split.netloc, split.path), sorted(parse_qsl(split.query))


@pytest.mark.parametrize(
    ("endpoint", "public", "region"),
    [
        ("http://127.0.0.1:9000", None, "us-east-1"),
        (None, None, "eu-west-3"),  # AWS itself: virtual-hosted addresses
        ("https://minio.internal", "https://files.example.org:8443", "us-east-1"),
        ("http://[::1]:9000", None, "us-east-1"),
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE+session/token=="])
@pytest.mark.parametrize("checksum", [False, True], ids=["size", "size+sha256"])
def test_part_urls_match_botocore(
    monkeypatch: pytest.MonkeyPatch, endpoint: str | None, public: str | None, region: str,
    token: str | None, checksum: bool,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: INSTANT)
    monkeypatch.setattr(s3, "datetime", _FrozenDatetime)
    storage = S3Storage(
        bucket="movies-bucket", endpoint_url=endpoint, public_endpoint_url=public, region=region
    )
    key, upload_id = "movies/7/a b+c é~(1).mkv", "2~Ab/c+d=e_f-g.h"

    def digest(number: int) -> str | None:
        """Part `number`'s SHA-256 (hex), or None without checksums."""
        return hashlib.sha256(str(number).encode()).hexdigest() if checksum else None

    first = storage.part_url(
        key=key, upload_id=upload_id, part_number=1, size=5, expires=900, sha256=digest(1)
    )
    assert first == _botocore_url(storage, key, upload_id, 1, digest(1))
    signed = dict(_parts(first)[1])["X-Amz-SignedHeaders"]
    assert signed == ("content-length;host;x-amz-checksum-sha256" if checksum
                      else "content-length;host")
    for number in (2, 17, 10_000):
        ours = storage.part_url(
            key=key, upload_id=upload_id, part_number=number, size=5, expires=900,
            sha256=digest(number),
        )
        assert _parts(ours) == _parts(_botocore_url(storage, key, upload_id, number,
                                                    digest(number)))
