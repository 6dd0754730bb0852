"""Default settings, environment overrides and the generated secret key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

MIB = 1024 * 1024
GIB = 1024 * MIB

#: Every setting, with its default; each can be overridden by MOVIEVAULT_<NAME>.
DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,  # generated on first run and kept in the instance folder
    "DATABASE_URL": None,  # default: sqlite file in the instance folder
    "STORAGE": "",  # "local", "s3" or "embedded-s3"; empty = s3 if configured, else local
    "DATA_DIR": None,  # local backend's objects; default: <instance>/objects
    "S3_BUCKET": "",
    "S3_ENDPOINT_URL": "",
    "S3_PUBLIC_ENDPOINT_URL": "",
    "S3_REGION": "us-east-1",
    "URL_EXPIRES": 3600,  # seconds a presigned URL stays valid
    "UPLOAD_TTL": 3 * 24 * 3600,  # seconds an unfinished upload can be resumed
    "FORM_UPLOAD_TTL": 6 * 3600,  # the same for single form uploads (nothing to resume)
    "MAX_PENDING_UPLOADS": 100,  # unfinished uploads one user may have at once
    "FREE_SPACE_RESERVE": GIB,  # local store: free disk bytes that uploads never take
    "ABORT_MULTIPART_DAYS": 7,  # bucket lifecycle; longer than UPLOAD_TTL on purpose
    "MULTIPART_THRESHOLD": 100 * MIB,
    "PART_SIZE": 16 * MIB,
    "MAX_FILE_SIZE": 100 * GIB,
    "PUBLIC_URL": "",  # default: http://HOST:PORT
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "THREADS": 16,
    "PROXY_COUNT": 0,  # reverse proxies in front whose X-Forwarded-* headers to trust
    "PAGE_SIZE": 50,
}

# Settings that must stay strings even when the environment value looks like JSON.
_STRINGS = ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL", "S3_REGION", "STORAGE")
_INTS = (
    "URL_EXPIRES",
    "UPLOAD_TTL",
    "FORM_UPLOAD_TTL",
    "MAX_PENDING_UPLOADS",
    "FREE_SPACE_RESERVE",
    "ABORT_MULTIPART_DAYS",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "MAX_FILE_SIZE",
    "PORT",
    "THREADS",
    "PROXY_COUNT",
    "PAGE_SIZE",
)


def _secret_key(instance: Path) -> str:
    """Read the instance's secret key, creating it (readable by the owner only) on first run."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Layer defaults, then MOVIEVAULT_* variables, then `test_config`; derive the rest."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("MOVIEVAULT")
    if test_config:
        app.config.from_mapping(test_config)
    config = app.config
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    for name in _STRINGS:
        config[name] = "" if config[name] is None else str(config[name])
    for name in _INTS:
        try:
            config[name] = int(config[name])
        except (TypeError, ValueError) as error:
            raise ValueError(f"MOVIEVAULT_{name} must be an integer") from error
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _secret_key(instance)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'movievault.db'}"
    if not config["DATA_DIR"]:
        config["DATA_DIR"] = str(instance / "objects")
    if not config["PUBLIC_URL"]:
        config["PUBLIC_URL"] = f"http://{config['HOST']}:{config['PORT']}"
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"]).rstrip("/")
    # Sessions: HttpOnly always, Lax against cross-site posts, Secure when served over https.
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    config["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    secure = config["PUBLIC_URL"].startswith("https://")
    config["SESSION_COOKIE_SECURE"] = bool(config.get("SESSION_COOKIE_SECURE")) or secure
    config["REMEMBER_COOKIE_SECURE"] = bool(config.get("REMEMBER_COOKIE_SECURE")) or secure
    # CSRF tokens live as long as the session; a library page may stay open for hours.
    config.setdefault("WTF_CSRF_TIME_LIMIT", None)
