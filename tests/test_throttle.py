"""Login throttling under parallel guesses, a failing database and over-long names; one
account per name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import event, inspect
from sqlmodel import select

from movievault import db, throttle, users
from movievault.errors import InvalidInput
from movievault.models import LoginAttempt, User, utcnow
from tests.support import (
    PASSWORD,
    LiveServer,
    at_once,
    attempt,
    csrf_from,
    make_user,
    rows,
)


@pytest.fixture
def backend() -> str:
    """Signing in does not touch the store: one backend is enough."""
    return "local"


def _count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count every password hash check the app makes (the expensive step being limited)."""
    checks: list[str] = []
    original = users.check_password_hash

    def counted(pwhash: str, password: str) -> bool:
        checks.append(password)
        return original(pwhash, password)

    monkeypatch.setattr(users, "check_password_hash", counted)
    return checks


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_forty_parallel_guesses_get_exactly_five_password_checks(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(live_server.app, "alice")
    checks = _count_password_checks(monkeypatch)
    browsers = []
    for _ in range(40):  # each guess from its own browser, with its own CSRF token
        http = requests.Session()
        token = csrf_from(http.get(f"{live_server.url}/login", timeout=30).text)
        browsers.append((http, token))

    def guess(http: requests.Session, token: str) -> Callable[[], requests.Response]:
        """A wrong password for alice, from this browser."""
        return partial(
            http.post, f"{live_server.url}/login", allow_redirects=False, timeout=60,
            data={"username": "alice", "password": "wrong-password", "csrf_token": token},
        )

    statuses = Counter(status for status, _ in at_once(*(guess(*pair) for pair in browsers)))
    assert statuses == {401: throttle.MAX_FAILURES, 429: 40 - throttle.MAX_FAILURES}
    assert len(checks) == throttle.MAX_FAILURES
    # And the right password, guessed now, does not get in either.
    http, token = browsers[0]
    right = http.post(
        f"{live_server.url}/login", allow_redirects=False, timeout=30,
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
    )
    assert right.status_code == 429


def test_simultaneous_right_passwords_from_one_address_all_get_in(live_server: LiveServer) -> None:
    """Attempts in flight count against the limit, but only until they end: a household
    signing in at once waits a moment instead of being refused."""
    for n in range(8):
        make_user(live_server.app, f"member{n}")

    def sign_in(n: int) -> Callable[[], requests.Response]:
        """Member n's right password, from a browser of their own."""
        http = requests.Session()
        token = csrf_from(http.get(f"{live_server.url}/login", timeout=30).text)
        return partial(
            http.post, f"{live_server.url}/login", allow_redirects=False, timeout=60,
            data={"username": f"member{n}", "password": PASSWORD, "csrf_token": token},
        )

    statuses = [status for status, _ in at_once(*(sign_in(n) for n in range(8)))]
    assert statuses == [302] * 8


def _read_only(app: Flask) -> None:
    """Make every new connection of the app's engine refuse writes, as a full or read-only
    disk does, and drop the connections already open."""
    engine = app.extensions["movievault.engine"]

    def refuse_writes(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    event.listen(engine, "connect", refuse_writes)
    engine.dispose()


def test_a_sign_in_that_cannot_be_recorded_is_refused_before_the_password_is_checked(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(app, "alice")
    _read_only(app)
    checks = _count_password_checks(monkeypatch)
    for password in ("wrong-password", PASSWORD):
        answer = attempt(app, "alice", password, "192.0.2.1")
        assert answer.status_code == 503
        assert "could not be recorded" in answer.get_data(as_text=True)
        assert "Location" not in answer.headers
    assert checks == []


def test_a_check_that_never_ended_counts_as_a_failure(app: Flask) -> None:
    user_id = make_user(app, "alice")
    with db.session_scope(app) as session:
        # Five attempts recorded, then their worker died before the passwords were checked.
        for _ in range(throttle.MAX_FAILURES):
            session.add(LoginAttempt(
                subject=f"user:{user_id}", in_flight=True,
                at=utcnow() - throttle.IN_FLIGHT_LIMIT - timedelta(seconds=1),
            ))
        session.commit()
    assert attempt(app, "alice", PASSWORD, "192.0.2.1").status_code == 429


def test_usernames_differing_only_in_case_are_one_account(app: Flask) -> None:
    make_user(app, "carol")
    with db.session_scope(app) as session, pytest.raises(InvalidInput, match="already taken"):
        users.create_user(session=session, username="Carol", password=PASSWORD)
    answer = attempt(app, "CAROL", PASSWORD, "192.0.2.1")
    assert answer.status_code == 302
    # Every spelling counts against the one account, and a sign-in clears them all.
    for n, spelling in enumerate(["Carol", "cArol", "CAROL", "carol"]):
        assert attempt(app, spelling, "wrong-password", f"192.0.2.{10 + n}").status_code == 401
    assert attempt(app, "carol", PASSWORD, "192.0.2.20").status_code == 302
    for n in range(throttle.MAX_FAILURES):
        assert attempt(app, "Carol", "wrong-password", f"192.0.2.{30 + n}").status_code == 401
    assert attempt(app, "carol", PASSWORD, "192.0.2.40").status_code == 429
    with db.session_scope(app) as session:
        assert len(session.exec(select(User)).all()) == 1


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_name_longer_than_any_account_is_a_wrong_password_counted_against_the_address(
    app: Flask,
) -> None:
    make_user(app, "alice")
    # A different name each time, so that only the address's counter can stop them.
    for n in range(throttle.MAX_FAILURES):
        answer = attempt(app, f"{n}{'x' * 5000}", "wrong-password", "192.0.2.1")
        assert answer.status_code == 401
        assert "That username and password do not match." in answer.get_data(as_text=True)
    assert attempt(app, "alice", PASSWORD, "192.0.2.1").status_code == 429
    assert attempt(app, "alice", PASSWORD, "192.0.2.2").status_code == 302
    # Every counter fits the column as the database declares it (SQLite would keep a
    # longer one, and copying the catalogue to PostgreSQL would then fail).
    engine = app.extensions["movievault.engine"]
    column = next(c for c in inspect(engine).get_columns("login_attempt")
                  if c["name"] == "subject")
    subjects = Counter(row.subject for row in rows(app, LoginAttempt))
    assert max(map(len, subjects)) <= column["type"].length == 300
    assert subjects["addr:192.0.2.1"] == throttle.MAX_FAILURES
    assert sum(count for subject, count in subjects.items()
               if subject.startswith("name#")) == throttle.MAX_FAILURES
