"""The local store's URLs: what each one may do, signed into its token (`tokens.py`).

Paths under `url_base` that this app serves (`storage_http.py`): a form POST or a PUT to
`/upload`, part PUTs to `/parts/<upload id>/<n>`, GETs of `/objects/<key>`. What they do
when requested is `local_requests.py`.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from movievault.errors import InvalidInput
from movievault.storage.base import PostForm
from movievault.storage.local_multipart import check_upload_id
from movievault.storage.tokens import UrlTokens

#: Keys are paths of 1 to 8 segments of letters, digits, "_" and "-": no dots means no
#: "..", no hidden files and no clash with the ".json" sidecars.
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,128}(?:/[A-Za-z0-9_-]{1,128}){0,7}")


def check_key(key: str) -> str:
    """Return `key` when it is a safe object key, else raise InvalidInput."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidInput("Object keys are 1 to 8 segments of letters, digits, '_' and '-'.")
    return key


class SignedUrls:
    """Signs the local store's URLs; `LocalStorage` builds on it, with the same secret."""

    def __init__(self, *, secret: str, url_base: str) -> None:
        self.url_base = url_base.rstrip("/")
        self.tokens = UrlTokens(secret)

    def post_form(self, *, key: str, size: int, content_type: str, expires: int) -> PostForm:
        """Sign a form upload bound to the key, the exact size and the content type."""
        token = self.tokens.sign(
            {"op": "post", "key": check_key(key), "size": size, "type": content_type},
            expires=expires,
        )
        fields = {"key": key, "Content-Type": content_type, "token": token}
        return PostForm(url=f"{self.url_base}/upload", fields=fields)

    def put_url(
        self, *, key: str, size: int, content_type: str, sha256: str | None, expires: int
    ) -> str:
        """Sign one PUT of exactly `size` bytes of `content_type` (and SHA-256, if given)."""
        claims = {"op": "put", "key": check_key(key), "size": size, "type": content_type}
        if sha256:
            claims["sha256"] = sha256
        token = self.tokens.sign(claims, expires=expires)
        return f"{self.url_base}/upload?{urlencode({'token': token})}"

    def part_url(
        self, *, key: str, upload_id: str, part_number: int, size: int, expires: int,
        sha256: str | None = None,
    ) -> str:
        """Sign a PUT of exactly `size` bytes (with this SHA-256, if given) as part
        `part_number` of the upload."""
        claims = {
            "op": "part", "key": check_key(key), "upload": check_upload_id(upload_id),
            "part": part_number, "size": size,
        }
        if sha256:
            claims["sha256"] = sha256
        token = self.tokens.sign(claims, expires=expires)
        return f"{self.url_base}/parts/{upload_id}/{part_number}?{urlencode({'token': token})}"

    def download_url(
        self, *, key: str, filename: str, content_type: str, inline: bool, expires: int
    ) -> str:
        """Sign a GET that presents the object under `filename` (inline or as attachment)."""
        claims = {
            "op": "get", "key": check_key(key), "name": filename, "type": content_type,
            "inline": inline,
        }
        token = self.tokens.sign(claims, expires=expires)
        return f"{self.url_base}/objects/{quote(key)}?{urlencode({'token': token})}"

    def origins(self) -> list[str]:
        """The separate origin the URLs are on, else none (they are the app's own, 'self')."""
        parts = urlsplit(self.url_base)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.netloc else []
