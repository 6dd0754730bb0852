"""One typed settings object, parsed and checked once when the app is built (no Flask).

`config.configure` layers the defaults, the MOVIEVAULT_* variables and a test's overrides,
checks them, and builds a `Settings` from the result; code asks it, never `os.environ` or
`app.config` deep inside. The defaults themselves live in one place: `config.DEFAULTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from movievault.jobs import ProbeSettings
from movievault.uploads import UploadSettings


@dataclass(frozen=True)
class Settings:
    """Every MOVIEVAULT_* setting, as the app runs with it (see the README's table)."""

    secret_key: str
    database_url: str
    storage: str  # "local", "s3" or "embedded-s3": resolved, never empty
    data_dir: str
    s3_bucket: str
    s3_endpoint_url: str
    s3_public_endpoint_url: str
    s3_region: str
    s3_upload_method: str  # "auto", "post" or "put"
    s3_checksums: bool
    url_expires: int
    upload_ttl: int
    form_upload_ttl: int
    max_pending_uploads: int
    free_space_reserve: int
    abort_multipart_days: int
    multipart_threshold: int
    part_size: int
    max_file_size: int
    public_url: str
    storage_origin: str
    host: str
    port: int
    threads: int
    proxy_count: int
    page_size: int
    media_workers: int
    probe_timeout: int
    workers: int
    instances: str  # "one" or "many"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, storage: str) -> Settings:
        """Read the checked configuration (upper-case names) and the resolved backend."""
        values = {f.name: config[f.name.upper()] for f in fields(cls) if f.name != "storage"}
        return cls(storage=storage, **values)

    @property
    def uploads(self) -> UploadSettings:
        """The knobs of the upload protocol."""
        return UploadSettings(
            url_expires=self.url_expires,
            upload_ttl=self.upload_ttl,
            form_upload_ttl=self.form_upload_ttl,
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
            max_file_size=self.max_file_size,
            max_pending_uploads=self.max_pending_uploads,
        )

    @property
    def probing(self) -> ProbeSettings:
        """How files are probed: the time limit, and how many at once in the background."""
        return ProbeSettings(timeout=self.probe_timeout, workers=self.media_workers)
