"""The local disk backend: objects under DATA_DIR, moved by the app's own signed URLs.

It hands browsers the same kinds of instructions as S3 (a form POST with the file last,
part PUTs answering an `ETag`, GETs honouring `Range`), but its URLs are relative paths
under `/storage/` that this app serves (see `local_http.py`). Those views stay thin: the
checking, streaming and crash-safe writing happen here, without Flask.

Layout under the root (DATA_DIR); keys never start with a dot, so they cannot collide
with the store's own entries:

    <key>                   the bytes of each object, e.g. movies/3/<32 hex digits>
    <key>.json              its SHA-256, with the size, inode and mtime it describes
    .movievault-store       marks a prepared store (missing: the disk is not there)
    .uploads/<upload id>/   one multipart upload: upload.json and NNNNN.<sha256> part files
    .tmp/                   files being written, renamed into place once complete
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from movievault.errors import (
    AccessDenied,
    InsufficientStorage,
    InvalidInput,
    MovieVaultError,
    NoSuchKey,
    NoSuchUpload,
    StorageRejected,
    StorageUnavailable,
)
from movievault.storage.base import (
    MIN_PART_SIZE,
    PostForm,
    Presentation,
    Storage,
    StoredObject,
    StoredPart,
    present,
    translate_errors,
)

MARKER = ".movievault-store"
#: Keys are paths of 1 to 8 segments of letters, digits, "_" and "-": no dots means no
#: "..", no hidden files and no clash with the ".json" sidecars.
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,128}(?:/[A-Za-z0-9_-]{1,128}){0,7}")
UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")
PART_RE = re.compile(r"(\d{5})\.([0-9a-f]{64})")
MAX_PART_NUMBER = 10_000
#: Bytes read or written at a time: large enough for speed, small enough to never matter.
CHUNK = 1024 * 1024
#: Form fields before the file (key, Content-Type, token) are tiny; cap what is buffered.
MAX_FIELD_BYTES = 64 * 1024
MAX_FORM_PARTS = 32
#: Temporary files older than this are leftovers of a crash or a cut connection (`sweep`).
TMP_MAX_AGE = 24 * 3600


class _ObjectExists(Exception):
    """The destination of a write-once placement is already there."""


def _ended() -> AccessDenied:
    """The refusal of a write whose upload is over (a replayed or late signed URL)."""
    return AccessDenied(
        "AccessDenied: this upload is finished, cancelled or expired, and an object is never "
        "replaced: its URL can no longer write. Start the upload again."
    )


@dataclass(frozen=True)
class Download:
    """A checked GET: the opened file (the caller closes it), and how to present it."""

    file: BinaryIO
    size: int
    mtime: float
    etag: str
    presentation: Presentation


def check_key(key: str) -> str:
    """Return `key` when it is a safe object key, else raise InvalidInput."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidInput("Object keys are 1 to 8 segments of letters, digits, '_' and '-'.")
    return key


def _check_upload_id(upload_id: str) -> str:
    """Return `upload_id` when it has the form this store creates, else refuse it."""
    if not isinstance(upload_id, str) or not UPLOAD_ID_RE.fullmatch(upload_id):
        raise StorageRejected("NoSuchUpload: the multipart upload id is not valid.")
    return upload_id


def _disk_meaning(error: Exception, action: str) -> MovieVaultError | None:
    """What a disk error means: a full, read-only or vanished disk is the 503 the API promises."""
    if not isinstance(error, OSError):
        return None
    return StorageUnavailable(
        f"The storage service is unavailable: the local store could not {action} "
        f"({error.strerror or error}). Check the disk and try again."
    )


#: Decorates what touches the disk: `@_disk("read an object")`.
_disk = translate_errors(_disk_meaning)


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_new(source: Path, destination: Path) -> None:
    """Move `source` to `destination` unless something is there already (_ObjectExists).

    A hard link is created only if the name is free, atomically; on filesystems without
    hard links (FAT, exFAT) the check and the rename are two steps, microseconds apart.
    """
    try:
        os.link(source, destination)
    except FileExistsError:
        raise _ObjectExists(str(destination)) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.lexists(destination):
            raise _ObjectExists(str(destination)) from None
        os.replace(source, destination)
        return
    os.unlink(source)


class _Incoming:
    """A temporary file in .tmp/ that receives bytes, hashes them and caps their number.

    Nothing appears under a real name until `place` renames the finished, flushed file, so
    a crash leaves at most a stray file in .tmp/, never a half-written object or part.
    """

    def __init__(self, tmp: Path, *, limit: int) -> None:
        fd, name = tempfile.mkstemp(dir=tmp, prefix="in-", suffix=".tmp")
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`; refuse as soon as the total would pass the limit."""
        if self.size + len(data) > self.limit:
            raise InvalidInput(
                f"EntityTooLarge: the body is larger than the {self.limit} bytes signed for."
            )
        self.file.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def copy_from(self, stream: BinaryIO, length: int | None = None) -> None:
        """Write everything `stream` yields (at most `length` bytes when given)."""
        remaining = length
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            data = stream.read(want)
            if not data:
                break
            self.write(data)
            if remaining is not None:
                remaining -= len(data)

    def place(
        self, destination: Path, *, expected: int, make_parents: bool = True,
        replace: bool = True,
    ) -> os.stat_result:
        """Check the size, flush to disk and rename into place; return the file's stat.

        With `replace=False` an existing destination is left alone and `_ObjectExists`
        raised: objects are written once, so no signed URL can change a recorded movie.
        """
        if self.size != expected:
            raise InvalidInput(
                f"IncompleteBody: received {self.size} bytes; exactly {expected} bytes "
                "were signed for."
            )
        self.file.flush()
        os.fsync(self.file.fileno())
        stat = os.fstat(self.file.fileno())
        self.file.close()
        if make_parents:
            destination.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            os.replace(self.path, destination)
        else:
            _link_new(self.path, destination)
        _fsync_dir(destination.parent)
        return stat

    def discard(self) -> None:
        """Remove the temporary file (after a failure)."""
        self.file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> _Incoming:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None or not self.file.closed:
            self.discard()


class LocalStorage(Storage):
    """Objects as files under one folder; browsers get URLs signed with the app's secret.

    `url_base` is a path (`/storage`: the URLs work on whatever address the page was
    opened at) or an absolute URL on a separate origin (STORAGE_ORIGIN), which isolates
    the objects from the app's pages.
    """

    kind = "local"

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        secret: str,
        url_base: str = "/storage",
        accepts_key: Callable[[str], bool] | None = None,
        free_space_reserve: int = 0,
    ):
        self.root = Path(root).absolute()
        self.url_base = url_base.rstrip("/")
        # Asked before a form upload writes its key: is an upload of it still pending? The
        # catalogue knows; the app's wiring passes the question in (the store has no DB).
        self.accepts_key = accepts_key
        # Bytes of free disk that uploads may never take: the catalogue and the system
        # often live on the same disk, and a full disk breaks both.
        self.free_space_reserve = free_space_reserve
        self._signer = URLSafeSerializer(
            secret,
            salt="movievault.local-storage",
            signer_kwargs={"digest_method": hashlib.sha256},  # HMAC-SHA256, not SHA-1
        )

    # --- layout ---------------------------------------------------------------------------

    @property
    def uploads(self) -> Path:
        """Folder of the multipart uploads in progress."""
        return self.root / ".uploads"

    @property
    def tmp(self) -> Path:
        """Folder of files being written (same filesystem, so renames are atomic)."""
        return self.root / ".tmp"

    def object_path(self, key: str) -> Path:
        """Where the object at `key` lives (the key is checked first)."""
        return self.root.joinpath(*check_key(key).split("/"))

    @staticmethod
    def _meta_path(path: Path) -> Path:
        """The sidecar holding an object's SHA-256."""
        return path.with_name(path.name + ".json")

    def _upload_dir(self, upload_id: str) -> Path:
        """The folder of one multipart upload."""
        return self.uploads / _check_upload_id(upload_id)

    def _ready(self) -> None:
        """Raise StorageUnavailable unless the root is a prepared store (not an empty mount)."""
        if not (self.root / MARKER).is_file():
            raise StorageUnavailable(
                f"The storage service is unavailable: {self.root} is missing or is not a "
                "MovieVault store (is its disk mounted?). Restore it, or run "
                "`movievault setup-bucket` to start an empty one."
            )

    def is_prepared(self) -> bool:
        """Whether `setup` has run on this root."""
        return (self.root / MARKER).is_file()

    # --- signed tokens --------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], *, expires: int) -> str:
        """Sign `claims` with an expiry `expires` seconds from now."""
        return self._signer.dumps({**claims, "exp": int(time.time()) + int(expires)})

    def verify(self, token: str | None, operation: str) -> dict[str, Any]:
        """Return the claims of a valid, unexpired token for `operation`, else AccessDenied."""
        if not token:
            raise AccessDenied("AccessDenied: this storage URL carries no signature.")
        try:
            claims = self._signer.loads(token)
        except BadSignature:
            raise AccessDenied("AccessDenied: the storage URL's signature is not valid.") from None
        if not isinstance(claims, dict) or claims.get("op") != operation:
            raise AccessDenied("AccessDenied: this signature is for another kind of request.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise AccessDenied("AccessDenied: the storage URL has expired; ask for a new one.")
        return claims

    # --- the Storage interface ------------------------------------------------------------

    def post_form(self, *, key: str, size: int, content_type: str, expires: int) -> PostForm:
        """Sign a form upload bound to the key, the exact size and the content type."""
        token = self.sign(
            {"op": "post", "key": check_key(key), "size": size, "type": content_type},
            expires=expires,
        )
        fields = {"key": key, "Content-Type": content_type, "token": token}
        return PostForm(url=f"{self.url_base}/upload", fields=fields)

    @_disk("start a multipart upload")
    def start_multipart(self, *, key: str, content_type: str) -> str:
        """Create the upload's folder, complete with its description, in one rename."""
        self._ready()
        check_key(key)
        upload_id = secrets.token_hex(16)
        staging = Path(tempfile.mkdtemp(dir=self.tmp, prefix="upload-"))
        with open(staging / "upload.json", "w") as handle:
            json.dump({"key": key, "content_type": content_type, "created": time.time()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        self.uploads.mkdir(exist_ok=True)
        os.rename(staging, self.uploads / upload_id)
        return upload_id

    def part_url(
        self, *, key: str, upload_id: str, part_number: int, size: int, expires: int
    ) -> str:
        """Sign a PUT of exactly `size` bytes as part `part_number` of the upload."""
        claims = {
            "op": "part", "key": check_key(key), "upload": _check_upload_id(upload_id),
            "part": part_number, "size": size,
        }
        token = self.sign(claims, expires=expires)
        return f"{self.url_base}/parts/{upload_id}/{part_number}?{urlencode({'token': token})}"

    def _upload_key(self, upload_id: str) -> str:
        """The key an upload was started for; NoSuchUpload when it is gone."""
        try:
            described = json.loads((self._upload_dir(upload_id) / "upload.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            raise StorageRejected(
                "NoSuchUpload: the multipart upload does not exist (completed or aborted)."
            ) from None
        return str(described["key"])

    def _stored_parts(self, upload_id: str) -> dict[int, list[tuple[str, Path]]]:
        """Every part file of the upload, by number (a crash may leave two for one number)."""
        found: dict[int, list[tuple[str, Path]]] = {}
        folder = self._upload_dir(upload_id)
        for entry in os.scandir(folder):
            match = PART_RE.fullmatch(entry.name)
            if match:
                found.setdefault(int(match.group(1)), []).append(
                    (match.group(2), folder / entry.name)
                )
        return found

    @_disk("list uploaded parts")
    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """Read the part files: number, ETag (the SHA-256 in the name) and size."""
        self._ready()
        if self._upload_key(upload_id) != key:
            raise StorageRejected("NoSuchUpload: the upload belongs to another key.")
        parts: list[StoredPart] = []
        for number, files in sorted(self._stored_parts(upload_id).items()):
            stats = []
            for digest, path in files:
                try:
                    stats.append((path.stat(), digest))
                except FileNotFoundError:  # replaced by a newer copy meanwhile
                    continue
            if stats:
                # Two files for one number only after a crash mid-replacement: the newest won.
                stat, digest = max(stats, key=lambda item: item[0].st_mtime_ns)
                parts.append(
                    StoredPart(part_number=number, etag=f'"{digest}"', size=stat.st_size)
                )
        return parts

    @_disk("complete the multipart upload")
    def complete_multipart(self, *, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Check the parts as S3 does, then concatenate them into the object, hashing."""
        self._ready()
        if self._upload_key(upload_id) != key:
            raise StorageRejected("NoSuchUpload: the upload belongs to another key.")
        if not parts:
            raise StorageRejected("MalformedXML: completing needs at least one part.")
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise StorageRejected("InvalidPartOrder: parts must be listed in ascending order.")
        held = self._stored_parts(upload_id)
        chosen: list[Path] = []
        for number, etag in parts:
            wanted = etag.strip('"').lower()
            path = next((p for digest, p in held.get(number, []) if digest == wanted), None)
            if path is None:
                raise StorageRejected(
                    f"InvalidPart: part {number} was not uploaded or its ETag does not match."
                )
            chosen.append(path)
        sizes = [path.stat().st_size for path in chosen]
        if any(size < MIN_PART_SIZE for size in sizes[:-1]):
            raise StorageRejected("EntityTooSmall: every part but the last needs 5 MiB or more.")
        destination = self.object_path(key)
        self.check_capacity(sum(sizes))  # the parts are copied into one file, then removed
        with _Incoming(self.tmp, limit=sum(sizes)) as incoming:
            for path in chosen:
                with open(path, "rb") as part:
                    incoming.copy_from(part)
            self._place_object(incoming, destination, expected=sum(sizes))
        self._remove_upload(upload_id)

    def _remove_upload(self, upload_id: str) -> None:
        """Move the upload's folder out of the way in one rename, then delete it.

        A part PUT racing the removal then fails cleanly (its folder is gone) instead of
        leaving a part behind in a half-deleted folder.
        """
        trash = self.tmp / f"trash-{upload_id}-{secrets.token_hex(4)}"
        try:
            os.rename(self._upload_dir(upload_id), trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    @_disk("abort the multipart upload")
    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        """Remove the upload's parts; an unknown upload (or one of another key) is ignored."""
        self._ready()
        try:
            if self._upload_key(upload_id) != key:
                return
        except StorageRejected:
            return
        self._remove_upload(upload_id)

    @_disk("reach its folder")
    def ping(self) -> None:
        """The store is there (its marker exists) and .tmp/ accepts new files."""
        self._ready()
        if not os.access(self.tmp, os.W_OK):
            raise StorageUnavailable(
                f"The storage service is unavailable: {self.tmp} is not writable."
            )

    @_disk("check the free space")
    def check_capacity(self, size: int) -> None:
        """Refuse (507) when storing `size` more bytes would eat into the free-space reserve."""
        free = shutil.disk_usage(self.root).free
        if free - size < self.free_space_reserve:
            raise InsufficientStorage(
                f"The server's disk is almost full: {free // 2**20} MiB free, and "
                f"{self.free_space_reserve // 2**20} MiB are kept in reserve. "
                "Free some space (or raise its size) and try again."
            )

    @_disk("look up an object")
    def object_size(self, key: str) -> int | None:
        """The object's file size, or None."""
        self._ready()
        try:
            stat = self.object_path(key).stat()
        except FileNotFoundError:
            return None
        return stat.st_size if S_ISREG(stat.st_mode) else None

    def _write_meta(self, path: Path, sha256: str, stat: os.stat_result) -> None:
        """Record the SHA-256 of the file at `path` as it is described by `stat`.

        Not fsynced on purpose: a sidecar lost or torn by a crash no longer matches its
        object and is simply recomputed (see `object_sha256`).
        """
        meta = {
            "sha256": sha256, "size": stat.st_size, "ino": stat.st_ino,
            "mtime_ns": stat.st_mtime_ns,
        }
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="meta-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(meta, handle)
        os.replace(name, self._meta_path(path))

    def _read_meta(self, path: Path, stat: os.stat_result) -> str | None:
        """The recorded SHA-256 when its sidecar describes exactly this file, else None."""
        try:
            meta = json.loads(self._meta_path(path).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        same = (meta.get("size"), meta.get("ino"), meta.get("mtime_ns")) == (
            stat.st_size, stat.st_ino, stat.st_mtime_ns
        )
        sha256 = meta.get("sha256")
        return sha256 if same and isinstance(sha256, str) else None

    @_disk("hash an object")
    def object_sha256(self, key: str) -> str | None:
        """The SHA-256 computed while receiving; recomputed if its sidecar is stale or lost."""
        self._ready()
        path = self.object_path(key)
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                known = self._read_meta(path, stat)
                if known is not None:
                    return known
                digest = hashlib.sha256()
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        self._write_meta(path, digest.hexdigest(), stat)
        return digest.hexdigest()

    @_disk("delete an object")
    def delete(self, key: str) -> None:
        """Remove the object and its sidecar; a missing object is fine."""
        self._ready()
        path = self.object_path(key)
        path.unlink(missing_ok=True)
        self._meta_path(path).unlink(missing_ok=True)

    def download_url(
        self, *, key: str, filename: str, content_type: str, inline: bool, expires: int
    ) -> str:
        """Sign a GET that presents the object under `filename` (inline or as attachment)."""
        claims = {
            "op": "get", "key": check_key(key), "name": filename, "type": content_type,
            "inline": inline,
        }
        token = self.sign(claims, expires=expires)
        return f"{self.url_base}/objects/{quote(key)}?{urlencode({'token': token})}"

    def origins(self) -> list[str]:
        """The separate origin the URLs are on, else none (they are the app's own, 'self')."""
        parts = urlsplit(self.url_base)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.netloc else []

    @_disk("prepare its folders")
    def setup(self, *, public_url: str = "", abort_after_days: int = 7) -> list[str]:
        """Create the folders and the marker; say what was done."""
        done: list[str] = []
        for folder in (self.root, self.uploads, self.tmp):
            if folder.is_dir():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            done.append(f"created folder {folder}")
        marker = self.root / MARKER
        if not marker.is_file():
            marker.write_text("MovieVault local store, layout 1\n")
            done.append(f"marked {self.root} as a MovieVault store")
        if not done:
            done.append(f"local store folder {self.root} is ready")
        return done

    @_disk("list objects")
    def list_objects(self) -> list[StoredObject]:
        """Walk the root, in key order; sidecars, hidden folders and other files are skipped."""
        self._ready()
        found: list[StoredObject] = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            relative = Path(folder).relative_to(self.root)
            for name in sorted(files):
                key = (relative / name).as_posix()
                if not KEY_RE.fullmatch(key):
                    continue
                try:
                    stat = os.stat(os.path.join(folder, name))
                except FileNotFoundError:  # deleted while listing
                    continue
                modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
                found.append(StoredObject(key=key, size=stat.st_size, modified=modified))
        return found

    @_disk("read an object")
    def open(self, key: str) -> BinaryIO:
        """Open the object's file for reading."""
        self._ready()
        try:
            return open(self.object_path(key), "rb")  # the caller closes it
        except FileNotFoundError:
            raise StorageRejected(f"NoSuchKey: there is no object {key}.") from None

    @_disk("store an object")
    def put(self, *, key: str, stream: BinaryIO, size: int, content_type: str) -> None:
        """Copy exactly `size` bytes from `stream` into the object, crash-safely."""
        self._ready()
        destination = self.object_path(key)
        with _Incoming(self.tmp, limit=size) as incoming:
            incoming.copy_from(stream, size + 1)
            stat = incoming.place(destination, expected=size)
            self._write_meta(destination, incoming.sha256.hexdigest(), stat)

    # --- what the app's storage views call ------------------------------------------------

    @_disk("receive a form upload")
    def receive_form(self, *, stream: BinaryIO, boundary: bytes) -> str:
        """Read a multipart/form-data body, file field last, into the signed object.

        The fields before the file are checked (signature, key, Content-Type) before a
        single byte of the file is written; the file is then streamed to .tmp/ in chunks and
        refused as soon as it passes the signed size. Fields after the file are ignored, as
        S3 does. Returns the key stored.
        """
        self._ready()
        decoder = MultipartDecoder(boundary, max_form_memory_size=CHUNK + MAX_FIELD_BYTES,
                                   max_parts=MAX_FORM_PARTS)
        fields: dict[str, bytearray] = {}
        current: bytearray | None = None
        incoming: _Incoming | None = None
        claims: dict[str, Any] = {}
        try:
            while True:
                try:
                    event = decoder.next_event()
                    if event is NEED_DATA:
                        decoder.receive_data(stream.read(CHUNK) or None)
                        continue
                except (ValueError, RequestEntityTooLarge) as error:
                    raise InvalidInput(f"MalformedPOSTRequest: {error}") from None
                if isinstance(event, Field):
                    current = fields.setdefault(event.name, bytearray())
                    current.clear()
                elif isinstance(event, File):
                    claims = self._check_form(fields)
                    self.check_capacity(claims["size"])
                    incoming = _Incoming(self.tmp, limit=claims["size"])
                elif isinstance(event, Data):
                    if incoming is not None:
                        incoming.write(event.data)
                        if not event.more_data:
                            break  # the file is the last field S3 reads
                    elif current is not None:
                        current.extend(event.data)
                        if sum(len(value) for value in fields.values()) > MAX_FIELD_BYTES:
                            raise InvalidInput("MalformedPOSTRequest: the fields are too large.")
                elif isinstance(event, Epilogue):
                    break
            if incoming is None:
                raise InvalidInput(
                    "MalformedPOSTRequest: the form has no file field (it must come last)."
                )
            destination = self.object_path(claims["key"])
            # Asked again now the bytes are here: the upload may have ended meanwhile.
            if self._may_write(claims["key"]):
                self._place_object(incoming, destination, expected=claims["size"])
            else:
                self._accept_identical(incoming, destination)
            return str(claims["key"])
        finally:
            if incoming is not None and not incoming.file.closed:
                incoming.discard()

    def _check_form(self, fields: dict[str, bytearray]) -> dict[str, Any]:
        """Verify the fields sent before the file against the signed token."""
        values = {name: bytes(value).decode("utf-8", "replace") for name, value in fields.items()}
        claims = self.verify(values.get("token"), "post")
        if values.get("key") != claims["key"]:
            raise AccessDenied("AccessDenied: the key field is not the one signed for.")
        if values.get("Content-Type") != claims["type"]:
            raise AccessDenied("AccessDenied: the Content-Type field is not the one signed for.")
        if not self._may_write(claims["key"]) and not self.object_path(claims["key"]).exists():
            raise _ended()  # refused before a byte of the file is read
        return claims

    def _may_write(self, key: str) -> bool:
        """Whether the key's upload is still pending (else the signature is a replay)."""
        return self.accepts_key is None or self.accepts_key(key)

    def _accept_identical(self, incoming: _Incoming, destination: Path) -> None:
        """Accept bytes that are already there (a second tab sending the same file, a client
        retrying after a lost answer); refuse anything else."""
        incoming.discard()
        if self.object_sha256(self._key_of(destination)) == incoming.sha256.hexdigest():
            return
        raise _ended()

    def _place_object(self, incoming: _Incoming, destination: Path, *, expected: int) -> None:
        """Put a received object in place, once: other bytes never replace what is there."""
        try:
            stat = incoming.place(destination, expected=expected, replace=False)
        except _ObjectExists:
            self._accept_identical(incoming, destination)
            return
        self._write_meta(destination, incoming.sha256.hexdigest(), stat)

    def _key_of(self, path: Path) -> str:
        """The key of the object stored at `path`."""
        return path.relative_to(self.root).as_posix()

    @_disk("receive a part")
    def receive_part(
        self,
        *,
        token: str | None,
        upload_id: str,
        part_number: int,
        stream: BinaryIO,
        length: int | None,
    ) -> str:
        """Stream one part's body into the upload's folder; return its ETag.

        S3's ETag is the part's MD5; any digest of the content serves the protocol (clients
        only echo it back), and SHA-256 is several times faster than MD5 where the CPU has
        SHA extensions.
        """
        self._ready()
        claims = self.verify(token, "part")
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise InvalidInput(f"InvalidArgument: part numbers run from 1 to {MAX_PART_NUMBER}.")
        if (claims["upload"], claims["part"]) != (upload_id, part_number):
            raise AccessDenied("AccessDenied: this signature is for another part.")
        size = int(claims["size"])
        if length is not None and length != size:
            raise InvalidInput(
                f"IncompleteBody: Content-Length is {length}; exactly {size} bytes were signed for."
            )
        self.check_capacity(size)
        folder = self._upload_dir(upload_id)
        try:
            if self._upload_key(upload_id) != claims["key"]:
                raise NoSuchUpload("NoSuchUpload: the upload belongs to another key.")
        except StorageRejected as error:
            raise NoSuchUpload(error.message) from None
        with _Incoming(self.tmp, limit=size) as incoming:
            incoming.copy_from(stream, size + 1)
            digest = incoming.sha256.hexdigest()
            try:
                # Never recreate the upload's folder: if it is gone, the upload is over.
                incoming.place(
                    folder / f"{part_number:05d}.{digest}", expected=size, make_parents=False
                )
            except FileNotFoundError:
                raise NoSuchUpload(
                    "NoSuchUpload: the multipart upload was completed or aborted meanwhile."
                ) from None
        # A part sent again with other bytes replaces the earlier one.
        for name in os.listdir(folder):
            match = PART_RE.fullmatch(name)
            if match and int(match.group(1)) == part_number and match.group(2) != digest:
                (folder / name).unlink(missing_ok=True)
        return f'"{digest}"'

    @_disk("read an object")
    def resolve_download(self, *, key: str, token: str | None) -> Download:
        """Check a GET's signature and return the file and how to present it."""
        self._ready()
        claims = self.verify(token, "get")
        if claims["key"] != key:
            raise AccessDenied("AccessDenied: this signature is for another object.")
        path = self.object_path(key)
        try:
            handle = open(path, "rb")  # the caller closes it
        except FileNotFoundError:
            raise NoSuchKey("NoSuchKey: the object no longer exists.") from None
        stat = os.fstat(handle.fileno())
        sha256 = self._read_meta(path, stat)
        etag = f'"{sha256}"' if sha256 else f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        # Decided now rather than when signing, so URLs signed by older releases obey too.
        presentation = present(
            filename=str(claims["name"]), content_type=str(claims["type"]),
            inline=bool(claims["inline"]),
        )
        return Download(
            file=handle, size=stat.st_size, mtime=stat.st_mtime, etag=etag,
            presentation=presentation,
        )

    # --- housekeeping ---------------------------------------------------------------------

    @_disk("clean up")
    def sweep(self, *, abort_after_days: int, now: float | None = None) -> list[str]:
        """Remove leftovers: .tmp/ files older than a day and uploads older than the window.

        The S3 equivalent is the bucket's lifecycle rule for incomplete multipart uploads.
        """
        self._ready()
        now = time.time() if now is None else now
        done: list[str] = []
        for entry in os.scandir(self.tmp):
            if entry.stat(follow_symlinks=False).st_mtime < now - TMP_MAX_AGE:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                done.append(f"removed leftover {entry.name} from .tmp/")
        if self.uploads.is_dir():
            for entry in os.scandir(self.uploads):
                if not UPLOAD_ID_RE.fullmatch(entry.name):
                    continue
                try:
                    created = json.loads(Path(entry.path, "upload.json").read_text())["created"]
                except (FileNotFoundError, ValueError, KeyError):
                    created = entry.stat().st_mtime
                if created < now - abort_after_days * 86400:
                    self._remove_upload(entry.name)
                    done.append(f"aborted multipart upload {entry.name}, older than "
                                f"{abort_after_days} days")
        return done
