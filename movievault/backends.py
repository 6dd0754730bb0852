"""Which storage backend the app uses: chosen from its settings, built on first use.

The backends themselves (`movievault.storage`) know nothing of Flask or the catalogue;
this wiring hands them what they need: folders, secrets, endpoints, and the catalogue's
answer to "may this key still be written?".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from movievault import db, uploads
from movievault.errors import CatalogueUnavailable
from movievault.models import StoredFile
from movievault.storage import Storage

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


@dataclass(frozen=True)
class StorageSettings:
    """What building a backend, and serving the local store's URLs, needs to know."""

    kind: str
    public_url: str
    #: The local store: its folder, the secret its URLs are signed with, its origin
    #: (empty: the app's own) and the free disk space uploads never take.
    data_dir: str
    secret_key: str
    storage_origin: str
    free_space_reserve: int
    #: S3: the bucket, the endpoint the app calls, the one browsers use, the region.
    s3_bucket: str
    s3_endpoint_url: str | None
    s3_public_endpoint_url: str | None
    s3_region: str | None


def storage_settings(app: Flask) -> StorageSettings:
    """Read the storage settings from the app's configuration (the only place that does)."""
    config = app.config
    return StorageSettings(
        kind=storage_kind(config),
        public_url=config["PUBLIC_URL"],
        data_dir=config["DATA_DIR"],
        secret_key=config["SECRET_KEY"],
        storage_origin=config["STORAGE_ORIGIN"],
        free_space_reserve=config["FREE_SPACE_RESERVE"],
        s3_bucket=config["S3_BUCKET"] or "movievault",
        s3_endpoint_url=config.get("S3_ENDPOINT_URL") or None,
        s3_public_endpoint_url=config.get("S3_PUBLIC_ENDPOINT_URL") or None,
        s3_region=config.get("S3_REGION") or None,
    )


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
                return uploads.accepts_object_write(session=session, key=key)
        except SQLAlchemyError as error:
            raise CatalogueUnavailable(
                "The catalogue cannot be read, so uploads cannot be checked; try again later."
            ) from error

    return accepts


def _build_local(app: Flask, settings: StorageSettings) -> Storage:
    """The local store, its folders created on a first run only."""
    from movievault.storage.local import LocalStorage

    # On STORAGE_ORIGIN when set (the same app behind another host name), else relative.
    local = LocalStorage(
        root=settings.data_dir,
        secret=settings.secret_key,
        url_base=settings.storage_origin
        + urlsplit(settings.public_url).path.rstrip("/")
        + "/storage",
        accepts_key=_pending_key_check(app),
        free_space_reserve=settings.free_space_reserve,
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
    """Construct the backend `kind` (by default the one the configuration asks for)."""
    settings = storage_settings(app)
    kind = kind or settings.kind
    if kind == "local":
        return _build_local(app, settings)
    if kind == "embedded-s3":
        from movievault.storage.embedded import start_embedded_s3

        embedded = start_embedded_s3(
            bucket=settings.s3_bucket,
            region=settings.s3_region or "us-east-1",
            public_url=settings.public_url,
        )
        app.logger.warning("%s (endpoint %s)", embedded.notice(), embedded.endpoint_url)
        return embedded
    from movievault.storage.s3 import S3Storage

    return S3Storage(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        region=settings.s3_region,
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
