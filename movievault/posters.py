"""Posters: one WebP image per movie, kept in the same store as the movie.

Keys are chosen here, never by a client: `posters/<owner id>/<file id>-<random>`, a new
one for every poster, so a replaced poster is never served from a cache under the old
URL and a poster being written never clashes with the one it replaces. The file's row
names its poster (`StoredFile.poster_key`); gc treats posters no row names as strays.
"""

from __future__ import annotations

import io
import logging
import secrets

from movievault.errors import MovieVaultError
from movievault.models import StoredFile
from movievault.storage import Storage

log = logging.getLogger(__name__)

PREFIX = "posters/"
CONTENT_TYPE = "image/webp"


def new_key(*, owner_id: int, file_id: int) -> str:
    """A fresh key for a poster of the file."""
    return f"{PREFIX}{owner_id}/{file_id}-{secrets.token_hex(8)}"


def store(*, storage: Storage, owner_id: int, file_id: int, image: bytes) -> str:
    """Put the WebP `image` in the store under a new key, and return the key."""
    key = new_key(owner_id=owner_id, file_id=file_id)
    storage.put(key=key, stream=io.BytesIO(image), size=len(image), content_type=CONTENT_TYPE)
    return key


def discard(*, storage: Storage, key: str | None) -> None:
    """Remove a poster (or another object of a movie) no row names any more; a failure
    leaves it to gc, logged."""
    if key is None:
        return
    try:
        storage.delete(key)
    except MovieVaultError as error:
        log.warning("could not remove %s (gc will): %s", key, error.message)


def poster_url(stored: StoredFile, *, root: str = "") -> str | None:
    """Where the app serves the file's poster (a redirect to the store), or None.

    The key's random part rides along, so a new poster has a new URL.
    """
    if stored.poster_key is None:
        return None
    version = stored.poster_key.rsplit("-", 1)[-1]
    return f"{root}/files/{stored.id}/poster?v={version}"
