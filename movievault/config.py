"""Default settings, environment overrides, the generated secret key and private files."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from sqlalchemy.engine import make_url

from movievault.settings import Settings
from movievault.storage import storage_kind

log = logging.getLogger(__name__)

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
    "S3_UPLOAD_METHOD": "auto",  # single uploads: "post", "put", or "auto" (by endpoint)
    "S3_CHECKSUMS": "on",  # "off" for stores that do not take x-amz-checksum-sha256
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
    "STORAGE_ORIGIN": "",  # local store: serve objects from this origin instead of PUBLIC_URL's
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "THREADS": 16,
    "PROXY_COUNT": 0,  # reverse proxies in front whose X-Forwarded-* headers to trust
    "PAGE_SIZE": 50,
    "MEDIA_WORKERS": None,  # files probed at once in the background; default: see below
    "PROBE_TIMEOUT": 60,  # seconds one file's probe and poster may take
    "WORKERS": 1,  # server processes of `movievault serve`: waitress for 1, gunicorn above
    "INSTANCES": "one",  # "many" when several hosts serve one library (see docs/DEPLOY.md)
}

# Settings that must stay strings even when the environment value looks like JSON.
_STRINGS = (
    "S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL", "S3_REGION", "STORAGE",
    "STORAGE_ORIGIN", "S3_UPLOAD_METHOD", "S3_CHECKSUMS",
    "INSTANCES",
)
#: What S3_UPLOAD_METHOD and S3_CHECKSUMS accept.
UPLOAD_METHODS = ("auto", "post", "put")
SWITCHES = {"on": True, "off": False}
#: What INSTANCES accepts: this host alone (any number of its processes), or several hosts.
INSTANCE_COUNTS = ("one", "many")
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
    "MEDIA_WORKERS",
    "PROBE_TIMEOUT",
    "WORKERS",
)


#: Shorter keys are refused: they sign sessions and the local store's upload URLs.
MIN_SECRET_KEY_BYTES = 32


class ConfigError(ValueError):
    """A setting, folder or file MovieVault cannot start with; its message is one sentence
    that says what to do (the command line prints it instead of a traceback)."""


def _keep_private(path: Path, mode: int) -> None:
    """Take group and other permissions off `path` (created by someone else, or by an older
    release under a loose umask); warn when that is not allowed."""
    current = stat.S_IMODE(path.stat().st_mode)
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as error:
        log.warning("%s is readable by other users (mode %o) and could not be made private: "
                    "%s", path, current, error)
    else:
        log.warning("Made %s private (mode %o, was %o).", path, current & mode, current)


def _private_folder(path: Path) -> None:
    """Create `path` readable by the owner only (0700), or tighten the folder that is there."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise ConfigError(
                f"The instance folder {path} is a file, not a folder: move it away, or set "
                "MOVIEVAULT_INSTANCE_PATH to a folder MovieVault may write."
            ) from None
        _keep_private(path, 0o700)
    except OSError as error:
        raise ConfigError(
            f"Could not create the instance folder {path} ({error.strerror or error}): set "
            "MOVIEVAULT_INSTANCE_PATH to a folder MovieVault may write, or fix the "
            "permissions of the folder above it."
        ) from error
    else:
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file with mode 0600, or tighten the one that is there.

    SQLite creates the -wal and -shm files with the database file's mode, so they follow.
    """
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for existing in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if existing.exists():
                _keep_private(existing, 0o600)
        return
    except OSError as error:
        raise ConfigError(
            f"Could not create the catalogue database {path} ({error.strerror or error}): "
            "check that its folder exists and MovieVault may write there, or set "
            "MOVIEVAULT_DATABASE_URL to another place."
        ) from error
    try:
        os.fchmod(fd, 0o600)  # os.open's mode passes through the umask
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename or link in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_secret_key(path: Path, key: str) -> str:
    """Write `key` to `path` whole or not at all, and return the key the file holds.

    The key goes to a temporary file in the same folder, is flushed to disk, and only then
    linked under its name: a crash or a full disk leaves no empty or partial key behind.
    Linking fails when the name exists, so workers starting together all end up with the
    key of the first one to finish.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")
    try:
        try:
            os.fchmod(fd, 0o600)
            data = key.encode("ascii")
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text().strip()
        _fsync_folder(path.parent)
        return key
    finally:
        os.unlink(temporary)


def _secret_key(instance: Path) -> str:
    """Read the instance's secret key, creating it (readable by the owner only) on first run."""
    path = instance / "secret_key"
    if path.exists():
        _keep_private(path, 0o600)
        key = path.read_text().strip()
    else:
        try:
            key = _write_secret_key(path, secrets.token_hex(32))
        except OSError as error:
            raise ConfigError(
                f"Could not write a new secret key to {path} ({error.strerror or error}): "
                "make room on that disk or fix the folder's permissions, then start again."
            ) from error
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"The secret key in {path} is empty or shorter than {MIN_SECRET_KEY_BYTES} bytes: "
            "delete that file and start MovieVault again to generate a new one (everyone will "
            "have to sign in again)."
        )
    return key


def _checked_secret_key(key: Any) -> str | bytes:
    """The configured key as text (or bytes), refused when too short to keep sessions and
    upload URLs unforgeable."""
    # A MOVIEVAULT_ variable that looks like JSON arrives as a number.
    checked: str | bytes = key if isinstance(key, bytes) else str(key)
    if len(checked if isinstance(checked, bytes) else checked.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"MOVIEVAULT_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long: set it "
            "to a random string (such as the output of `openssl rand -hex 32`), or unset it "
            "to use the key MovieVault generates in its instance folder."
        )
    return checked


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
        raise ConfigError(
            "MOVIEVAULT_STORAGE_ORIGIN must be an origin such as https://media.example.org "
            f"(scheme, host name and optional port, no path), not {value!r}."
        )
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    public = urlsplit(public_url)
    if origin == f"{public.scheme}://{public.netloc.lower()}":
        raise ConfigError(
            "MOVIEVAULT_STORAGE_ORIGIN must be another origin than PUBLIC_URL's "
            "(another host name or port); leave it empty to serve objects from PUBLIC_URL."
        )
    return origin


def default_media_workers() -> int:
    """Background probes at once: 1 on a small machine, up to 4 with 8 cores or more.

    Each probe decodes a frame or two on a CPU: half the cores at most leaves the others
    to the pages and the uploads.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def _check_media(config: Any) -> None:
    """Refuse probe settings that cannot work."""
    if config["MEDIA_WORKERS"] < 0:
        raise ConfigError(
            "MOVIEVAULT_MEDIA_WORKERS must be 0 (no background probing) or more, "
            f"not {config['MEDIA_WORKERS']}."
        )
    if config["PROBE_TIMEOUT"] < 1:
        raise ConfigError(
            f"MOVIEVAULT_PROBE_TIMEOUT must be at least 1 (second), not {config['PROBE_TIMEOUT']}."
        )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Return `value` lower-cased when it is one of `allowed`; refuse it otherwise."""
    chosen = value.strip().lower()
    if chosen not in allowed:
        raise ConfigError(
            f"MOVIEVAULT_{name} must be one of {', '.join(allowed)}, not {value!r}"
        )
    return chosen


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Layer defaults, then MOVIEVAULT_* variables, then `test_config`; derive the rest."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("MOVIEVAULT")
    if test_config:
        app.config.from_mapping(test_config)
    config = app.config
    instance = Path(app.instance_path)
    _private_folder(instance)
    for name in _STRINGS:
        config[name] = "" if config[name] is None else str(config[name])
    if config["MEDIA_WORKERS"] is None or config["MEDIA_WORKERS"] == "":
        config["MEDIA_WORKERS"] = default_media_workers()
    for name in _INTS:
        try:
            config[name] = int(config[name])
        except (TypeError, ValueError) as error:
            raise ConfigError(f"MOVIEVAULT_{name} must be an integer.") from error
    if not 1 <= config["PORT"] <= 65535:
        raise ConfigError(f"MOVIEVAULT_PORT must be from 1 to 65535, not {config['PORT']}.")
    if config["THREADS"] < 1:
        raise ConfigError(f"MOVIEVAULT_THREADS must be at least 1, not {config['THREADS']}.")
    _check_media(config)
    if config["WORKERS"] < 1:
        raise ConfigError(f"MOVIEVAULT_WORKERS must be at least 1, not {config['WORKERS']}.")
    config["INSTANCES"] = _choice("INSTANCES", config["INSTANCES"], INSTANCE_COUNTS)
    if config["SECRET_KEY"] is None and config["INSTANCES"] == "many":
        # A generated key lives in one host's instance folder: the other hosts would make
        # their own, and each would refuse the sessions and upload URLs of the others.
        raise ConfigError(
            "MOVIEVAULT_INSTANCES=many needs the same MOVIEVAULT_SECRET_KEY on every host: "
            "set it to one random string (such as the output of `openssl rand -hex 32`) "
            "everywhere, instead of the key each host would generate for itself."
        )
    if config["SECRET_KEY"] is None:
        config["SECRET_KEY"] = _secret_key(instance)
    else:
        config["SECRET_KEY"] = _checked_secret_key(config["SECRET_KEY"])
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'movievault.db'}"
    private_sqlite_file(config["DATABASE_URL"])
    if not config["DATA_DIR"]:
        config["DATA_DIR"] = str(instance / "objects")
    if not config["PUBLIC_URL"]:
        config["PUBLIC_URL"] = f"http://{config['HOST']}:{config['PORT']}"
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"]).rstrip("/")
    config["STORAGE_ORIGIN"] = _storage_origin(config["STORAGE_ORIGIN"], config["PUBLIC_URL"])
    config["S3_UPLOAD_METHOD"] = _choice(
        "S3_UPLOAD_METHOD", config["S3_UPLOAD_METHOD"], UPLOAD_METHODS
    )
    config["S3_CHECKSUMS"] = SWITCHES[
        _choice("S3_CHECKSUMS", config["S3_CHECKSUMS"], tuple(SWITCHES))
    ]
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
    try:
        kind = storage_kind(config)
    except ValueError as error:
        raise ConfigError(f"{error}.") from error
    if kind == "embedded-s3" and config["INSTANCES"] == "many":
        raise ConfigError(
            "The embedded S3 store lives inside one process and cannot be shared by several "
            "hosts: use a real S3 service (MOVIEVAULT_STORAGE=s3) with MOVIEVAULT_INSTANCES=many."
        )
    if config["INSTANCES"] == "many":
        _warn_of_what_one_host_keeps(app, kind=kind, database_url=config["DATABASE_URL"])
    app.extensions["movievault.settings"] = Settings.from_config(config, storage=kind)


def _warn_of_what_one_host_keeps(app: Flask, *, kind: str, database_url: str) -> None:
    """Say which of the library's parts only this host's instances can share: several
    instances on one host may share a folder and a SQLite file, several hosts cannot."""
    if kind == "local":
        app.logger.warning(
            "MOVIEVAULT_INSTANCES=many with the local store: only instances on this host "
            "that use the same MOVIEVAULT_DATA_DIR share its movies; instances on other "
            "hosts need MOVIEVAULT_STORAGE=s3 and one bucket."
        )
    if database_url.startswith("sqlite"):
        app.logger.warning(
            "MOVIEVAULT_INSTANCES=many with a SQLite catalogue: only instances on this host "
            "share it; instances on other hosts need one PostgreSQL database "
            "(MOVIEVAULT_DATABASE_URL)."
        )


def settings(app: Flask | None = None) -> Settings:
    """The settings of `app` (by default the current one), parsed once at start-up."""
    parsed: Settings = (app or current_app).extensions["movievault.settings"]
    return parsed
