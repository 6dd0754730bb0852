"""Moving a library from one store to another (the local disk to S3), resumably."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from movievault import claims, posters, subtitles
from movievault.errors import MovieVaultError, StorageRejected
from movievault.models import PendingUpload, StoredFile
from movievault.storage import Readable, Storage

#: Files larger than this report their progress while they copy, not only once copied.
PROGRESS_STEP = 256 * 1024 * 1024


class CopyFailed(MovieVaultError):
    """One object could not be copied whole (missing, another size, a short copy)."""


@dataclass
class MigrationReport:
    """What a migration did: objects copied or already there, bytes sent, and failures."""

    total: int = 0
    copied: int = 0
    present: int = 0
    bytes_copied: int = 0
    posters: int = 0  # posters copied (or already there)
    forgotten_uploads: int = 0
    failures: list[str] = field(default_factory=list)


class _CountingReader:
    """Wraps a stream to report the bytes read so far every PROGRESS_STEP bytes."""

    def __init__(self, stream: Readable, report: Callable[[int], None]) -> None:
        self.stream = stream
        self.report = report
        self.done = 0
        self.next_report = PROGRESS_STEP

    def read(self, size: int = -1) -> bytes:
        """Read from the wrapped stream, counting."""
        data = self.stream.read(size)
        self.done += len(data)
        if self.done >= self.next_report:
            self.report(self.done)
            self.next_report = self.done + PROGRESS_STEP
        return data


def _size_text(size: int) -> str:
    """A byte count in kB, MB or GB, for progress lines."""
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _copy_object(
    *, key: str, size: int, content_type: str, source: Storage, target: Storage,
    say: Callable[[str], None],
) -> bool:
    """Copy one object unless the target already holds it whole; True when bytes moved."""
    if target.object_size(key) == size:
        return False
    held = source.object_size(key)
    if held is None:
        raise CopyFailed(f"the object {key} is missing from the source store")
    if held != size:
        raise CopyFailed(f"the source object {key} holds {held} bytes; the catalogue says {size}")

    def progress(done: int) -> None:
        say(f"    {_size_text(done)} of {_size_text(size)}")

    with closing(source.open(key)) as stream:
        reader = _CountingReader(stream, progress)
        target.put(key=key, stream=reader, size=size, content_type=content_type)
    copied = target.object_size(key)
    if copied != size:
        raise CopyFailed(f"the copy of {key} holds {copied} bytes instead of {size}")
    return True


def _copy_poster(
    stored: StoredFile, *, session: Session, source: Storage, target: Storage,
    say: Callable[[str], None],
) -> None:
    """Copy a file's poster, if it has one; forget a poster the source has lost."""
    key = stored.poster_key
    if key is None:
        return
    # The catalogue does not record a poster's size: the source's is the one to copy.
    size = source.object_size(key)
    if size is None:
        if target.object_size(key) is not None:
            return  # copied by an earlier run, and removed from the source since
        # Not worth stopping for: the file is whole, and a new poster can be made.
        say(f"    its poster {key} is missing; the movie has no poster now")
        stored.poster_key = None
        session.add(stored)
        session.commit()
        return
    _copy_object(
        key=key, size=size, content_type=posters.CONTENT_TYPE, source=source, target=target,
        say=say,
    )


def _copy_subtitles(
    stored: StoredFile, *, source: Storage, target: Storage, say: Callable[[str], None]
) -> None:
    """Copy a file's subtitles (each one's original and its WebVTT)."""
    for subtitle in stored.subtitles:
        for key, size, content_type in (
            (subtitle.source_key, subtitle.source_size, "application/octet-stream"),
            (subtitle.vtt_key, subtitle.vtt_size, subtitles.VTT_TYPE),
        ):
            _copy_object(
                key=key, size=size, content_type=content_type, source=source, target=target,
                say=say,
            )


def _copy_one(
    stored: StoredFile, *, session: Session, source: Storage, target: Storage,
    say: Callable[[str], None],
) -> bool:
    """Copy a file's movie, then its poster and subtitles; True when the movie's bytes
    moved."""
    moved = _copy_object(
        key=stored.key, size=stored.size, content_type=stored.content_type,
        source=source, target=target, say=say,
    )
    _copy_poster(stored, session=session, source=source, target=target, say=say)
    _copy_subtitles(stored, source=source, target=target, say=say)
    return moved


def migrate_objects(
    *, session: Session, source: Storage, target: Storage, say: Callable[[str], None]
) -> MigrationReport:
    """Copy every catalogued object from `source` to `target` under the same key.

    Each file's poster and subtitles go with it. Objects the target already holds with the
    right size are skipped, so running it again after an interruption resumes where it
    stopped. Each copy streams and is checked by size. Once every object is there, pending
    uploads are forgotten (and their parts freed in `source`): they were begun on the old
    store and cannot be resumed on the new one.
    """
    files = session.exec(select(StoredFile).order_by(col(StoredFile.id))).all()
    report = MigrationReport(total=len(files))
    for number, stored in enumerate(files, start=1):
        label = f"[{number}/{report.total}] {stored.name} ({_size_text(stored.size)})"
        try:
            moved = _copy_one(stored, session=session, source=source, target=target, say=say)
        except (CopyFailed, StorageRejected) as error:
            # One bad object must not stop the rest; a store that is down (503) does.
            report.failures.append(f"{stored.name} (id {stored.id}): {error.message}")
            say(f"{label}: FAILED, {error.message}")
            continue
        if stored.poster_key is not None:
            report.posters += 1
        if moved:
            report.copied += 1
            report.bytes_copied += stored.size
            say(f"{label}: copied")
        else:
            report.present += 1
            say(f"{label}: already there")
    if not report.failures:
        for upload in session.exec(select(PendingUpload)).all():
            claims.discard(session=session, storage=source, upload=upload, claim=None)
            report.forgotten_uploads += 1
    return report
