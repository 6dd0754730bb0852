"""Housekeeping: expired uploads, and objects (movies, posters, subtitles) that no row refers
to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm.exc import ObjectDeletedError
from sqlmodel import Session, col, select

from movievault import claims, posters, subtitles, uploads
from movievault.errors import MovieVaultError
from movievault.models import PendingUpload, StoredFile, Subtitle, utcnow
from movievault.storage import Storage

#: Objects no catalogue row refers to are removed by `collect_garbage` once this old.
ORPHAN_GRACE = timedelta(hours=24)
#: Where the app's own objects live; anything else in the bucket is not gc's to judge.
PREFIXES = (uploads.OBJECT_PREFIX, posters.PREFIX, subtitles.PREFIX)


@dataclass
class GarbageReport:
    """What `collect_garbage` removed, and what it could not."""

    expired_uploads: int = 0
    orphans: int = 0
    failures: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)  # what the store's own sweep said


def housekeeping(
    *, session: Session, storage: Storage, abort_after_days: int, now: datetime | None = None
) -> GarbageReport:
    """What `movievault gc` does (and the Lambda function's scheduled "gc"): expired uploads
    and orphans (`collect_garbage`), then the store's own leftovers (the local twin of the
    bucket's lifecycle rule)."""
    report = collect_garbage(session=session, storage=storage, now=now)
    try:
        report.swept = storage.sweep(abort_after_days=abort_after_days)
    except MovieVaultError as error:
        report.failures.append(f"the store's leftovers: {error.message}")
    return report


def collect_garbage(
    *, session: Session, storage: Storage, now: datetime | None = None
) -> GarbageReport:
    """Discard expired uploads, then objects no file or upload refers to (after a grace).

    Orphans come from a client that wrote with a signed URL and never completed, or from
    a crash between the store and the catalogue (a poster stored by a probe that never
    recorded it, an old poster whose removal failed). A file's movie and poster keys, its
    subtitles' original and WebVTT keys, and a pending upload's key are known objects.
    The store is listed before the catalogue is read: an object recorded meanwhile is
    then found in the catalogue, never deleted.
    """
    now = now or utcnow()
    report = GarbageReport()
    expired = session.exec(select(PendingUpload).where(col(PendingUpload.expires_at) < now)).all()
    # Their ids, read now: a failure's rollback expires the uploads still to come, and one
    # completed or cancelled meanwhile can no longer be read.
    for upload, upload_id in [(upload, upload.id) for upload in expired]:
        try:
            # Claimed only if still expired: a client may have revived it since the look-up.
            if claims.claim_and_discard(
                session=session, storage=storage, upload=upload, expired_at=now
            ):
                report.expired_uploads += 1
        except ObjectDeletedError:
            session.rollback()  # completed or cancelled since the look-up: nothing to sweep
        except Exception as error:  # one bad upload must not stop the sweep
            session.rollback()
            report.failures.append(f"{upload_id}: {error}")
    try:
        candidates = [
            item.key for item in storage.iter_objects()
            if item.key.startswith(PREFIXES) and item.modified < now - ORPHAN_GRACE
        ]
    except MovieVaultError as error:
        report.failures.append(f"listing the store: {error.message}")
        return report
    for start in range(0, len(candidates), 500):  # SQLite's bound-parameter limit
        batch = candidates[start : start + 500]
        known = set(session.exec(select(StoredFile.key).where(col(StoredFile.key).in_(batch))))
        known |= {
            key for key in session.exec(
                select(StoredFile.poster_key).where(col(StoredFile.poster_key).in_(batch))
            ) if key is not None
        }
        known |= set(
            session.exec(select(PendingUpload.key).where(col(PendingUpload.key).in_(batch)))
        )
        for column in (Subtitle.source_key, Subtitle.vtt_key):
            known |= set(session.exec(select(column).where(col(column).in_(batch))))
        for key in batch:
            if key in known:
                continue
            try:
                storage.delete(key)
                report.orphans += 1
            except MovieVaultError as error:
                report.failures.append(f"{key}: {error.message}")
    return report
