"""Claims on a pending upload: one request at a time may complete or discard it.

Complete, cancel, and the discards in create and gc all claim the upload in the database
before touching the store; a cancel racing a complete would otherwise delete the bytes of
a file the complete is recording. And the local store asks `accepts_object_write` before
a signed URL writes, so a replayed URL cannot write once its upload is over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, delete, or_, select

from movievault.errors import Conflict
from movievault.models import PendingUpload, StoredFile, Subtitle, utcnow
from movievault.storage import Storage

log = logging.getLogger(__name__)

# A claim (complete or discard under way) that has not ended in this long is taken to
# have died with its worker.
COMPLETION_LEASE = timedelta(minutes=10)
#: How often a complete renews its claim while the store works: a few renewals may fail
#: (the database restarting) before the lease runs out.
RENEW_EVERY = COMPLETION_LEASE / 4
#: How long a complete may keep renewing its claim. Joining 500 GB at 76 MB/s (a slow disk)
#: takes under two hours; a store call that hangs (an NFS mount gone) would otherwise keep
#: the upload claimed for as long as the process lives. Then the lease runs out as after a
#: crash, and the claim's token keeps the hung request from recording if it ever returns.
KEPT_AT_MOST = timedelta(hours=3)
TAKEN_OVER = "This upload was taken over by another request; try again."


class ClaimLost(Conflict):
    """Another request took the upload over: this one's claim had run out (its renewals
    failed for a whole lease, or its process stood still)."""


@dataclass
class Claim:
    """A request's hold on a pending upload. `since`, the time the claim was taken or last
    renewed, is also its token: every later step checks the row still holds it, so a
    request whose claim ran out and was taken over can no longer change the upload."""

    upload_id: str
    since: datetime


def _renew(session: Session, claim: Claim) -> bool:
    """Move the claim's time to now if this request still holds it; whether it did."""
    now = utcnow()
    result = session.exec(
        update(PendingUpload)
        .where(col(PendingUpload.id) == claim.upload_id,
               col(PendingUpload.completing_since) == claim.since)
        .values(completing_since=now)
    )
    session.commit()
    if result.rowcount != 1:
        return False
    claim.since = now
    return True


def forget(*, session: Session, claim: Claim) -> None:
    """Delete the pending upload in the caller's transaction, which then records what it
    became; raises ClaimLost (and rolls back) if another request has taken it over."""
    result = session.exec(
        delete(PendingUpload).where(col(PendingUpload.id) == claim.upload_id,
                                    col(PendingUpload.completing_since) == claim.since)
    )
    if result.rowcount != 1:
        session.rollback()
        raise ClaimLost(TAKEN_OVER)


def confirm(*, session: Session, claim: Claim) -> None:
    """Renew the claim before a step that must not run twice (recording, discarding): a
    whole lease lies ahead then. Raises ClaimLost if another request has taken it over."""
    if not _renew(session, claim):
        raise ClaimLost(TAKEN_OVER)


def _in_the_catalogue(session: Session, key: str) -> bool:
    """Whether a recorded movie or subtitle keeps its bytes under `key`."""
    return any(
        session.exec(select(column).where(column == key).limit(1)).first() is not None
        for column in (col(StoredFile.key), col(Subtitle.source_key))
    )


def discard(
    *, session: Session, storage: Storage, upload: PendingUpload, claim: Claim | None
) -> None:
    """Free what the store holds for a pending upload, then forget the upload.

    The caller holds the upload's `claim` (confirmed here first), so no `complete` can
    record the file while its bytes are being removed. None: no request can hold one
    (`migrate-db`, with the app stopped).
    """
    if claim is not None:
        confirm(session=session, claim=claim)
    if upload.method == "multipart" and upload.multipart_id:
        storage.abort_multipart(key=upload.key, upload_id=upload.multipart_id)
    # An upload sent whole may already have stored its object; a failed multipart never
    # does. Unless a complete that outlived its lease has recorded it meanwhile: its bytes
    # are the movie's then.
    if not _in_the_catalogue(session, upload.key):
        storage.delete(upload.key)
    if claim is None:
        session.exec(delete(PendingUpload).where(col(PendingUpload.id) == upload.id))
    else:
        forget(session=session, claim=claim)
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


def claim(
    *, session: Session, upload_id: str, expired_at: datetime | None = None
) -> Claim | None:
    """Atomically mark the upload as taken by this request; None when another holds it,
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
    return Claim(upload_id, now) if result.rowcount == 1 else None


@contextmanager
def kept(*, session: Session, claim: Claim) -> Iterator[None]:
    """Renew the claim this request holds on the upload while the block runs.

    Joining the parts of a movie of 50 GB on the local disk outlasts the lease: a retried
    complete (a proxy gave up waiting) would otherwise take the upload over and join the
    parts a second time beside the first. Renewals use their own connection, and the
    block must hold no lock a renewal would wait for. A renewal that finds the claim taken
    over stops: the steps after the block find it out (`confirm`).
    """
    bind = session.get_bind()
    stop = threading.Event()
    until = time.monotonic() + KEPT_AT_MOST.total_seconds()

    def renew() -> None:
        """Move the claim's time to now, every RENEW_EVERY, until the block ends (or has
        run for KEPT_AT_MOST)."""
        while not stop.wait(RENEW_EVERY.total_seconds()):
            if time.monotonic() > until:
                log.warning("Upload %s is still being completed after %s: its claim is no "
                            "longer renewed", claim.upload_id, KEPT_AT_MOST)
                return
            try:
                with Session(bind) as own:
                    if not _renew(own, claim):
                        return
            except SQLAlchemyError as error:  # the next renewal may get through
                log.warning(
                    "Could not renew the claim on upload %s: %s", claim.upload_id, error
                )

    renewal = threading.Thread(target=renew, name=f"claim-{claim.upload_id}", daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()


def release(*, session: Session, claim: Claim) -> None:
    """Let the next `complete` try again after a failure that kept the upload, if this
    request still holds its claim."""
    session.rollback()
    session.exec(
        update(PendingUpload)
        .where(col(PendingUpload.id) == claim.upload_id,
               col(PendingUpload.completing_since) == claim.since)
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
    held = claim(session=session, upload_id=upload.id, expired_at=expired_at)
    if held is None:
        return False
    try:
        discard(session=session, storage=storage, upload=upload, claim=held)
    except BaseException:
        release(session=session, claim=held)
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
