"""Multipart uploads in the local store: one folder per upload, holding its parts.

    .uploads/<upload id>/upload.json      the key, Content-Type and start time
    .uploads/<upload id>/NNNNN.<sha256>   each part: its number and the SHA-256 of its bytes

A folder appears complete (it is written in .tmp/, then renamed in) and goes in one
rename out of .uploads/, so a part racing a completion or an abort finds either the
whole upload or none of it, never a half-deleted folder to leave a part in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from movievault.errors import NoSuchUpload, StorageRejected
from movievault.storage.base import MIN_PART_SIZE, Readable, StoredPart
from movievault.storage.disk import Incoming

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")
PART_RE = re.compile(r"(\d{5})\.([0-9a-f]{64})")


def check_upload_id(upload_id: str) -> str:
    """Return `upload_id` when it has the form this store creates, else refuse it."""
    if not isinstance(upload_id, str) or not UPLOAD_ID_RE.fullmatch(upload_id):
        raise StorageRejected("NoSuchUpload: the multipart upload id is not valid.")
    return upload_id


@dataclass(frozen=True)
class UploadFolder:
    """The folder of one multipart upload (`path`), and where its files are written first."""

    path: Path
    tmp: Path

    @staticmethod
    def create(uploads: Path, tmp: Path, *, key: str, content_type: str) -> str:
        """Create an upload's folder, complete with its description; return its id."""
        upload_id = secrets.token_hex(16)
        staging = Path(tempfile.mkdtemp(dir=tmp, prefix="upload-"))
        with open(staging / "upload.json", "w") as handle:
            json.dump({"key": key, "content_type": content_type, "created": time.time()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        uploads.mkdir(exist_ok=True)
        os.rename(staging, uploads / upload_id)
        return upload_id

    def key(self) -> str:
        """The key the upload was started for; NoSuchUpload when it is gone."""
        try:
            described = json.loads((self.path / "upload.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            raise NoSuchUpload(
                "NoSuchUpload: the multipart upload does not exist (completed or aborted)."
            ) from None
        return str(described["key"])

    def created(self) -> float:
        """When the upload began (its folder's mtime if the description is unreadable)."""
        try:
            return float(json.loads((self.path / "upload.json").read_text())["created"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return self.path.stat().st_mtime

    def _part_files(self) -> dict[int, list[tuple[str, Path]]]:
        """Every part file, by number (a crash may leave two for one number)."""
        found: dict[int, list[tuple[str, Path]]] = {}
        for entry in os.scandir(self.path):
            match = PART_RE.fullmatch(entry.name)
            if match:
                found.setdefault(int(match.group(1)), []).append(
                    (match.group(2), self.path / entry.name)
                )
        return found

    def parts(self) -> list[StoredPart]:
        """Read the part files: number, ETag (the SHA-256 in the name) and size."""
        parts: list[StoredPart] = []
        for number, files in sorted(self._part_files().items()):
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

    def choose(self, parts: list[tuple[int, str]]) -> list[tuple[Path, int]]:
        """The files and sizes of the listed `(number, etag)` parts, checked as S3 does."""
        if not parts:
            raise StorageRejected("MalformedXML: completing needs at least one part.")
        numbers = [number for number, _ in parts]
        if numbers != sorted(set(numbers)):
            raise StorageRejected("InvalidPartOrder: parts must be listed in ascending order.")
        held = self._part_files()
        chosen: list[tuple[Path, int]] = []
        for number, etag in parts:
            wanted = etag.strip('"').lower()
            path = next((p for digest, p in held.get(number, []) if digest == wanted), None)
            if path is None:
                raise StorageRejected(
                    f"InvalidPart: part {number} was not uploaded or its ETag does not match."
                )
            chosen.append((path, path.stat().st_size))
        if any(size < MIN_PART_SIZE for _, size in chosen[:-1]):
            raise StorageRejected("EntityTooSmall: every part but the last needs 5 MiB or more.")
        return chosen

    def store_part(
        self, *, part_number: int, size: int, stream: Readable, sha256: str | None = None
    ) -> str:
        """Write exactly `size` bytes from `stream` as part `part_number`; return its ETag.

        Bytes whose SHA-256 is not `sha256` (when given) are refused and nothing is written.
        S3's ETag is the part's MD5; any digest of the content serves the protocol (clients
        only echo it back), and SHA-256 is several times faster than MD5 where the CPU has
        SHA extensions.
        """
        with Incoming(self.tmp, limit=size) as incoming:
            incoming.copy_from(stream, size + 1)
            incoming.verify(expected=size, sha256=sha256)
            digest = incoming.sha256.hexdigest()
            try:
                # Never recreate the folder: if it is gone, the upload is over.
                incoming.place(
                    self.path / f"{part_number:05d}.{digest}", expected=size,
                    make_parents=False,
                )
            except FileNotFoundError:
                raise NoSuchUpload(
                    "NoSuchUpload: the multipart upload was completed or aborted meanwhile."
                ) from None
        # A part sent again with other bytes replaces the earlier one.
        for name in os.listdir(self.path):
            match = PART_RE.fullmatch(name)
            if match and int(match.group(1)) == part_number and match.group(2) != digest:
                (self.path / name).unlink(missing_ok=True)
        return f'"{digest}"'

    def remove(self) -> None:
        """Move the folder out of the way in one rename, then delete it (gone: nothing to do)."""
        trash = self.tmp / f"trash-{self.path.name}-{secrets.token_hex(4)}"
        try:
            os.rename(self.path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)


def remove_expired(uploads: Path, tmp: Path, *, before: float) -> list[str]:
    """Remove the uploads begun before `before`; return their ids."""
    if not uploads.is_dir():
        return []
    removed: list[str] = []
    for entry in os.scandir(uploads):
        if not UPLOAD_ID_RE.fullmatch(entry.name):
            continue
        upload = UploadFolder(Path(entry.path), tmp)
        if upload.created() < before:
            upload.remove()
            removed.append(entry.name)
    return removed
