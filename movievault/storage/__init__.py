"""Choose and build the storage backend from the app's configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app

from movievault.storage.base import (
    MAX_PARTS,
    MIN_PART_SIZE,
    OBJECT_POLICY,
    PostForm,
    Presentation,
    Storage,
    StoredObject,
    StoredPart,
    content_disposition,
    part_size_for,
    present,
)

__all__ = [
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "OBJECT_POLICY",
    "PostForm",
    "Presentation",
    "Storage",
    "StoredObject",
    "StoredPart",
    "build_storage",
    "content_disposition",
    "get_storage",
    "part_size_for",
    "present",
    "storage_kind",
]

KINDS = ("local", "s3", "embedded-s3")
_lock = threading.Lock()


def storage_kind(config: Mapping[str, Any]) -> str:
    """Return the configured backend: explicit STORAGE, else s3 when a bucket or endpoint is set."""
    kind = (config.get("STORAGE") or "").strip().lower()
    if not kind:
        kind = "s3" if config.get("S3_BUCKET") or config.get("S3_ENDPOINT_URL") else "local"
    if kind not in KINDS:
        raise ValueError(f"MOVIEVAULT_STORAGE must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _catalogue_is_empty(app: Flask) -> bool:
    """Whether no file has been recorded yet (so an absent local store is a first run)."""
    from sqlmodel import select

    from movievault import db
    from movievault.models import StoredFile

    with db.session_scope(app) as session:
        return session.exec(select(StoredFile.id).limit(1)).first() is None


def _pending_key_check(app: Flask) -> Callable[[str], bool]:
    """The local store's question "may a signed upload still write this key?", answered
    from the catalogue; a catalogue that cannot be read answers 503, never yes."""
    from sqlalchemy.exc import SQLAlchemyError

    from movievault import db, uploads
    from movievault.errors import CatalogueUnavailable

    def accepts(key: str) -> bool:
        try:
            with db.session_scope(app) as session:
                return uploads.accepts_object_write(session=session, key=key)
        except SQLAlchemyError as error:
            raise CatalogueUnavailable(
                "The catalogue cannot be read, so uploads cannot be checked; try again later."
            ) from error

    return accepts


def build_storage(app: Flask, kind: str | None = None) -> Storage:
    """Construct the backend `kind` (by default the one the configuration asks for)."""
    config = app.config
    kind = kind or storage_kind(config)
    if kind == "local":
        from movievault.storage.local import LocalStorage

        # On STORAGE_ORIGIN when set (the same app behind another host name), else relative.
        local = LocalStorage(
            root=config["DATA_DIR"],
            secret=config["SECRET_KEY"],
            url_base=config["STORAGE_ORIGIN"]
            + urlsplit(config["PUBLIC_URL"]).path.rstrip("/")
            + "/storage",
            accepts_key=_pending_key_check(app),
            free_space_reserve=config["FREE_SPACE_RESERVE"],
        )
        # Create the folders on a first run only: with files in the catalogue, a missing
        # store is an unmounted or lost disk, and recreating it empty would hide that.
        if not local.is_prepared():
            if _catalogue_is_empty(app):
                for line in local.setup():
                    app.logger.info("local store: %s", line)
            else:
                app.logger.error(
                    "The local store %s is missing; files cannot be read or stored.", local.root
                )
        return local
    if kind == "embedded-s3":
        from movievault.storage.embedded import start_embedded_s3

        return start_embedded_s3(app)
    from movievault.storage.s3 import S3Storage

    return S3Storage(
        bucket=config["S3_BUCKET"] or "movievault",
        endpoint_url=config.get("S3_ENDPOINT_URL") or None,
        public_endpoint_url=config.get("S3_PUBLIC_ENDPOINT_URL") or None,
        region=config.get("S3_REGION") or None,
    )


def get_storage(app: Flask | None = None) -> Storage:
    """Return the app's storage backend, built on first use (no I/O at import or start-up)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    storage = app.extensions.get("movievault.storage")
    if storage is None:
        with _lock:
            storage = app.extensions.get("movievault.storage")
            if storage is None:
                storage = build_storage(app)
                app.extensions["movievault.storage"] = storage
    return storage
