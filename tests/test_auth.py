"""First-run setup, sign-in and sign-out, through the pages.

The sign-in throttle is tested in tests/test_security.py and tests/test_throttle.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from movievault import db, users
from movievault.models import User
from tests.support import (
    PASSWORD,
    AuthActions,
    LiveServer,
    at_once,
    csrf_from,
    make_user,
    rows,
)


def test_first_run_redirects_to_setup_and_creates_the_owner(client: FlaskClient) -> None:
    assert client.get("/").headers["Location"] == "/setup"
    assert client.get("/login").headers["Location"] == "/setup"
    token = csrf_from(client.get("/setup").get_data(as_text=True))
    answer = client.post(
        "/setup",
        data={"username": "owner", "password": PASSWORD, "password_confirm": PASSWORD,
              "csrf_token": token},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Your library is empty." in page
    assert "Welcome, owner" in page
    # Setup is closed once an account exists.
    assert client.get("/setup").headers["Location"] == "/login"


def test_setup_refuses_mismatched_passwords(client: FlaskClient) -> None:
    token = csrf_from(client.get("/setup").get_data(as_text=True))
    answer = client.post(
        "/setup",
        data={"username": "owner", "password": PASSWORD, "password_confirm": "other-one!",
              "csrf_token": token},
    )
    assert answer.status_code == 422
    assert "The two passwords differ." in answer.get_data(as_text=True)


def _writers_waiting(engine: Engine) -> int:
    """How many PostgreSQL sessions of this database wait for a lock now."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar_one())


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail after 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", ["local"])  # setup does not touch the store
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_setups_at_once_make_one_owner_and_send_the_other_to_sign_in(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both setups have seen an empty library and both are about to write when they are
    let go: without the accounts lock, both accounts would be made."""
    # Each request waits at its password hash for the other, so both have passed the
    # page's "no account yet?" check (which comes first) before either inserts anything.
    both_hashing = threading.Barrier(2, timeout=30)
    hashed = threading.Semaphore(0)
    original = users.generate_password_hash

    def hash_together(password: str, *args: Any, **kwargs: Any) -> str:
        """Hash the password once the other setup has come this far too."""
        both_hashing.wait()
        try:
            return original(password, *args, **kwargs)
        finally:
            hashed.release()

    monkeypatch.setattr(users, "generate_password_hash", hash_together)

    def setup_as(name: str) -> Callable[[], requests.Response]:
        """Setup's form filled in for `name`, from a browser of its own."""
        http = requests.Session()
        token = csrf_from(http.get(f"{live_server.url}/setup", timeout=30).text)
        return partial(
            http.post, f"{live_server.url}/setup", timeout=60,
            data={"username": name, "password": PASSWORD, "password_confirm": PASSWORD,
                  "csrf_token": token},
        )

    calls = [setup_as("ann"), setup_as("ben")]
    answers: list[tuple[int, str]] = []
    engine = db.engine_of(live_server.app)
    # Another writer holds the database while both setups run up to their first write:
    # SQLite's write lock, or on PostgreSQL the accounts table (reads still go through).
    with engine.connect() as holder:
        if engine.dialect.name == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.exec_driver_sql('LOCK TABLE "user" IN SHARE MODE')
        both = threading.Thread(target=lambda: answers.extend(at_once(*calls)))
        both.start()
        for _ in calls:
            assert hashed.acquire(timeout=30), "a setup never reached its password hash"
        if engine.dialect.name == "sqlite":
            # SQLite does not show who waits for its lock: what is left of each request
            # before it does is a few statements, far quicker than this.
            time.sleep(0.5)
        else:
            _wait_until(lambda: _writers_waiting(engine) == 2, "both setups wait")
        holder.rollback()
    both.join(timeout=120)
    # Redirects followed: the owner lands in the library, the other on the sign-in page.
    assert [status for status, _ in answers] == [200, 200], answers
    accounts = rows(live_server.app, User)
    assert len(accounts) == 1
    owner = accounts[0].username
    by_name = dict(zip(["ann", "ben"], (body for _, body in answers), strict=True))
    other = "ben" if owner == "ann" else "ann"
    assert f"Welcome, {owner}" in by_name[owner]
    assert users.OWNER_EXISTS in by_name[other]
    assert "Sign in</h1>" in by_name[other]


@pytest.mark.parametrize("backend", ["local"])
def test_a_setup_page_posted_after_setup_says_so(app: Flask, client: FlaskClient) -> None:
    token = csrf_from(client.get("/setup").get_data(as_text=True))
    make_user(app, "owner")  # someone finished setup meanwhile
    answer = client.post(
        "/setup", follow_redirects=True,
        data={"username": "other", "password": PASSWORD, "password_confirm": PASSWORD,
              "csrf_token": token},
    )
    assert answer.request.path == "/login"
    assert users.OWNER_EXISTS in answer.get_data(as_text=True)
    assert [user.username for user in rows(app, User)] == ["owner"]


def test_login_logout_and_next(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    make_user(app, "alice")
    assert client.get("/files/1").headers["Location"] == "/login?next=/files/1"
    token = auth.csrf()
    answer = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token,
              "next": "/?sort=name"},
    )
    assert answer.headers["Location"] == "/?sort=name"
    assert client.get("/").status_code == 200
    assert auth.logout().headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_message(app: Flask, auth: AuthActions) -> None:
    make_user(app, "alice")
    answer = auth.login(password="wrong-password")
    assert answer.status_code == 401
    assert "do not match" in answer.get_data(as_text=True)
