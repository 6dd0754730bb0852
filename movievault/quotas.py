"""Limits on what one user may keep and start: a quota in bytes, a cap on pending uploads.

Both count unfinished uploads at their declared size: otherwise a user could declare
thousands of 100 GiB uploads (each a row, a signed URL and, on the local store, a
folder) and only ever be refused at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam
from sqlmodel import Session, col, func, select

from movievault.errors import QuotaExceeded
from movievault.models import PendingUpload, StoredFile, User, utcnow
from movievault.units import human_size


@dataclass(frozen=True)
class Usage:
    """What a user holds: stored bytes, unfinished uploads and their declared bytes."""

    stored_bytes: int
    pending_uploads: int
    pending_bytes: int
    quota_bytes: int | None

    @property
    def total_bytes(self) -> int:
        """Bytes that count against the quota."""
        return self.stored_bytes + self.pending_bytes


# Built once: every create runs them twice (see check_room), with the owner bound.
_STORED = select(func.coalesce(func.sum(StoredFile.size), 0)).where(
    col(StoredFile.owner_id) == bindparam("owner_id")
)
_PENDING = select(func.count(), func.coalesce(func.sum(PendingUpload.size), 0)).where(
    col(PendingUpload.owner_id) == bindparam("owner_id"),
    col(PendingUpload.expires_at) > bindparam("now"),
)
_QUOTA = select(User.quota_bytes).where(col(User.id) == bindparam("owner_id"))


def _pending(connection: Connection, owner_id: int) -> tuple[int, int]:
    """The owner's live (unexpired) pending uploads and their declared bytes."""
    count, size = connection.execute(_PENDING, {"owner_id": owner_id, "now": utcnow()}).one()
    return int(count), int(size)


def usage(*, session: Session, owner_id: int) -> Usage:
    """Add up the owner's files and live (unexpired) pending uploads."""
    connection = session.connection()
    pending, pending_bytes = _pending(connection, owner_id)
    return Usage(
        stored_bytes=int(connection.execute(_STORED, {"owner_id": owner_id}).scalar_one()),
        pending_uploads=pending, pending_bytes=pending_bytes,
        quota_bytes=connection.execute(_QUOTA, {"owner_id": owner_id}).scalar(),
    )


def check_room(*, session: Session, owner_id: int, size: int, max_pending: int) -> None:
    """Raise QuotaExceeded unless the owner may start one more upload of `size` bytes.

    Called inside the write transaction that inserts the upload, so two uploads racing
    for the last gigabyte cannot both pass.
    """
    connection = session.connection()
    pending, pending_bytes = _pending(connection, owner_id)
    if pending >= max_pending:
        raise QuotaExceeded(
            f"You have {pending} unfinished uploads, the most allowed at once. "
            "Let some finish, or cancel them, then add more."
        )
    quota = connection.execute(_QUOTA, {"owner_id": owner_id}).scalar()
    if quota is None:
        return  # no quota: the stored bytes need not be added up
    held = pending_bytes + int(connection.execute(_STORED, {"owner_id": owner_id}).scalar_one())
    if held + size > quota:
        raise QuotaExceeded(
            f"This file ({human_size(size)}) does not fit in your quota of "
            f"{human_size(quota)}: {human_size(max(0, quota - held))} left. "
            "Delete files or ask the owner of this MovieVault for more room."
        )


def check_room_to_write(
    *, session: Session, owner_id: int, size: int, max_pending: int
) -> None:
    """`check_room` in the write transaction the caller began: a refusal rolls it back
    (its lock released at once) before QuotaExceeded goes up."""
    try:
        check_room(session=session, owner_id=owner_id, size=size, max_pending=max_pending)
    except QuotaExceeded:
        session.rollback()
        raise
