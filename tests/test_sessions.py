"""Sessions end when they should: sign-out, sign out everywhere, new passwords; fresh at sign-in."""

from __future__ import annotations

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.support import PASSWORD, AuthActions, LiveServer, csrf_from, make_user

NEW_PASSWORD = "a much better passphrase"


@pytest.fixture
def backend() -> str:
    """Sessions do not touch the store: one backend is enough."""
    return "local"


def _copy(http: requests.Session) -> requests.Session:
    """Another client holding a copy of `http`'s cookies (a stolen or synced cookie)."""
    thief = requests.Session()
    thief.cookies.update(http.cookies)
    return thief


def _works(http: requests.Session, url: str) -> bool:
    """Whether the session is signed in: the API answers 200 (else 401)."""
    status = http.get(f"{url}/api/files", timeout=30).status_code
    assert status in (200, 401)
    return status == 200


def _post_form(http: requests.Session, url: str, path: str, **fields: str) -> requests.Response:
    """Post a page's form with the session's CSRF token."""
    token = csrf_from(http.get(f"{url}/account", timeout=30).text)
    return http.post(f"{url}{path}", data={"csrf_token": token, **fields},
                     allow_redirects=False, timeout=30)


def test_a_copied_session_cookie_is_dead_after_sign_out(live_server: LiveServer) -> None:
    make_user(live_server.app, "alice")
    http = live_server.session_for("alice")
    thief = _copy(http)
    assert _works(thief, live_server.url)
    token = csrf_from(http.get(f"{live_server.url}/", timeout=30).text)
    answer = http.post(f"{live_server.url}/logout", data={"csrf_token": token},
                       allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    assert not _works(thief, live_server.url)
    page = thief.get(f"{live_server.url}/", allow_redirects=False, timeout=30)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_sign_out_everywhere_ends_every_session_of_the_account_only(
    live_server: LiveServer,
) -> None:
    make_user(live_server.app, "alice")
    make_user(live_server.app, "bob")
    laptop, phone = live_server.session_for("alice"), live_server.session_for("alice")
    bob = live_server.session_for("bob")
    answer = _post_form(laptop, live_server.url, "/account/sign-out-everywhere")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert not _works(laptop, live_server.url)
    assert not _works(phone, live_server.url)
    assert _works(bob, live_server.url)
    # Signing in again works as before.
    assert _works(live_server.session_for("alice"), live_server.url)


def test_a_new_password_ends_the_other_sessions_and_keeps_this_one(
    live_server: LiveServer,
) -> None:
    make_user(live_server.app, "alice")
    here, there = live_server.session_for("alice"), live_server.session_for("alice")
    url = live_server.url
    wrong = _post_form(here, url, "/account/password", current_password="not-it-at-all",
                       new_password=NEW_PASSWORD, new_password_confirm=NEW_PASSWORD)
    assert wrong.status_code == 401 and "current password is not right" in wrong.text
    differ = _post_form(here, url, "/account/password", current_password=PASSWORD,
                        new_password=NEW_PASSWORD, new_password_confirm="something else")
    assert differ.status_code == 422 and "differ" in differ.text
    short = _post_form(here, url, "/account/password", current_password=PASSWORD,
                       new_password="short", new_password_confirm="short")
    assert short.status_code == 422 and "at least 8" in short.text
    assert _works(there, url)  # refused changes end nothing
    changed = _post_form(here, url, "/account/password", current_password=PASSWORD,
                         new_password=NEW_PASSWORD, new_password_confirm=NEW_PASSWORD)
    assert changed.status_code == 302 and changed.headers["Location"] == "/account"
    assert _works(here, url)
    assert not _works(there, url)
    assert "Every other device is signed out" in here.get(f"{url}/account", timeout=30).text
    with pytest.raises(AssertionError):
        live_server.session_for("alice")  # the old password
    assert _works(live_server.session_for("alice", NEW_PASSWORD), url)


def test_reset_password_ends_every_session(
    live_server: LiveServer,
) -> None:
    make_user(live_server.app, "alice")
    http = live_server.session_for("alice")
    runner: FlaskCliRunner = live_server.app.test_cli_runner()
    result = runner.invoke(args=["reset-password", "ALICE"], input=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "every session of it has ended" in result.output
    assert not _works(http, live_server.url)
    assert _works(live_server.session_for("alice", NEW_PASSWORD), live_server.url)
    missing = runner.invoke(args=["reset-password", "nobody"], input=f"{NEW_PASSWORD}\n")
    assert missing.exit_code != 0 and "no account 'nobody'" in missing.output


def test_sign_in_starts_a_fresh_session_and_csrf_token(app: Flask, auth: AuthActions) -> None:
    make_user(app, "alice")
    client = auth.client
    planted = auth.csrf("/login")  # a token of the signed-out session (e.g. planted by someone)
    with client.session_transaction() as before:
        raw_before = before["csrf_token"]
    assert auth.login().status_code == 302
    with client.session_transaction() as after:
        assert after.get("csrf_token") != raw_before
    stale = client.post("/api/files/check", json={"files": []}, headers={"X-CSRFToken": planted})
    assert stale.status_code == 400 and "CSRF" in stale.get_json()["error"]
    fresh = client.post("/api/files/check", json={"files": []}, headers=auth.headers())
    assert fresh.status_code == 200
