"""The tokens in the local store's URLs: what one URL may do, and until when.

A token is a set of claims (`op`: post, part or get; the key; the size or the name...)
with an expiry, signed with HMAC-SHA256 under the app's secret. Like a presigned S3 URL
it is the whole credential: whoever holds the URL may do that one thing, nothing else.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from movievault.errors import AccessDenied


class UrlTokens:
    """Signs and checks the claims of the local store's URLs with one secret."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeSerializer(
            secret,
            salt="movievault.local-storage",
            signer_kwargs={"digest_method": hashlib.sha256},  # HMAC-SHA256, not SHA-1
        )

    def sign(self, claims: dict[str, Any], *, expires: int) -> str:
        """Sign `claims` with an expiry `expires` seconds from now."""
        return self._signer.dumps({**claims, "exp": int(time.time()) + int(expires)})

    def verify(self, token: str | None, operation: str) -> dict[str, Any]:
        """Return the claims of a valid, unexpired token for `operation`, else AccessDenied."""
        if not token:
            raise AccessDenied("AccessDenied: this storage URL carries no signature.")
        try:
            claims = self._signer.loads(token)
        except BadSignature:
            raise AccessDenied("AccessDenied: the storage URL's signature is not valid.") from None
        if not isinstance(claims, dict) or claims.get("op") != operation:
            raise AccessDenied("AccessDenied: this signature is for another kind of request.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise AccessDenied("AccessDenied: the storage URL has expired; ask for a new one.")
        return claims
