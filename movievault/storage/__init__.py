"""Choose and build the storage backend from the app's configuration."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from movievault.storage.base import (
    MAX_PARTS,
    MIN_PART_SIZE,
    PostForm,
    Storage,
    StoredPart,
    content_disposition,
    part_size_for,
)

__all__ = [
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "PostForm",
    "Storage",
    "StoredPart",
    "content_disposition",
    "get_storage",
    "part_size_for",
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


def _build(app: Flask) -> Storage:
    """Construct the backend the configuration asks for."""
    config = app.config
    kind = storage_kind(config)
    if kind == "local":
        from movievault.storage.local import LocalStorage

        return LocalStorage(root=config["DATA_DIR"], secret=config["SECRET_KEY"])
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
                storage = _build(app)
                app.extensions["movievault.storage"] = storage
    return storage
