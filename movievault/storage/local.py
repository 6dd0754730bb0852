"""The local disk backend: objects under DATA_DIR, moved by the app's own signed URLs.

It hands browsers the same kinds of instructions as S3 (a form POST with the file last or
one PUT, part PUTs answering an `ETag`, GETs honouring `Range`), but its URLs are paths
under `/storage/` that this app serves. How they are signed is in `local_urls.py`, what
they do in `local_requests.py` (their Flask views in `movievault/storage_http.py`); this
module keeps the store on disk: its layout, what may be written where, and its clean-up.

Layout under the root (DATA_DIR); keys never start with a dot, so they cannot collide
with the store's own entries:

    <key>                   the bytes of each object, e.g. movies/3/<32 hex digits>
    <key>.json              its SHA-256, with the size, inode and mtime it describes
    .movievault-store       marks a prepared store (missing: the disk is not there)
    .uploads/<upload id>/   one multipart upload: upload.json and NNNNN.<sha256> part files
    .tmp/                   files being written, renamed into place once complete
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from movievault.errors import (
    AccessDenied,
    InvalidInput,
    NoSuchKey,
    NoSuchUpload,
    StorageRejected,
    StorageUnavailable,
)
from movievault.storage.base import Readable, Storage, StoredObject, StoredPart
from movievault.storage.disk import (
    Incoming,
    ObjectExists,
    OpenedFile,
    check_free_space,
    check_writable_folder,
    disk_errors,
    file_sha256,
    list_files,
    remove_older,
    sidecar_path,
)
from movievault.storage.local_import import copy_in, link_in
from movievault.storage.local_multipart import UploadFolder, check_upload_id, remove_expired
from movievault.storage.local_urls import KEY_RE, SignedUrls, check_key

MARKER = ".movievault-store"
#: Temporary files older than this are leftovers of a crash or a cut connection (`sweep`).
TMP_MAX_AGE = 24 * 3600


def _ended() -> AccessDenied:
    """The refusal of a write whose upload is over (a replayed or late signed URL)."""
    return AccessDenied(
        "AccessDenied: this upload is finished, cancelled or expired, and an object is never "
        "replaced: its URL can no longer write. Start the upload again."
    )


class LocalStorage(SignedUrls, Storage):
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
        upload_method: str = "post",
        checksums: bool = True,
    ):
        super().__init__(secret=secret, url_base=url_base)
        self.root = Path(root).absolute()
        # Asked before a form upload writes its key: is an upload of it still pending? The
        # catalogue knows; the app's wiring passes the question in (the store has no DB).
        self.accepts_key = accepts_key
        # Bytes of free disk that uploads may never take: the catalogue and the system
        # often live on the same disk, and a full disk breaks both.
        self.free_space_reserve = free_space_reserve
        # Form POSTs by default (they need no header but the form's); PUTs when asked, as
        # stores without POST Object do. Either way the store checks what it receives.
        self._upload_method = "put" if upload_method == "put" else "post"
        self._checksums = checksums

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

    def _upload(self, upload_id: str) -> UploadFolder:
        """The folder of one multipart upload."""
        return UploadFolder(self.uploads / check_upload_id(upload_id), self.tmp)

    def is_prepared(self) -> bool:
        """Whether `setup` has run on this root (False too when its disk is not there)."""
        return os.path.isfile(self.root / MARKER)

    def check_ready(self) -> None:
        """Raise StorageUnavailable unless the root is a prepared store (not an empty mount)."""
        if not self.is_prepared():
            raise StorageUnavailable(
                f"The storage service is unavailable: {self.root} is missing or is not a "
                "MovieVault store (is its disk mounted?). Restore it, or run "
                "`movievault setup-bucket` to start an empty one."
            )

    def describe(self) -> str:
        """Where the movies are: a folder."""
        return f"files on this disk under {self.root}"

    def notice(self) -> str | None:
        """Say so while the store's folder is missing (an unmounted or lost disk)."""
        if self.is_prepared():
            return None
        return (
            f"The local store {self.root} is missing: is its disk mounted? Uploads and "
            "downloads fail until it is back."
        )

    # --- the Storage interface ------------------------------------------------------------

    def upload_method(self) -> str:
        """Form POST, unless S3_UPLOAD_METHOD asks for PUT."""
        return self._upload_method

    def sha256_checksums(self) -> bool:
        """Whether uploads carry their SHA-256, which the store checks (S3_CHECKSUMS)."""
        return self._checksums

    @disk_errors("start a multipart upload")
    def start_multipart(self, *, key: str, content_type: str, checksums: bool = False) -> str:
        """Create the upload's folder, complete with its description, in one rename (each
        part's URL says whether its bytes are checked against a SHA-256)."""
        self.check_ready()
        return UploadFolder.create(
            self.uploads, self.tmp, key=check_key(key), content_type=content_type
        )

    def _upload_key(self, upload_id: str) -> str:
        """The key an upload was started for; NoSuchUpload when it is gone."""
        return self._upload(upload_id).key()

    @disk_errors("list uploaded parts")
    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """The parts received so far: number, ETag (their SHA-256) and size."""
        self.check_ready()
        if self._upload_key(upload_id) != key:
            raise NoSuchUpload("NoSuchUpload: the upload belongs to another key.")
        return self._upload(upload_id).parts()

    @disk_errors("complete the multipart upload")
    def complete_multipart(
        self, *, key: str, upload_id: str, parts: list[tuple[int, str]],
        checksums: Mapping[int, str] | None = None,
    ) -> None:
        """Check the parts as S3 does, then concatenate them into the object, hashing (their
        checksums were checked as they arrived)."""
        self.check_ready()
        if self._upload_key(upload_id) != key:
            raise NoSuchUpload("NoSuchUpload: the upload belongs to another key.")
        chosen = self._upload(upload_id).choose(parts)
        size = sum(part_size for _, part_size in chosen)
        self.check_capacity(size)  # the parts are copied into one file, then removed
        with Incoming(self.tmp, limit=size) as incoming:
            for path, _ in chosen:
                with open(path, "rb") as part:
                    incoming.copy_from(part)
            self._place_object(incoming, self.object_path(key), expected=size)
        self._remove_upload(upload_id)

    def _remove_upload(self, upload_id: str) -> None:
        """Remove an upload's folder and parts (one rename, so racing parts fail cleanly)."""
        self._upload(upload_id).remove()

    @disk_errors("abort the multipart upload")
    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        """Remove the upload's parts; an unknown upload (or one of another key) is ignored."""
        self.check_ready()
        try:
            if self._upload_key(upload_id) != key:
                return
        except StorageRejected:
            return
        self._remove_upload(upload_id)

    @disk_errors("reach its folder")
    def ping(self) -> None:
        """The store is there (its marker exists) and .tmp/ accepts new files."""
        self.check_ready()
        if not os.access(self.tmp, os.W_OK):
            raise StorageUnavailable(
                f"The storage service is unavailable: {self.tmp} is not writable."
            )

    def check_usable(self) -> None:
        """A prepared store must take new files; a missing one (an unmounted disk, with files
        in the catalogue) is not refused: every page says so until it is back."""
        if self.is_prepared():
            for folder in (self.root, self.uploads, self.tmp):
                check_writable_folder(folder)

    @disk_errors("check the free space")
    def check_capacity(self, size: int) -> None:
        """Refuse (507) when storing `size` more bytes would eat into the free-space reserve."""
        check_free_space(self.root, size=size, reserve=self.free_space_reserve)

    @disk_errors("look up an object")
    def object_size(self, key: str) -> int | None:
        """The object's file size, or None."""
        self.check_ready()
        try:
            stat = self.object_path(key).stat()
        except FileNotFoundError:
            return None
        return stat.st_size if S_ISREG(stat.st_mode) else None

    @disk_errors("hash an object")
    def object_sha256(self, key: str) -> str | None:
        """The SHA-256 computed while receiving; recomputed if its sidecar is stale or lost."""
        self.check_ready()
        return file_sha256(self.object_path(key), tmp=self.tmp)

    @disk_errors("delete an object")
    def delete(self, key: str) -> None:
        """Remove the object and its sidecar; a missing object is fine."""
        self.check_ready()
        path = self.object_path(key)
        path.unlink(missing_ok=True)
        sidecar_path(path).unlink(missing_ok=True)

    @disk_errors("prepare its folders")
    def setup(self, *, public_url: str = "", abort_after_days: int = 7) -> list[str]:
        """Create the folders and the marker; say what was done."""
        done: list[str] = []
        for folder in (self.root, self.uploads, self.tmp):
            existed = folder.is_dir()
            check_writable_folder(folder)  # creates it, or says why it cannot
            if not existed:
                done.append(f"created folder {folder}")
        marker = self.root / MARKER
        if not marker.is_file():
            marker.write_text("MovieVault local store, layout 1\n")
            done.append(f"marked {self.root} as a MovieVault store")
        if not done:
            done.append(f"local store folder {self.root} is ready")
        return done

    @disk_errors("list objects")
    def list_objects(self) -> list[StoredObject]:
        """Walk the root, in key order; sidecars, hidden folders and other files are skipped."""
        self.check_ready()
        return [
            StoredObject(
                key=key, size=stat.st_size,
                modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            )
            for key, stat in list_files(self.root, accept=KEY_RE.fullmatch)
        ]

    @disk_errors("read an object")
    def open(self, key: str) -> BinaryIO:
        """Open the object's file for reading."""
        self.check_ready()
        try:
            return open(self.object_path(key), "rb")  # the caller closes it
        except FileNotFoundError:
            raise StorageRejected(f"NoSuchKey: there is no object {key}.") from None

    @disk_errors("read part of an object")
    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Seek and read: `length` bytes from `start`, fewer at the end of the file."""
        self.check_ready()
        if start < 0 or length < 0:
            raise InvalidInput("A range starts at 0 or later and has a length of 0 or more.")
        try:
            with open(self.object_path(key), "rb") as file:
                file.seek(start)
                return file.read(length)
        except FileNotFoundError:
            raise NoSuchKey(f"NoSuchKey: there is no object {key}.") from None

    @disk_errors("store an object")
    def put(self, *, key: str, stream: Readable, size: int, content_type: str) -> None:
        """Copy exactly `size` bytes from `stream` into the object, crash-safely."""
        self.check_ready()
        destination = self.object_path(key)
        with Incoming(self.tmp, limit=size) as incoming:
            incoming.copy_from(stream, size + 1)
            incoming.place(destination, expected=size, sidecar=True)

    @disk_errors("import a file")
    def import_file(
        self, *, key: str, path: str, size: int, content_type: str, sha256: str,
        link: bool = False,
    ) -> None:
        """Hard-link the file into place, or copy it crash-safely (see local_import.py)."""
        self.check_ready()
        destination = self.object_path(key)
        if link:
            link_in(source=path, destination=destination, root=self.root, tmp=self.tmp,
                    size=size, sha256=sha256)
        else:
            self.check_capacity(size)
            copy_in(source=path, destination=destination, tmp=self.tmp, size=size,
                    sha256=sha256)

    # --- what the store's signed URLs write and read (see local_requests.py) ---------------

    def check_writable(self, key: str) -> None:
        """Refuse (AccessDenied) a signed write of `key` whose upload is over, unread."""
        if not self._may_write(key) and not self.object_path(key).exists():
            raise _ended()

    @disk_errors("receive an upload")
    def write_upload(
        self, *, key: str, size: int, stream: Readable, sha256: str | None = None
    ) -> None:
        """Store the `size` bytes `stream` yields at `key`, once: other bytes never replace
        what is there (a second tab sending the same file is accepted). Bytes whose SHA-256
        is not `sha256` (when given) are refused, and nothing is written."""
        self.check_ready()
        self.check_capacity(size)
        destination = self.object_path(key)
        with Incoming(self.tmp, limit=size) as incoming:
            incoming.copy_from(stream)
            if sha256 is not None:
                incoming.verify(expected=size, sha256=sha256)
            # Asked again now the bytes are here: the upload may have ended meanwhile.
            if self._may_write(key):
                self._place_object(incoming, destination, expected=size)
            else:
                self._accept_identical(incoming, destination)

    def _may_write(self, key: str) -> bool:
        """Whether the key's upload is still pending (else the signature is a replay)."""
        return self.accepts_key is None or self.accepts_key(key)

    def _accept_identical(self, incoming: Incoming, destination: Path) -> None:
        """Accept bytes that are already there (a second tab sending the same file, a client
        retrying after a lost answer); refuse anything else."""
        incoming.discard()
        if file_sha256(destination, tmp=self.tmp) == incoming.sha256.hexdigest():
            return
        raise _ended()

    def _place_object(self, incoming: Incoming, destination: Path, *, expected: int) -> None:
        """Put a received object in place, once: other bytes never replace what is there."""
        try:
            incoming.place(destination, expected=expected, replace=False, sidecar=True)
        except ObjectExists:
            self._accept_identical(incoming, destination)

    @disk_errors("receive a part")
    def write_part(
        self, *, key: str, upload_id: str, part_number: int, size: int, stream: Readable,
        sha256: str | None = None,
    ) -> str:
        """Store exactly `size` bytes from `stream` (of this SHA-256, if given) as a part of
        the upload; return its ETag."""
        self.check_ready()
        self.check_capacity(size)
        upload = self._upload(upload_id)
        try:
            started_for = self._upload_key(upload_id)
        except StorageRejected as error:
            raise NoSuchUpload(error.message) from None
        if started_for != key:
            raise NoSuchUpload("NoSuchUpload: the upload belongs to another key.")
        return upload.store_part(part_number=part_number, size=size, stream=stream, sha256=sha256)

    @disk_errors("read an object")
    def open_object(self, key: str) -> OpenedFile:
        """Open the object for a GET, with its size, mtime and ETag; NoSuchKey when gone."""
        self.check_ready()
        try:
            return OpenedFile.open(self.object_path(key))  # the caller closes it
        except FileNotFoundError:
            raise NoSuchKey("NoSuchKey: the object no longer exists.") from None

    # --- housekeeping ---------------------------------------------------------------------

    @disk_errors("clean up")
    def sweep(self, *, abort_after_days: int, now: float | None = None) -> list[str]:
        """Remove leftovers: .tmp/ files older than a day and uploads older than the window.

        The S3 equivalent is the bucket's lifecycle rule for incomplete multipart uploads.
        """
        self.check_ready()
        now = time.time() if now is None else now
        stale = remove_older(self.tmp, before=now - TMP_MAX_AGE)
        expired = remove_expired(self.uploads, self.tmp, before=now - abort_after_days * 86400)
        return [f"removed leftover {name} from .tmp/" for name in stale] + [
            f"aborted multipart upload {upload_id}, older than {abort_after_days} days"
            for upload_id in expired
        ]
