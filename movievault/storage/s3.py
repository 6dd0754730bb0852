"""The S3 backend (AWS, MinIO, Backblaze B2, Cloudflare R2...): the only module using boto3."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from movievault.errors import (
    ImportRefused,
    InvalidInput,
    NoSuchKey,
    StorageRejected,
    StorageUnavailable,
)
from movievault.storage.base import (
    CHECKSUM_HEADER,
    PostForm,
    Readable,
    Storage,
    StoredObject,
    StoredPart,
    present,
    sha256_base64,
    translate_errors,
)
from movievault.storage.s3_client import (
    MISSING,
    boto_meaning,
    client_config,
    single_upload_method,
)
from movievault.storage.s3_signing import SIGV4_PARAMS, QuerySigner

_boto = translate_errors(boto_meaning)
#: Parts of one imported file sent at once (boto3's default, 8 MiB each).
IMPORT_CONCURRENCY = 10

_MAX_CACHED_ADDRESSES = 1024

#: Seconds a bucket that answered is trusted to answer again without asking it (see
#: `ping_recent`): part-URL requests then cost no round trip. A failed call ends the trust.
REACHABLE_SECONDS = 5.0

F = TypeVar("F", bound=Callable[..., Any])


def _translate(action: str) -> Callable[[F], F]:
    """`_boto(action)`, and a store found unreachable is no longer trusted to answer."""

    def decorate(func: F) -> F:
        translated = _boto(action)(func)

        @wraps(func)
        def wrapper(self: S3Storage, *args: Any, **kwargs: Any) -> Any:
            try:
                return translated(self, *args, **kwargs)
            except StorageUnavailable:
                self._reachable_until = 0.0
                raise

        return cast(F, wrapper)

    return decorate


def _skipped(error: ClientError, what: str, instead: str) -> str:
    """The line `setup` prints for a bucket setting the store does not implement (501): a few
    S3-compatible stores keep such settings elsewhere (MinIO's CORS is a server setting),
    so say what to set by hand and go on. Any other refusal is raised."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status != 501 and error.response.get("Error", {}).get("Code") != "NotImplemented":
        raise error
    return (
        f"skipped: this store does not implement {what}; set {instead} in the store's own "
        "configuration (docs/STORAGE.md, Providers)"
    )


class S3Storage(Storage):
    """Objects in one S3 bucket; browsers get SigV4 presigned URLs for every transfer."""

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str | None = None,
        upload_method: str = "auto",
        checksums: bool = True,
        reachable_seconds: float = REACHABLE_SECONDS,
    ) -> None:
        self.bucket = bucket
        self.reachable_seconds = reachable_seconds
        # Until when (time.monotonic) `ping` trusts the last answer; 0 = ask the bucket.
        self._reachable_until = 0.0
        self.region = region or "us-east-1"
        self._upload_method = single_upload_method(
            upload_method, [endpoint_url, public_endpoint_url]
        )
        # Off for stores that refuse (or ignore) S3's additional checksums.
        self._checksums = checksums
        # Custom endpoints (MinIO, moto...) rarely resolve bucket subdomains: use path style.
        config = client_config(path_style=bool(endpoint_url), checksums=checksums)
        session = boto3.session.Session()
        self.client: BaseClient = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=config
        )
        # Presigning is local computation: a second client signs for the host browsers use.
        if public_endpoint_url and public_endpoint_url != endpoint_url:
            self.presigner: BaseClient = session.client(
                "s3", endpoint_url=public_endpoint_url, region_name=self.region, config=config
            )
        else:
            self.presigner = self.client
        credentials = session.get_credentials()
        self._signer = QuerySigner(credentials, self.region) if credentials else None
        # (key, upload id) -> the part URLs' address and query, as botocore resolved them.
        self._part_addresses: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}

    def describe(self) -> str:
        """Where the movies are: the bucket."""
        return f"S3 bucket {self.bucket}"

    def upload_method(self) -> str:
        """PUT or form POST, as S3_UPLOAD_METHOD (or the endpoint, for "auto") decided."""
        return self._upload_method

    def sha256_checksums(self) -> bool:
        """Whether uploads carry their SHA-256 (S3_CHECKSUMS)."""
        return self._checksums

    @_translate("prepare a form upload")
    def post_form(self, *, key: str, size: int, content_type: str, expires: int) -> PostForm:
        """Presign a POST whose policy pins the key, the exact size and the content type."""
        post = self.presigner.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=expires,
        )
        return PostForm(url=post["url"], fields=dict(post["fields"]))

    @_translate("sign an upload URL")
    def put_url(
        self, *, key: str, size: int, content_type: str, sha256: str | None, expires: int
    ) -> str:
        """Presign a PutObject that signs Content-Type, the exact Content-Length and (given
        the hash) x-amz-checksum-sha256 as headers: S3 refuses a request without them, and
        a body of another hash with 400 BadDigest. (In the query string instead, S3 would
        ignore the checksum.)"""
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": key, "ContentType": content_type,
            "ContentLength": size,
        }
        if sha256:
            params["ChecksumSHA256"] = sha256_base64(sha256)
        url: str = self.presigner.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires
        )
        return url

    @_translate("start a multipart upload")
    def start_multipart(self, *, key: str, content_type: str, checksums: bool = False) -> str:
        """Create the multipart upload on S3 (with the SHA-256 checksum algorithm, if asked:
        then S3 refuses a part that does not carry its SHA-256, or whose bytes differ)."""
        options: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if checksums else {}
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, **options
        )
        upload_id: str = answer["UploadId"]
        return upload_id

    @_translate("sign a part URL")
    def part_url(
        self, *, key: str, upload_id: str, part_number: int, size: int, expires: int,
        sha256: str | None = None,
    ) -> str:
        """Presign an `upload_part` PUT that signs the part's size and, given `sha256`, its
        checksum header, so S3 refuses other bytes at once.

        botocore presigns the first part URL asked for an upload; the others reuse the
        address and query it resolved and are signed by `QuerySigner`, 10x cheaper.
        """
        headers = {"Content-Length": str(size)}
        if sha256:
            headers[CHECKSUM_HEADER] = sha256_base64(sha256)
        cached = self._part_addresses.get((key, upload_id))
        if cached is not None and self._signer is not None:
            address, params = cached
            return self._signer.presign_put(
                address=address, params={**params, "partNumber": str(part_number)},
                expires=expires, now=datetime.now(UTC), headers=headers,
            )
        options: dict[str, Any] = {"ChecksumSHA256": headers[CHECKSUM_HEADER]} if sha256 else {}
        url: str = self.presigner.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
                "ContentLength": size,
                **options,
            },
            ExpiresIn=expires,
        )
        parts = urlsplit(url)
        params = {
            k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in SIGV4_PARAMS
        }
        if len(self._part_addresses) >= _MAX_CACHED_ADDRESSES:
            self._part_addresses.clear()
        self._part_addresses[(key, upload_id)] = (
            f"{parts.scheme}://{parts.netloc}{parts.path}", params,
        )
        return url

    @_translate("list uploaded parts")
    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """Page through ListParts (it returns at most 1,000 parts a call)."""
        parts: list[StoredPart] = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                parts.append(
                    StoredPart(
                        part_number=part["PartNumber"], etag=part["ETag"], size=part["Size"],
                        checksum=part.get("ChecksumSHA256"),
                    )
                )
        return sorted(parts, key=lambda p: p.part_number)

    @_translate("complete the multipart upload")
    def complete_multipart(
        self, *, key: str, upload_id: str, parts: list[tuple[int, str]],
        checksums: Mapping[int, str] | None = None,
    ) -> None:
        """Ask S3 to assemble the parts; it refuses unknown parts or wrong ETags, and for an
        upload with checksums, parts listed without theirs."""
        checksums = checksums or {}
        listed: list[dict[str, Any]] = []
        for number, etag in parts:
            part: dict[str, Any] = {"PartNumber": number, "ETag": etag}
            if number in checksums:
                part["ChecksumSHA256"] = checksums[number]
            listed.append(part)
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed},
        )

    @_translate("abort the multipart upload")
    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        """Abort; an upload S3 no longer knows is already gone, which is what we wanted."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in MISSING:
                raise

    def ping(self) -> None:
        """HEAD the bucket; any answer below 500 (even 403 or 404) means S3 is reachable."""
        self._head_bucket()
        self._reachable_until = time.monotonic() + self.reachable_seconds

    def ping_recent(self) -> None:
        """`ping`, unless the bucket answered in the last `reachable_seconds` and no call
        has failed since."""
        if time.monotonic() >= self._reachable_until:
            self.ping()

    @_translate("reach the bucket")
    def _head_bucket(self) -> None:
        """HEAD the bucket; 5xx and no answer at all raise."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or status == 0:
                raise

    @_translate("reach the bucket")
    def check_usable(self) -> None:
        """HEAD the bucket: it must exist, and these credentials must be allowed to use it."""
        where = f"{self.bucket} at {self.client.meta.endpoint_url}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError as error:
            raise StorageUnavailable(
                "No S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE), or run MovieVault where an instance role provides them."
            ) from error
        except BotoCoreError as error:
            raise StorageUnavailable(
                f"Could not reach the bucket {where} ({error}): check MOVIEVAULT_S3_ENDPOINT_URL "
                "and that the service is running."
            ) from error
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status == 404:
                raise StorageRejected(
                    f"The bucket {where} does not exist: run `movievault setup-bucket` to "
                    "create it, or set MOVIEVAULT_S3_BUCKET to an existing one."
                ) from error
            if status in (401, 403):
                raise StorageRejected(
                    f"Access to the bucket {where} is denied: check the credentials "
                    "(AWS_ACCESS_KEY_ID, AWS_PROFILE...) and that they may read and write it."
                ) from error
            raise

    @_translate("look up an object")
    def object_size(self, key: str) -> int | None:
        """HEAD the object."""
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        return int(answer["ContentLength"])

    @_translate("delete an object")
    def delete(self, key: str) -> None:
        """Delete (S3 answers 204 for missing keys too)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    @_translate("sign a download URL")
    def download_url(
        self, *, key: str, filename: str, content_type: str, inline: bool, expires: int
    ) -> str:
        """Presign a GET that names the file (attachment) or plays it in place (inline).

        S3 answers with the type and disposition the URL asks for, whatever the object was
        stored with, so the rule of `present` holds for objects of older releases too.
        """
        presentation = present(filename=filename, content_type=content_type, inline=inline)
        url: str = self.presigner.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": presentation.disposition,
                "ResponseContentType": presentation.content_type,
            },
            ExpiresIn=expires,
        )
        return url

    def origins(self) -> list[str]:
        """The origin of the presigned URLs (a dummy signature reveals the host style)."""
        url = self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": "x"}, ExpiresIn=60
        )
        parts = urlsplit(url)
        return [f"{parts.scheme}://{parts.netloc}"]

    @_translate("prepare the bucket")
    def setup(self, *, public_url: str, abort_after_days: int) -> list[str]:
        """Create the bucket if needed, then apply CORS and the clean-up lifecycle rule."""
        done: list[str] = []
        try:
            self.client.head_bucket(Bucket=self.bucket)
            done.append(f"bucket {self.bucket} exists")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in MISSING | {"NoSuchBucket"}:
                raise
            options: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.client.create_bucket(**options)
            done.append(f"bucket {self.bucket} created")
        try:
            self.client.put_bucket_cors(
                Bucket=self.bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": [public_url.rstrip("/")],
                            "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
                            # What the page sends with a PUT: the signed type and checksum.
                            "AllowedHeaders": ["content-type", CHECKSUM_HEADER],
                            # Without ETag here the browser cannot read part ETags.
                            "ExposeHeaders": ["ETag"],
                            "MaxAgeSeconds": 3600,
                        }
                    ]
                },
            )
            done.append(
                f"CORS allows {public_url.rstrip('/')} (GET, PUT, POST, HEAD; headers "
                f"Content-Type and {CHECKSUM_HEADER}; exposes ETag)"
            )
        except ClientError as error:
            done.append(_skipped(error, "bucket CORS (PutBucketCors)", "its CORS"))
        try:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "movievault-abort-incomplete-multipart",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": abort_after_days
                            },
                        }
                    ]
                },
            )
            done.append(
                f"lifecycle aborts incomplete multipart uploads after {abort_after_days} days"
            )
        except ClientError as error:
            done.append(
                _skipped(error, "lifecycle rules", "a clean-up of unfinished multipart uploads")
            )
        return done

    @_translate("list objects")
    def list_objects(self) -> list[StoredObject]:
        """Page through ListObjectsV2."""
        found: list[StoredObject] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found.append(StoredObject(
                    key=item["Key"], size=int(item["Size"]), modified=item["LastModified"]
                ))
        return found

    @_translate("read an object")
    def open(self, key: str) -> BinaryIO:
        """Stream the object's body."""
        # botocore's StreamingBody: a read-only io.IOBase.
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return body

    @_translate("read part of an object")
    def read_range(self, key: str, start: int, length: int) -> bytes:
        """One GetObject with a Range header; an empty range or one past the end is b""."""
        if start < 0 or length < 0:
            raise InvalidInput("A range starts at 0 or later and has a length of 0 or more.")
        if length == 0:
            return b""
        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "InvalidRange":  # S3 answers 416 for a start past the end
                return b""
            if code in MISSING:
                raise NoSuchKey(f"NoSuchKey: there is no object {key}.") from None
            raise
        data: bytes = answer["Body"].read()
        return data

    @_translate("store an object")
    def put(self, *, key: str, stream: Readable, size: int, content_type: str) -> None:
        """Upload from a stream (boto3 switches to multipart for big objects)."""
        self.client.upload_fileobj(
            stream, self.bucket, key, ExtraArgs={"ContentType": content_type}
        )

    @_translate("upload a file")
    def import_file(
        self, *, key: str, path: str, size: int, content_type: str, sha256: str,
        link: bool = False,
    ) -> None:
        """Upload with boto3's transfer manager (multipart, several parts at once). An
        interrupt aborts the multipart upload; one left by a killed import of this key is
        aborted before starting again."""
        if link:
            raise ImportRefused(
                "--link hard-links files into the local store; this server keeps movies in "
                f"{self.describe()}. Import without --link."
            )
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        for stale in listing.get("Uploads", []):
            if stale["Key"] == key:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=stale["UploadId"]
                )
        # upload_file's own `with` cancels the transfer on an exception (KeyboardInterrupt
        # too) and aborts its multipart upload before returning.
        self.client.upload_file(
            path, self.bucket, key, ExtraArgs={"ContentType": content_type},
            Config=TransferConfig(max_concurrency=IMPORT_CONCURRENCY),
        )
