"""The probe queue: one durable job per file in the database, claimed with a lease.

A job is claimed by one conditional UPDATE whose row count says whether this worker won
(plain SQL that SQLite and PostgreSQL both run the same way), so several worker threads,
or several processes on one catalogue, never probe one file at once. A worker that dies
holding a job loses it when the lease runs out, and the next claim takes it over. None of
these functions commits unless it says so: results are recorded in the same transaction
that removes the job.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, or_, select

from movievault.models import ProbeJob, StoredFile, utcnow

#: How long to wait before each retry of a job that failed for a reason that may pass
#: (the store down, a probe cut off by its time limit). After the last one, the file is
#: recorded as failed with the reason.
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))
MAX_ATTEMPTS = len(BACKOFF) + 1
#: Tries at a claim that other workers keep winning before saying "nothing for now".
CLAIM_TRIES = 5


@dataclass(frozen=True)
class ProbeSettings:
    """How probing runs: its time limit, and how many probes may run at once."""

    timeout: float  # seconds one file's probe and poster may take, reads included
    workers: int  # background probes at once; 0: none (only `movievault rescan` probes)

    @property
    def lease(self) -> timedelta:
        """How long a claim holds its job: the time limit, and a margin to record it."""
        return timedelta(seconds=self.timeout + 60)


@dataclass(frozen=True)
class Claim:
    """A job this worker holds until `until`: `token` proves it when the job ends."""

    job_id: int
    file_id: int
    attempts: int  # claims of this job so far, this one included
    token: str
    until: datetime


def enqueue(*, session: Session, file_id: int, now: datetime | None = None) -> None:
    """Queue a probe of the file, due now, unless it has a job already (then unchanged)."""
    enqueue_many(session=session, file_ids=[file_id], now=now)


def enqueue_many(
    *, session: Session, file_ids: Iterable[int], now: datetime | None = None
) -> None:
    """Queue a probe of each file that has no job yet; the others keep theirs, and ids of
    files deleted meanwhile are skipped."""
    now = now or utcnow()
    ids = list(file_ids)
    # INSERT ... SELECT ... ON CONFLICT DO NOTHING: the same SQL in both databases, but
    # each dialect of SQLAlchemy spells its own construct.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
        rows = select(
            StoredFile.id, literal(0), literal(now, DateTime()), literal(now, DateTime())
        ).where(col(StoredFile.id).in_(ids[start : start + 500]))
        statement = insert(ProbeJob).from_select(
            ["file_id", "attempts", "due_at", "created_at"], rows
        )
        session.exec(statement.on_conflict_do_nothing(index_elements=["file_id"]))


def _free(now: datetime) -> ColumnElement[bool]:
    """The condition "no live lease on the job"."""
    return or_(col(ProbeJob.leased_until).is_(None), col(ProbeJob.leased_until) < now)


def claim(
    *, session: Session, lease: timedelta, file_id: int | None = None,
    now: datetime | None = None,
) -> Claim | None:
    """Take the newest due job (or the file's job, due or not) for `lease`, and commit.

    None when there is no such job, or it is held by a live lease. Newest first: the
    file someone just uploaded is the one they are looking at.
    """
    for _ in range(CLAIM_TRIES):
        moment = now or utcnow()
        query = select(ProbeJob.id, ProbeJob.file_id, ProbeJob.attempts).where(_free(moment))
        if file_id is None:
            query = query.where(col(ProbeJob.due_at) <= moment)
        else:
            query = query.where(ProbeJob.file_id == file_id)
        row = session.exec(
            query.order_by(col(ProbeJob.due_at).desc(), col(ProbeJob.id).desc()).limit(1)
        ).first()
        # End the read before writing: the UPDATE below then waits for the write lock
        # (SQLite will not turn a read snapshot that another writer has passed into a write).
        session.rollback()
        if row is None:
            return None
        job_id, job_file_id, attempts = row
        assert job_id is not None
        token = secrets.token_hex(16)
        until = moment + lease
        # Won only if nobody claimed it since it was read: same attempts, no live lease.
        result = session.exec(
            update(ProbeJob)
            .where(
                col(ProbeJob.id) == job_id,
                col(ProbeJob.attempts) == attempts,
                _free(moment),
            )
            .values(attempts=attempts + 1, leased_until=until, lease=token)
        )
        session.commit()
        if result.rowcount == 1:
            return Claim(
                job_id=job_id, file_id=job_file_id, attempts=attempts + 1, token=token,
                until=until,
            )
    return None


def take_done(*, session: Session, claim: Claim) -> bool:
    """Remove the job if this claim still holds it (no commit: record the result first).

    False when the job is gone (its file was deleted) or another worker took it over
    after the lease ran out: then this worker must record nothing.
    """
    result = session.exec(
        delete(ProbeJob).where(
            col(ProbeJob.id) == claim.job_id, col(ProbeJob.lease) == claim.token
        )
    )
    return result.rowcount == 1


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after the `attempts`-th try failed; None once tries are used up."""
    return BACKOFF[attempts - 1] if 1 <= attempts <= len(BACKOFF) else None


def retry_later(
    *, session: Session, claim: Claim, error: str, now: datetime | None = None
) -> bool:
    """Release the job until its next try (see BACKOFF) and commit; False if not held."""
    delay = retry_delay(claim.attempts)
    assert delay is not None, "no retry left: record the failure instead"
    result = session.exec(
        update(ProbeJob)
        .where(col(ProbeJob.id) == claim.job_id, col(ProbeJob.lease) == claim.token)
        .values(
            due_at=(now or utcnow()) + delay, leased_until=None, lease=None,
            last_error=error[:500],
        )
    )
    session.commit()
    return result.rowcount == 1


def forget(*, session: Session, file_id: int) -> None:
    """Remove the file's job, whoever holds it (no commit: the file is being deleted)."""
    session.exec(delete(ProbeJob).where(col(ProbeJob.file_id) == file_id))


def next_due(*, session: Session) -> datetime | None:
    """When the earliest job not held by a live lease is due (None: no job waits)."""
    now = utcnow()
    found = session.exec(
        select(ProbeJob.due_at).where(_free(now)).order_by(col(ProbeJob.due_at)).limit(1)
    ).first()
    session.rollback()
    return found
