"""First-run setup, sign-in and sign-out, through the pages.

The sign-in throttle is tested in tests/test_security.py and tests/test_throttle.py.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.support import PASSWORD, AuthActions, csrf_from, make_user


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
