"""SigV4 query-string presigning of S3 PUTs, as botocore does it, minus its per-call cost.

No boto3 here: `s3.py` resolves an upload's address with botocore once and signs the
rest of its part URLs with `QuerySigner` (tests/test_presign.py compares the two).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

# Query parameters that SigV4 presigning adds; the rest of a presigned URL's query is the
# operation's own (uploadId, partNumber...).
SIGV4_PARAMS = frozenset({
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _uri_encode(text: str) -> str:
    """SigV4's URI encoding: everything but unreserved characters is percent-encoded."""
    return quote(text, safe="-_.~")


class QuerySigner:
    """SigV4 query-string presigning of PUTs, as botocore does it, minus its per-call cost.

    botocore's generate_presigned_url serialises a whole request and resolves the endpoint
    for every URL (about 0.45 ms of CPU); a multipart upload asks for up to 100 part URLs
    per request. botocore resolves each object's address once (see S3Storage.part_url);
    this signs the other parts' URLs for that address in about 0.04 ms each. The tests
    compare its URLs with botocore's, signed at the same instant.
    """

    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials  # botocore Credentials (may refresh themselves)
        self.region = region
        self._keys: dict[tuple[str, str], bytes] = {}

    def _signing_key(self, secret: str, day: str) -> bytes:
        """The day's derived signing key (four HMACs, so kept until the day changes)."""
        key = self._keys.get((secret, day))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}
        return key

    def presign_put(
        self, *, address: str, params: dict[str, str], expires: int, now: datetime,
        headers: Mapping[str, str],
    ) -> str:
        """The presigned URL for a PUT to `address` (scheme://host/path) with `params`,
        signing `headers` (besides the host), which the request must then carry."""
        credentials = self.credentials.get_frozen_credentials()
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        parts = urlsplit(address)
        host = parts.hostname or ""
        if ":" in host:  # IPv6
            host = f"[{host}]"
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed["host"] = host
        names = sorted(signed)
        query = dict(params)
        query.update({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{credentials.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": ";".join(names),
        })
        if credentials.token:
            query["X-Amz-Security-Token"] = credentials.token
        canonical_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query.items())
        )
        canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
        # S3 signs the path exactly as sent (already percent-encoded, never normalised).
        canonical = "\n".join([
            "PUT", parts.path, canonical_query, canonical_headers, ";".join(names),
            "UNSIGNED-PAYLOAD",
        ])
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])
        key = self._signing_key(credentials.secret_key, amz_date[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{address}?{canonical_query}&X-Amz-Signature={signature}"
