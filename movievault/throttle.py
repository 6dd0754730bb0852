"""Login throttling, counted in the database so every worker process shares the count."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, delete, func, select

from movievault.errors import TooManyAttempts
from movievault.models import LoginAttempt, utcnow

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


def _subjects(username: str, address: str) -> list[str]:
    """The counters one attempt belongs to: its username and its address."""
    return [f"user:{username.strip().lower()}", f"addr:{address}"]


def check_allowed(*, session: Session, username: str, address: str) -> None:
    """Raise TooManyAttempts when the username or address failed too often in the window.

    This runs before the password is looked at: otherwise a correct guess would still
    be told apart from a wrong one and the throttle would be an oracle, not a limit.
    """
    since = utcnow() - WINDOW
    for subject in _subjects(username, address):
        failures = session.exec(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.subject == subject, LoginAttempt.at > since)
        ).one()
        if failures >= MAX_FAILURES:
            minutes = int(WINDOW.total_seconds() // 60)
            raise TooManyAttempts(
                f"Too many failed sign-in attempts. Wait {minutes} minutes and try again."
            )


def record_failure(*, session: Session, username: str, address: str) -> None:
    """Count a failed attempt against the username and the address; drop stale rows."""
    now = utcnow()
    for subject in _subjects(username, address):
        session.add(LoginAttempt(subject=subject, at=now))
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.at) < now - WINDOW))
    session.commit()


def record_success(*, session: Session, username: str) -> None:
    """Forget the username's failures after a successful sign-in."""
    subject = _subjects(username, "")[0]
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.subject) == subject))
    session.commit()
