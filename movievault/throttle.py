"""Login throttling, counted in the database so every worker process shares the count.

An attempt is recorded *before* its password is checked, in the same write transaction
that counts the earlier ones, and stays "in flight" until the check ends. Parallel guesses
therefore cannot all slip past the count: while the in-flight and failed attempts of an
account (or address) add up to the limit, the next one waits for them to end, then is
refused if they failed. A check that never ends (a crash) counts as a failure after
IN_FLIGHT_LIMIT. And if an attempt cannot be recorded at all, signing in is refused:
failing open would make guessing unlimited.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, delete, func, or_, select

from movievault import users
from movievault.errors import CatalogueUnavailable, TooManyAttempts
from movievault.locking import begin_write
from movievault.models import LoginAttempt, utcnow

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
#: A password check takes a fraction of a second; one in flight longer than this died.
IN_FLIGHT_LIMIT = timedelta(seconds=30)
#: How long an attempt waits for others in flight before it is refused.
MAX_WAIT_SECONDS = 10.0
#: The longest subject the column keeps: PostgreSQL refuses a longer one, and SQLite keeps
#: it, which then stops the catalogue from being copied to PostgreSQL.
SUBJECT_LENGTH: int = LoginAttempt.__table__.c.subject.type.length  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Attempt:
    """A recorded sign-in attempt: its rows, and the account it names (if it exists)."""

    row_ids: tuple[int, ...]
    user_id: int | None


def _subject(kind: str, value: str) -> str:
    """The counter `kind:value`, or `kind#<SHA-256 of value>` when that would not fit.

    The name and the address come from the client: a sign-in with a name of thousands of
    characters (longer than any account's) must still be counted, as the failure it is.
    """
    subject = f"{kind}:{value}"
    if len(subject) <= SUBJECT_LENGTH:
        return subject
    return f"{kind}#{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _account_subject(*, user_id: int | None, username: str) -> str:
    """The counter of the account: by id when it exists, so every spelling shares it."""
    if user_id is not None:
        return f"user:{user_id}"
    return _subject("name", username.strip().lower())


def _counts(session: Session, subject: str) -> tuple[int, int]:
    """(failures, attempts still in flight) of `subject` within the window."""
    now = utcnow()
    stale = now - IN_FLIGHT_LIMIT
    failed = or_(col(LoginAttempt.in_flight).is_(False), col(LoginAttempt.at) < stale)
    rows = session.exec(
        select(failed, func.count())
        .where(LoginAttempt.subject == subject, LoginAttempt.at > now - WINDOW)
        .group_by(failed)
    ).all()
    counts = {bool(is_failure): int(number) for is_failure, number in rows}
    return counts.get(True, 0), counts.get(False, 0)


def _refused() -> TooManyAttempts:
    """The error for an account or address past the limit."""
    minutes = int(WINDOW.total_seconds() // 60)
    return TooManyAttempts(
        f"Too many failed sign-in attempts. Wait {minutes} minutes and try again."
    )


def begin_attempt(*, session: Session, username: str, address: str) -> Attempt:
    """Record an attempt for the account and the address, in flight, if the limit allows.

    Raises TooManyAttempts when either has failed too often (before the password is looked
    at: otherwise the throttle would tell a right guess from a wrong one), and
    CatalogueUnavailable when the attempt cannot be written.
    """
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    try:
        while True:
            # Attempts on one name, or from one address, count and record one at a time.
            begin_write(session, f"login-name:{username.strip().lower()}",
                        f"login-addr:{address}")
            user = users.find_user(session=session, username=username)
            user_id = user.id if user is not None else None
            subjects = [
                _account_subject(user_id=user_id, username=username), _subject("addr", address)
            ]
            busy = False
            for subject in subjects:
                failures, in_flight = _counts(session, subject)
                if failures >= MAX_FAILURES:
                    session.rollback()
                    raise _refused()
                busy = busy or failures + in_flight >= MAX_FAILURES
            if not busy:
                break
            # Others are being checked now; whether this one may go depends on how they end.
            session.rollback()
            if time.monotonic() > deadline:
                raise _refused()
            time.sleep(0.05)
        rows = [LoginAttempt(subject=subject, in_flight=True) for subject in subjects]
        session.add_all(rows)
        session.exec(delete(LoginAttempt).where(col(LoginAttempt.at) < utcnow() - WINDOW))
        session.commit()
    except SQLAlchemyError as error:
        session.rollback()
        raise CatalogueUnavailable(
            "Signing in is unavailable: the attempt could not be recorded (is the disk "
            "full?). Try again later."
        ) from error
    return Attempt(row_ids=tuple(row.id for row in rows if row.id is not None), user_id=user_id)


def failed(*, session: Session, attempt: Attempt) -> None:
    """The password did not match: the attempt now counts as a failure.

    If this cannot be written, the attempt stays in flight and counts as a failure once
    IN_FLIGHT_LIMIT has passed: the error is not worth failing the answer for.
    """
    try:
        session.exec(
            update(LoginAttempt)
            .where(col(LoginAttempt.id).in_(attempt.row_ids))
            .values(in_flight=False)
        )
        session.commit()
    except SQLAlchemyError:
        session.rollback()


def succeeded(*, session: Session, attempt: Attempt, user_id: int) -> None:
    """The password matched: forget this attempt and the account's earlier failures."""
    subject = _account_subject(user_id=user_id, username="")
    try:
        session.exec(
            delete(LoginAttempt).where(
                or_(col(LoginAttempt.id).in_(attempt.row_ids), LoginAttempt.subject == subject)
            )
        )
        session.commit()
    except SQLAlchemyError as error:
        session.rollback()
        raise CatalogueUnavailable(
            "Signing in is unavailable: the database cannot be written. Try again later."
        ) from error


# --- API tokens --------------------------------------------------------------------------
# A token guess counts against its address, in the same counter as password guesses: an
# address that guesses one is refused the other too. Unlike a password check, a token
# look-up is cheap and a valid token is used on every API call, so no attempt is written
# before it (that would be a write per call): the check reads the count, and only a guess
# writes. Parallel guesses can pass the limit by the requests in flight at that moment;
# the secrets' 256 random bits are what makes guessing hopeless, the throttle bounds the
# rate of trying.


def check_token_address(*, session: Session, address: str) -> None:
    """Raise TooManyAttempts when the address has failed too often to try a token now."""
    failures, _ = _counts(session, _subject("addr", address))
    if failures >= MAX_FAILURES:
        raise TooManyAttempts(
            "Too many failed sign-in attempts or unknown API tokens from this address. "
            f"Wait {int(WINDOW.total_seconds() // 60)} minutes and try again."
        )


def token_guessed(*, session: Session, address: str) -> None:
    """Count an unknown token as a failed attempt of its address (quietly, like `failed`)."""
    try:
        session.add(LoginAttempt(subject=_subject("addr", address), in_flight=False))
        session.commit()
    except SQLAlchemyError:
        session.rollback()
