"""How `movievault import` puts a file into the local store: a hard link, or a copy made
in the kernel into .tmp/, fsynced and renamed into place, so an interrupted import leaves
at most a temporary file (removed at once on Ctrl-C, by `sweep` after a crash).

The caller hashed the file; its sidecar records that hash, and the file must not have
changed in between (same size and modification time before and after the copy).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from movievault.errors import ImportRefused
from movievault.storage.disk import (
    Incoming,
    ObjectExists,
    file_sha256,
    fsync_dir,
    write_sidecar,
)


def _changed(source: str) -> ImportRefused:
    """The refusal of a file that changed after it was hashed."""
    return ImportRefused(f"{source} changed while it was being imported; run the import again.")


def _other_bytes(destination: Path) -> ImportRefused:
    """The refusal to replace an object (objects are written once)."""
    return ImportRefused(f"The store already holds other bytes at {destination}.")


def copy_in(*, source: str, destination: Path, tmp: Path, size: int, sha256: str) -> None:
    """Copy `source` (`size` bytes hashed to `sha256`) to `destination`, all or nothing."""
    try:
        handle = open(source, "rb")
    except OSError as error:
        raise ImportRefused(f"{source} cannot be read ({error.strerror or error}).") from None
    with handle:
        before = os.fstat(handle.fileno())
        if before.st_size != size:
            raise _changed(source)
        with Incoming(tmp, limit=size) as incoming:
            incoming.copy_file(handle, size)
            after = os.fstat(handle.fileno())
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise _changed(source)
            try:
                incoming.place(destination, expected=size, replace=False, sidecar=True,
                               sha256=sha256)
            except ObjectExists:
                # An import stopped after placing it and before recording it: same bytes?
                incoming.discard()
                if file_sha256(destination, tmp=tmp) != sha256:
                    raise _other_bytes(destination) from None


def link_in(
    *, source: str, destination: Path, root: Path, tmp: Path, size: int, sha256: str
) -> None:
    """Hard-link `source` at `destination`: no byte copied, no disk used."""
    if os.stat(source).st_size != size:
        raise _changed(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)
    except FileExistsError:
        # An import stopped after linking and before recording: fine if it is this file.
        if not os.path.samefile(source, destination):
            raise _other_bytes(destination) from None
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise ImportRefused(
                f"--link needs {source} on the same filesystem as the store ({root}), and it "
                "is on another filesystem; import it without --link to copy it."
            ) from None
        if error.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise ImportRefused(
                f"The filesystem of {root} refused a hard link to {source} "
                f"({error.strerror}); import it without --link to copy it."
            ) from None
        raise
    fsync_dir(destination.parent)
    write_sidecar(destination, sha256, destination.stat(), tmp=tmp)
