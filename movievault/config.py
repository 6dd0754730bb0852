"""Default settings, environment overrides and the generated secret key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    "ABORT_MULTIPART_DAYS": 7,  # bucket lifecycle; longer than UPLOAD_TTL on purpose
    "MULTIPART_THRESHOLD": 100 * MIB,
    "PART_SIZE": 16 * MIB,
    "MAX_FILE_SIZE": 100 * GIB,
    "PUBLIC_URL": "",  # default: http://HOST:PORT
    "STORAGE_ORIGIN": "",  # local store: serve objects from this origin instead of PUBLIC_URL's
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "THREADS": 16,
    "PROXY_COUNT": 0,  # reverse proxies in front whose X-Forwarded-* headers to trust
    "PAGE_SIZE": 50,
}

# Settings that must stay strings even when the environment value looks like JSON.
_STRINGS = (
    "S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL", "S3_REGION", "STORAGE",
    "STORAGE_ORIGIN",
)
_INTS = (
    "URL_EXPIRES",
    "UPLOAD_TTL",
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


def _storage_origin(value: str, public_url: str) -> str:
    """Return STORAGE_ORIGIN as `scheme://host[:port]`, "" when unset; refuse anything else."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "MOVIEVAULT_STORAGE_ORIGIN must be an origin such as https://media.example.org "
            f"(scheme, host name and optional port, no path), not {value!r}"
        )
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    public = urlsplit(public_url)
    if origin == f"{public.scheme}://{public.netloc.lower()}":
        raise ValueError(
            "MOVIEVAULT_STORAGE_ORIGIN must be another origin than PUBLIC_URL's "
            "(another host name or port); leave it empty to serve objects from PUBLIC_URL"
        )
    return origin


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
    config["STORAGE_ORIGIN"] = _storage_origin(config["STORAGE_ORIGIN"], config["PUBLIC_URL"])
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
