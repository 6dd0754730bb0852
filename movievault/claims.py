"""Claims on a pending upload: one request at a time may complete or discard it.

Complete, cancel, and the discards in create and gc all claim the upload in the database
before touching the store; a cancel racing a complete would otherwise delete the bytes of
a file the complete is recording. And the local store asks `accepts_object_write` before
a signed URL writes, so a replayed URL cannot write once its upload is over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, delete, or_, select

from movievault.models import PendingUpload, StoredFile, Subtitle, utcnow
from movievault.storage import Storage

log = logging.getLogger(__name__)

# A claim (complete or discard under way) that has not ended in this long is taken to
# have died with its worker.
COMPLETION_LEASE = timedelta(minutes=10)
#: How often a complete renews its claim while the store works: a few renewals may fail
#: (the database restarting) before the lease runs out.
RENEW_EVERY = COMPLETION_LEASE / 4


def _in_the_catalogue(session: Session, key: str) -> bool:
    """Whether a recorded movie or subtitle keeps its bytes under `key`."""
    return any(
        session.exec(select(column).where(column == key).limit(1)).first() is not None
        for column in (col(StoredFile.key), col(Subtitle.source_key))
    )


def discard(*, session: Session, storage: Storage, upload: PendingUpload) -> None:
    """Free what the store holds for a pending upload, then forget the upload.

    The caller holds the upload's claim (see `_claim`), so no `complete` can record the
    file while its bytes are being removed.
    """
    if upload.method == "multipart" and upload.multipart_id:
        storage.abort_multipart(key=upload.key, upload_id=upload.multipart_id)
    # An upload sent whole may already have stored its object; a failed multipart never
    # does. Unless a complete that outlived its lease has recorded it meanwhile: its bytes
    # are the movie's then.
    if not _in_the_catalogue(session, upload.key):
        storage.delete(upload.key)
    session.exec(delete(PendingUpload).where(col(PendingUpload.id) == upload.id))
    session.commit()


def unclaimed(now: datetime) -> ColumnElement[bool]:
    """The condition "no request holds the upload" (or its claim's lease ran out)."""
    return or_(
        col(PendingUpload.completing_since).is_(None),
        col(PendingUpload.completing_since) < now - COMPLETION_LEASE,
    )


def not_being_discarded(now: datetime) -> ColumnElement[bool]:
    """The condition "not expired and claimed": gc, or a create starting over, is removing
    such an upload, and a client must not be handed it back."""
    return or_(col(PendingUpload.expires_at) >= now, unclaimed(now))


def claim(*, session: Session, upload_id: str, expired_at: datetime | None = None) -> bool:
    """Atomically mark the upload as taken by this request; False when another holds it,
    or, given `expired_at`, when it no longer expires before then.

    Complete, cancel, and the discards in create and gc all claim before touching the
    store: a cancel racing a complete would otherwise delete the bytes of a file the
    complete is recording.
    """
    now = utcnow()
    conditions = [
        col(PendingUpload.id) == upload_id,
        unclaimed(now),
    ]
    if expired_at is not None:
        # In the same UPDATE as the claim: a client may revive an expired upload (asking
        # for part URLs) after gc looked it up, and must then keep it.
        conditions.append(col(PendingUpload.expires_at) < expired_at)
    result = session.exec(
        update(PendingUpload).where(*conditions).values(completing_since=now)
    )
    session.commit()
    return result.rowcount == 1


@contextmanager
def kept(*, session: Session, upload_id: str) -> Iterator[None]:
    """Renew the claim this request holds on the upload while the block runs.

    Joining the parts of a movie of 50 GB on the local disk outlasts the lease: a retried
    complete (a proxy gave up waiting) would otherwise take the upload over and join the
    parts a second time beside the first. Renewals use their own connection, and the
    block must hold no lock a renewal would wait for.
    """
    bind = session.get_bind()
    stop = threading.Event()

    def renew() -> None:
        """Move the claim's start to now, every RENEW_EVERY, until the block ends."""
        while not stop.wait(RENEW_EVERY.total_seconds()):
            try:
                with Session(bind) as own:
                    own.exec(
                        update(PendingUpload)
                        .where(col(PendingUpload.id) == upload_id,
                               col(PendingUpload.completing_since).is_not(None))
                        .values(completing_since=utcnow())
                    )
                    own.commit()
            except SQLAlchemyError as error:  # the next renewal may get through
                log.warning("Could not renew the claim on upload %s: %s", upload_id, error)

    renewal = threading.Thread(target=renew, name=f"claim-{upload_id}", daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()


def release(*, session: Session, upload_id: str) -> None:
    """Let the next `complete` try again after a failure that kept the upload."""
    session.rollback()
    session.exec(
        update(PendingUpload)
        .where(col(PendingUpload.id) == upload_id)
        .values(completing_since=None)
    )
    session.commit()


def claim_and_discard(
    *, session: Session, storage: Storage, upload: PendingUpload,
    expired_at: datetime | None = None,
) -> bool:
    """Claim the upload and discard it; False (nothing done) when another request holds it
    or, given `expired_at`, it has been revived to expire after then (see `claim`).

    If the store fails, the claim is released and the upload kept, so nothing is orphaned.
    """
    if not claim(session=session, upload_id=upload.id, expired_at=expired_at):
        return False
    try:
        discard(session=session, storage=storage, upload=upload)
    except BaseException:
        release(session=session, upload_id=upload.id)
        raise
    return True


def accepts_object_write(*, session: Session, key: str) -> bool:
    """Whether a signed upload may still write `key`: its upload is pending, unclaimed, live.

    A form upload's signature stays valid until it expires; without this, replaying it
    after complete, cancel or delete would overwrite a recorded movie or leave an object
    that no row refers to.
    """
    now = utcnow()
    found = session.exec(
        select(PendingUpload.id).where(
            PendingUpload.key == key,
            col(PendingUpload.expires_at) > now,
            unclaimed(now),
        )
    ).first()
    return found is not None
