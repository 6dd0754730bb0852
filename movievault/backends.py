"""Which storage backend the app uses: built from its settings on first use.

The backends themselves (`movievault.storage`) know nothing of Flask or the catalogue;
this wiring hands them what they need: folders, secrets, endpoints, and the catalogue's
answer to "may this key still be written?".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from movievault import claims, db
from movievault.config import settings
from movievault.errors import CatalogueUnavailable
from movievault.models import StoredFile
from movievault.settings import Settings
from movievault.storage import Storage

_lock = threading.Lock()


def _catalogue_is_empty(app: Flask) -> bool:
    """Whether no file has been recorded yet (so an absent local store is a first run)."""
    with db.session_scope(app) as session:
        return session.exec(select(StoredFile.id).limit(1)).first() is None


def _pending_key_check(app: Flask) -> Callable[[str], bool]:
    """The local store's question "may a signed upload still write this key?", answered
    from the catalogue; a catalogue that cannot be read answers 503, never yes."""

    def accepts(key: str) -> bool:
        try:
            with db.session_scope(app) as session:
                return claims.accepts_object_write(session=session, key=key)
        except SQLAlchemyError as error:
            raise CatalogueUnavailable(
                "The catalogue cannot be read, so uploads cannot be checked; try again later."
            ) from error

    return accepts


def _build_local(app: Flask, config: Settings) -> Storage:
    """The local store, its folders created on a first run only."""
    from movievault.storage.local import LocalStorage

    # On STORAGE_ORIGIN when set (the same app behind another host name), else relative.
    local = LocalStorage(
        root=config.data_dir,
        secret=config.secret_key,
        url_base=config.storage_origin + urlsplit(config.public_url).path.rstrip("/") + "/storage",
        accepts_key=_pending_key_check(app),
        free_space_reserve=config.free_space_reserve,
        upload_method=config.s3_upload_method,
        checksums=config.s3_checksums,
    )
    # With files in the catalogue, a missing store is an unmounted or lost disk, and
    # recreating it empty would hide that.
    if not local.is_prepared():
        if _catalogue_is_empty(app):
            for line in local.setup():
                app.logger.info("local store: %s", line)
        else:
            app.logger.error(
                "The local store %s is missing; files cannot be read or stored.", local.root
            )
    return local


def build_storage(app: Flask, kind: str | None = None) -> Storage:
    """Construct the backend `kind` (by default the one the settings ask for)."""
    config = settings(app)
    kind = kind or config.storage
    if kind == "local":
        return _build_local(app, config)
    if kind == "embedded-s3":
        from movievault.storage.embedded import start_embedded_s3

        embedded = start_embedded_s3(
            bucket=config.s3_bucket or "movievault",
            region=config.s3_region or "us-east-1",
            public_url=config.public_url,
            upload_method=config.s3_upload_method,
            checksums=config.s3_checksums,
        )
        app.logger.warning("%s (endpoint %s)", embedded.notice(), embedded.endpoint_url)
        return embedded
    from movievault.storage.s3 import S3Storage

    return S3Storage(
        bucket=config.s3_bucket or "movievault",
        endpoint_url=config.s3_endpoint_url or None,
        public_endpoint_url=config.s3_public_endpoint_url or None,
        region=config.s3_region or None,
        upload_method=config.s3_upload_method,
        checksums=config.s3_checksums,
    )


def get_storage(app: Flask | None = None) -> Storage:
    """Return the app's storage backend, built on first use (no I/O at import or start-up)."""
    # Flask types current_app as Flask, not as the proxy it is: unwrap the real app.
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    storage = app.extensions.get("movievault.storage")
    if storage is None:
        with _lock:
            storage = app.extensions.get("movievault.storage")
            if storage is None:
                storage = build_storage(app)
                app.extensions["movievault.storage"] = storage
    return storage
