"""How MovieVault talks to an S3 endpoint: client settings, what its errors mean, and
which providers lack what. boto3's own types only; the backend itself is in s3.py."""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from movievault.errors import MovieVaultError, NoSuchUpload, StorageRejected, StorageUnavailable

# Errors that mean "not found" rather than "refused".
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def boto_meaning(error: Exception, action: str) -> MovieVaultError | None:
    """What a boto error means: the service failed or is unreachable (503), or refused (422)."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        if status >= 500 or status == 0:
            return StorageUnavailable(
                f"The storage service failed while trying to {action} ({code}). "
                "Try again in a moment."
            )
        refusal = NoSuchUpload if code == "NoSuchUpload" else StorageRejected
        return refusal(f"The storage service refused to {action}: {code}. {message}".strip())
    if isinstance(error, BotoCoreError):
        return StorageUnavailable(
            f"The storage service is unreachable (could not {action}). "
            "Check that it is running and try again."
        )
    return None




#: Endpoints of providers without POST Object (form uploads): Cloudflare R2 answers it
#: 501 NotImplemented, and Backblaze B2's S3 API does not list it. `auto` uses PUT there.
NO_FORM_UPLOAD_HOSTS = (".r2.cloudflarestorage.com", ".backblazeb2.com")


def single_upload_method(method: str, endpoints: list[str | None]) -> str:
    """Resolve S3_UPLOAD_METHOD: "auto" is "put" when an endpoint is a provider known to
    lack POST Object (by its host name), else "post", which can bound the size in its
    policy. The endpoint the app talks to and the one browsers use are both looked at."""
    if method != "auto":
        return method
    for endpoint in endpoints:
        host = (urlsplit(endpoint).hostname or "").lower() if endpoint else ""
        if host.endswith(NO_FORM_UPLOAD_HOSTS):
            return "put"
    return "post"


def client_config(*, path_style: bool, checksums: bool) -> Config:
    """The botocore settings of every S3 client the backend makes (and of its presigner)."""
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # One connection per server thread (16 by default, MOVIEVAULT_THREADS): with
        # botocore's 10, concurrent calls beyond 10 open a connection and drop it after.
        max_pool_connections=64,
        # boto3 adds CRC checksums to its own uploads by default (since 1.36); stores that
        # refuse `x-amz-checksum-*` headers (Backblaze B2) would then refuse posters and
        # migrations too. With checksums off, send them only where an operation needs one.
        **(
            {}
            if checksums
            else {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        ),
    )
