"""The local store's files: received into a temporary file, renamed into place once
complete, never replacing an object, with their SHA-256 kept beside them; and what a
failing disk means to the rest of the app.

Nothing here knows keys or the store's layout; `local.py` says which folder is which.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from movievault.errors import (
    InsufficientStorage,
    InvalidInput,
    MovieVaultError,
    StorageUnavailable,
)
from movievault.storage.base import Readable, translate_errors

#: Bytes read or written at a time: large enough for speed, small enough to never matter.
CHUNK = 1024 * 1024


def _disk_meaning(error: Exception, action: str) -> MovieVaultError | None:
    """What a disk error means: a full, read-only or vanished disk is the 503 the API promises."""
    if not isinstance(error, OSError):
        return None
    return StorageUnavailable(
        f"The storage service is unavailable: the local store could not {action} "
        f"({error.strerror or error}). Check the disk and try again."
    )


#: Decorates what touches the disk: `@disk_errors("read an object")`.
disk_errors = translate_errors(_disk_meaning)


class ObjectExists(Exception):
    """The destination of a write-once placement is already there."""


def check_writable_folder(folder: Path) -> None:
    """Create `folder` if missing and write a file in it, or raise StorageUnavailable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A real write: permission bits alone miss read-only disks (and bind no root).
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise StorageUnavailable(
            f"MovieVault cannot write to its data folder {folder} ({error.strerror or error}): "
            "fix its permissions, or set MOVIEVAULT_DATA_DIR to another folder."
        ) from error


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_new(source: Path, destination: Path) -> None:
    """Move `source` to `destination` unless something is there already (ObjectExists).

    A hard link is created only if the name is free, atomically; on filesystems without
    hard links (FAT, exFAT) the check and the rename are two steps, microseconds apart.
    """
    try:
        os.link(source, destination)
    except FileExistsError:
        raise ObjectExists(str(destination)) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.lexists(destination):
            raise ObjectExists(str(destination)) from None
        os.replace(source, destination)
        return
    os.unlink(source)


class Incoming:
    """A temporary file that receives bytes, hashes them and caps their number.

    Nothing appears under a real name until `place` renames the finished, flushed file, so
    a crash leaves at most a stray temporary file, never a half-written object or part.
    """

    def __init__(self, tmp: Path, *, limit: int) -> None:
        fd, name = tempfile.mkstemp(dir=tmp, prefix="in-", suffix=".tmp")
        self.tmp = tmp
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.copied_unhashed = False  # `copy_file` wrote bytes that `sha256` has not seen

    def write(self, data: bytes | memoryview) -> None:
        """Append `data`; refuse as soon as the total would pass the limit."""
        if self.size + len(data) > self.limit:
            raise InvalidInput(
                f"EntityTooLarge: the body is larger than the {self.limit} bytes signed for."
            )
        self.file.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def copy_from(self, stream: Readable, length: int | None = None) -> None:
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

    def copy_file(self, source: BinaryIO, size: int) -> None:
        """Copy `size` bytes of an open file in the kernel (no hashing: the caller hashed
        it), a block at a time so an interrupt is never far away."""
        self.file.flush()
        out, done = self.file.fileno(), 0
        while done < size:
            try:
                count = os.copy_file_range(source.fileno(), out, min(64 * CHUNK, size - done))
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP,
                                       errno.EINVAL):
                    raise
                count = os.sendfile(out, source.fileno(), None, min(64 * CHUNK, size - done))
            if count == 0:
                break  # the file shrank: `place` refuses the size
            done += count
        self.file.seek(0, os.SEEK_END)
        self.size = done
        self.copied_unhashed = True

    def verify(self, *, expected: int, sha256: str | None) -> None:
        """Refuse what was received unless it is `expected` bytes with this SHA-256 (hex),
        as S3 refuses a body that differs from its signed length or checksum header."""
        if self.size != expected:
            raise InvalidInput(
                f"IncompleteBody: received {self.size} bytes; exactly {expected} bytes "
                "were signed for."
            )
        if sha256 is not None and self.sha256.hexdigest() != sha256:
            raise InvalidInput(
                "BadDigest: the x-amz-checksum-sha256 you specified did not match the "
                "calculated checksum; nothing was stored."
            )

    def place(
        self, destination: Path, *, expected: int, make_parents: bool = True,
        replace: bool = True, sidecar: bool = False, sha256: str | None = None,
    ) -> None:
        """Check the size, flush to disk and rename into place (with a sidecar if asked).

        With `replace=False` an existing destination is left alone and `ObjectExists`
        raised: objects are written once, so no signed URL can change a recorded movie.
        """
        self.verify(expected=expected, sha256=None)
        self.file.flush()
        os.fsync(self.file.fileno())
        stat = os.fstat(self.file.fileno())
        self.file.close()
        if make_parents:
            destination.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            os.replace(self.path, destination)
        else:
            link_new(self.path, destination)
        fsync_dir(destination.parent)
        if sidecar:
            write_sidecar(destination, sha256 or self.sha256.hexdigest(), stat, tmp=self.tmp)

    def discard(self) -> None:
        """Remove the temporary file (after a failure)."""
        self.file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None or not self.file.closed:
            self.discard()


def sidecar_path(path: Path) -> Path:
    """The sidecar holding the SHA-256 of the file at `path`."""
    return path.with_name(path.name + ".json")


def write_sidecar(path: Path, sha256: str, stat: os.stat_result, *, tmp: Path) -> None:
    """Record the SHA-256 of the file at `path` as it is described by `stat`.

    Not fsynced on purpose: a sidecar lost or torn by a crash no longer matches its
    file and is simply recomputed (see LocalStorage.object_sha256).
    """
    meta = {
        "sha256": sha256, "size": stat.st_size, "ino": stat.st_ino,
        "mtime_ns": stat.st_mtime_ns,
    }
    fd, name = tempfile.mkstemp(dir=tmp, prefix="meta-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(meta, handle)
    os.replace(name, sidecar_path(path))


def read_sidecar(path: Path, stat: os.stat_result) -> str | None:
    """The recorded SHA-256 when its sidecar describes exactly this file, else None."""
    try:
        meta = json.loads(sidecar_path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    same = (meta.get("size"), meta.get("ino"), meta.get("mtime_ns")) == (
        stat.st_size, stat.st_ino, stat.st_mtime_ns
    )
    sha256 = meta.get("sha256")
    return sha256 if same and isinstance(sha256, str) else None


def file_sha256(path: Path, *, tmp: Path) -> str | None:
    """The SHA-256 of the file at `path` (None if there is none), from its sidecar when that
    still describes it, else computed again and recorded."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            known = read_sidecar(path, stat)
            if known is not None:
                return known
            digest = hashlib.sha256()
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    write_sidecar(path, digest.hexdigest(), stat, tmp=tmp)
    return digest.hexdigest()


@dataclass(frozen=True)
class OpenedFile:
    """A file opened for reading (the caller closes `file`), with what validates it."""

    file: BinaryIO
    size: int
    mtime: float
    etag: str

    @classmethod
    def open(cls, path: Path) -> OpenedFile:
        """Open `path`; its ETag is its SHA-256 when known, else its size and mtime."""
        handle = open(path, "rb")
        stat = os.fstat(handle.fileno())
        sha256 = read_sidecar(path, stat)
        etag = f'"{sha256}"' if sha256 else f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        return cls(file=handle, size=stat.st_size, mtime=stat.st_mtime, etag=etag)


def list_files(
    root: Path, *, accept: Callable[[str], object]
) -> list[tuple[str, os.stat_result]]:
    """The files under `root` whose relative path `accept`s, in order, with their stat.

    Hidden folders are skipped.
    """
    found: list[tuple[str, os.stat_result]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        relative = Path(folder).relative_to(root)
        for name in sorted(files):
            if not accept((relative / name).as_posix()):
                continue
            try:
                stat = os.stat(os.path.join(folder, name))
            except FileNotFoundError:  # deleted while listing
                continue
            found.append(((relative / name).as_posix(), stat))
    return found


def remove_older(folder: Path, *, before: float) -> list[str]:
    """Remove what in `folder` was last changed before `before`; return the names removed."""
    removed: list[str] = []
    for entry in os.scandir(folder):
        if entry.stat(follow_symlinks=False).st_mtime < before:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
    return removed


def check_free_space(folder: Path, *, size: int, reserve: int) -> None:
    """Refuse (InsufficientStorage) when `size` more bytes would leave less than `reserve`
    free on the disk of `folder`."""
    free = shutil.disk_usage(folder).free
    if free - size < reserve:
        raise InsufficientStorage(
            f"The server's disk is almost full: {free // 2**20} MiB free, and "
            f"{reserve // 2**20} MiB are kept in reserve. "
            "Free some space (or raise its size) and try again."
        )
