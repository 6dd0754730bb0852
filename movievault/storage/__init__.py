"""Where movies are kept: the storage interface and what every backend shares.

One module per backend: `local.py` (a folder on this machine, with the request handling
of its URLs in `local_requests.py`), `s3.py` (any S3 service) and `embedded.py` (moto,
for demos). None of them knows Flask or the catalogue; which one the app uses, and how it
is built from the settings, is the app's wiring (`movievault.backends`).
"""

from __future__ import annotations

from movievault.storage.base import (
    CHECKSUM_HEADER,
    KINDS,
    MAX_PARTS,
    MIN_PART_SIZE,
    OBJECT_POLICY,
    PostForm,
    Presentation,
    Readable,
    Storage,
    StoredObject,
    StoredPart,
    checksum_headers,
    content_disposition,
    part_size_for,
    present,
    put_headers,
    sha256_base64,
    storage_kind,
    translate_errors,
)

__all__ = [
    "CHECKSUM_HEADER",
    "KINDS",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "OBJECT_POLICY",
    "PostForm",
    "Presentation",
    "Readable",
    "Storage",
    "StoredObject",
    "StoredPart",
    "checksum_headers",
    "content_disposition",
    "part_size_for",
    "present",
    "put_headers",
    "sha256_base64",
    "storage_kind",
    "translate_errors",
]
