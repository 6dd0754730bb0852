"""Personal API tokens: the JSON API as their user, nothing more, and never in clear."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner

from movievault import api_tokens, db, throttle
from movievault.client import ApiClient, sha256_of
from movievault.models import ApiToken, StoredFile, as_utc, utcnow
from tests.support import (
    PASSWORD,
    LiveServer,
    add_file,
    attempt,
    make_user,
    rows,
    sign_in,
)


@pytest.fixture
def backend() -> str:
    """Tokens choose who is asking, not where bytes go: one backend is enough."""
    return "local"


def _token(app: Flask, user_id: int, name: str = "script", **options: Any) -> str:
    """Make a token for the user in the catalogue and return its secret."""
    with db.session_scope(app) as session:
        _row, secret = api_tokens.create_token(
            session=session, user_id=user_id, name=name, **options
        )
    return secret


def _bearer(secret: str) -> dict[str, str]:
    """The header that carries a token."""
    return {"Authorization": f"Bearer {secret}"}


def _token_row(app: Flask, secret: str) -> ApiToken:
    """The stored row of a token, read fresh."""
    wanted = api_tokens.hash_secret(secret)
    [row] = [token for token in rows(app, ApiToken) if token.token_hash == wanted]
    return row


def _files_of(app: Flask, owner_id: int) -> list[StoredFile]:
    """The files of one owner."""
    return [f for f in rows(app, StoredFile) if f.owner_id == owner_id]


def _set(app: Flask, secret: str, **values: Any) -> None:
    """Change columns of a token's row (to move its times)."""
    with db.session_scope(app) as session:
        row = session.get(ApiToken, _token_row(app, secret).id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def test_a_token_uploads_and_lists_over_http_without_csrf_or_cookie(
    live_server: LiveServer,
) -> None:
    app = live_server.app
    alice = make_user(app, "alice")
    client = ApiClient.with_token(live_server.url, _token(app, alice))
    assert "X-CSRFToken" not in client.http.headers
    data = b"\x00\x01 a small movie " * 1000
    done = client.upload(name="Heat (1995).mp4", data=data)
    assert done["file"]["sha256"] == sha256_of(data)
    listed = client.api("GET", "/files").json()
    assert [(f["name"], f["title"]) for f in listed["files"]] == [("Heat (1995).mp4", "Heat")]
    renamed = client.api("PATCH", f"/files/{done['file']['id']}", json={"name": "Heat.mp4"})
    assert renamed.status_code == 200, renamed.text
    # It acted as alice on every call, and no session was ever handed out.
    assert not client.http.cookies
    # The same calls without the token are refused: it was the token that let them in.
    anonymous = requests.get(f"{live_server.url}/api/files", timeout=30)
    assert anonymous.status_code == 401


def test_a_token_sees_exactly_what_its_user_sees(app: Flask) -> None:
    alice, bob = make_user(app, "alice"), make_user(app, "bob")
    mine = add_file(app, alice, "Mine.mp4", b"alice's bytes")
    theirs = add_file(app, bob, "Theirs.mp4", b"bob's bytes")
    headers = _bearer(_token(app, alice))
    client = app.test_client()
    listed = client.get("/api/files", headers=headers).get_json()
    assert [f["id"] for f in listed["files"]] == [mine]
    assert client.get(f"/api/files/{mine}", headers=headers).status_code == 200
    for method in ("GET", "PATCH", "DELETE"):
        answer = client.open(f"/api/files/{theirs}", method=method, headers=headers,
                             json={"name": "stolen.mp4"})
        assert answer.status_code == 404, (method, answer.get_data(as_text=True))
    checked = client.post("/api/files/check", headers=headers, json={
        "files": [{"sha256": sha256_of(b"bob's bytes"), "size": 11}]}).get_json()
    assert checked["results"][0]["duplicate"] is False  # bob's file is not alice's duplicate
    assert [f.name for f in _files_of(app, bob)] == ["Theirs.mp4"]


def test_a_token_cannot_load_pages(app: Flask) -> None:
    alice = make_user(app, "alice")
    file_id = add_file(app, alice, "Mine.mp4")
    headers = _bearer(_token(app, alice))
    for path in ("/", "/account", f"/files/{file_id}", f"/files/{file_id}/download"):
        answer = app.test_client().get(path, headers=headers)
        # Exactly what a signed-out visitor gets: sent to the sign-in page.
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login"), path


def test_page_forms_still_need_csrf_with_a_token(app: Flask) -> None:
    alice = make_user(app, "alice")
    file_id = add_file(app, alice, "Mine.mp4")
    browser = sign_in(app, "alice")
    answer = browser.client.post(f"/files/{file_id}/delete",
                                 headers=_bearer(_token(app, alice)))
    assert answer.status_code == 400 and "CSRF" in answer.get_data(as_text=True)
    assert [f.id for f in _files_of(app, alice)] == [file_id]


def test_cookie_api_calls_still_need_csrf(app: Flask) -> None:
    make_user(app, "alice")
    browser = sign_in(app, "alice")
    body = {"files": [{"sha256": "ab" * 32, "size": 5}]}
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}):
        refused = browser.client.post("/api/files/check", json=body, headers=headers)
        assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    assert browser.client.post("/api/files/check", json=body,
                               headers=browser.headers()).status_code == 200


def test_bad_tokens_are_401_at_once_even_beside_a_session(app: Flask) -> None:
    alice = make_user(app, "alice")
    revoked = _token(app, alice, name="revoked")
    with db.session_scope(app) as session:
        api_tokens.revoke_token(session=session, user_id=alice,
                                token_id=_token_row(app, revoked).id or 0)
    expired = _token(app, alice, name="expired", expires_at=utcnow() + timedelta(days=1))
    _set(app, expired, expires_at=utcnow() - timedelta(seconds=1))
    valid = _token(app, alice, name="valid")
    unknown = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    # A signed-in browser sends them: the cookie is never a fall-back.
    browser = sign_in(app, "alice")
    for secret, message in ((revoked, "was revoked"), (expired, "has expired"),
                            (unknown, "not valid"), ("", "not valid")):
        for method, path in (("GET", "/api/files"), ("POST", "/api/files/check")):
            answer = browser.client.open(path, method=method, headers=_bearer(secret),
                                         json={"files": []})
            assert answer.status_code == 401, (message, answer.get_data(as_text=True))
            assert message in answer.get_json()["error"]
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert browser.client.get("/api/files").status_code == 200
    assert browser.client.get("/api/files", headers=_bearer(valid)).status_code == 200


def test_the_catalogue_holds_no_secret_in_clear(app: Flask, tmp_path: Path) -> None:
    alice = make_user(app, "alice")
    secrets_made = [_token(app, alice, name=f"t{n}") for n in range(3)]
    assert all(s.startswith("mvt_") and len(s) > 40 for s in secrets_made)
    assert len(set(secrets_made)) == 3
    stored = {row.token_hash for row in rows(app, ApiToken)}
    assert stored == {api_tokens.hash_secret(s) for s in secrets_made}
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(FULL)")
        dump = "\n".join(connection.iterdump())
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for secret in secrets_made:
        assert secret not in dump and secret.encode() not in raw
        assert secret[4:].encode() not in raw


def test_last_used_is_noted_to_the_minute(app: Flask) -> None:
    alice = make_user(app, "alice")
    secret = _token(app, alice)
    assert _token_row(app, secret).last_used_at is None
    client = app.test_client()
    before = utcnow() - timedelta(seconds=1)
    assert client.get("/api/files", headers=_bearer(secret)).status_code == 200
    first = _token_row(app, secret).last_used_at
    assert first is not None and as_utc(first) >= before
    # Within the minute nothing is written again; past it, the new use is noted.
    assert client.get("/api/files", headers=_bearer(secret)).status_code == 200
    assert _token_row(app, secret).last_used_at == first
    _set(app, secret, last_used_at=utcnow() - timedelta(minutes=5))
    assert client.get("/api/files", headers=_bearer(secret)).status_code == 200
    latest = _token_row(app, secret).last_used_at
    assert latest is not None and as_utc(latest) >= before


def test_guessing_tokens_is_throttled_per_address_like_sign_in(app: Flask) -> None:
    alice = make_user(app, "alice")
    secret = _token(app, alice)
    client = app.test_client()
    guesser = {"REMOTE_ADDR": "192.0.2.66"}
    for n in range(throttle.MAX_FAILURES):
        guess = client.get("/api/files", headers=_bearer(f"mvt_guess{n}"), environ_base=guesser)
        assert guess.status_code == 401
    # The address is refused now, even with a right token, and so is its password sign-in.
    refused = client.get("/api/files", headers=_bearer(secret), environ_base=guesser)
    assert refused.status_code == 429 and "Too many" in refused.get_json()["error"]
    login = attempt(app, "alice", PASSWORD, guesser["REMOTE_ADDR"])
    assert login.status_code == 429 and "Too many" in login.get_data(as_text=True)
    # Another address is not affected; a revoked token is no guess and does not count.
    elsewhere = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get("/api/files", headers=_bearer(secret),
                      environ_base=elsewhere).status_code == 200
    with db.session_scope(app) as session:
        api_tokens.revoke_token(session=session, user_id=alice,
                                token_id=_token_row(app, secret).id or 0)
    for _ in range(throttle.MAX_FAILURES + 2):
        assert client.get("/api/files", headers=_bearer(secret),
                          environ_base=elsewhere).status_code == 401


def test_cli_creates_lists_and_revokes_tokens(app: Flask, runner: FlaskCliRunner) -> None:
    make_user(app, "alice")
    made = runner.invoke(args=["token", "create", "--user", "Alice", "--name", "NAS uploader",
                               "--expires-days", "30"])
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert re.fullmatch(r"mvt_[A-Za-z0-9_-]{43}", secret)
    client = app.test_client()
    assert client.get("/api/files", headers=_bearer(secret)).status_code == 200
    row = _token_row(app, secret)
    assert row.name == "NAS uploader" and row.expires_at is not None
    listed = runner.invoke(args=["token", "list", "--user", "alice"])
    assert listed.exit_code == 0, listed.output
    assert f"{row.id}\tNAS uploader\t" in listed.output and secret not in listed.output
    revoked = runner.invoke(args=["token", "revoke", "--user", "alice", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/files", headers=_bearer(secret)).status_code == 401
    assert "no API tokens" in runner.invoke(args=["token", "list", "--user", "alice"]).output
    again = runner.invoke(args=["token", "revoke", "--user", "alice", str(row.id)])
    assert again.exit_code != 0 and "no token" in again.output
    nobody = runner.invoke(args=["token", "create", "--user", "nobody"])
    assert nobody.exit_code != 0 and "no account 'nobody'" in nobody.output
    too_long = runner.invoke(args=["token", "create", "--user", "alice", "--expires-days", "0"])
    assert too_long.exit_code != 0 and "1 to 3650 days" in too_long.output


def test_cli_cannot_revoke_another_users_token(app: Flask, runner: FlaskCliRunner) -> None:
    make_user(app, "alice")
    bob = make_user(app, "bob")
    secret = _token(app, bob)
    answer = runner.invoke(args=["token", "revoke", "--user", "alice",
                                 str(_token_row(app, secret).id)])
    assert answer.exit_code != 0
    assert app.test_client().get("/api/files", headers=_bearer(secret)).status_code == 200


def test_account_page_creates_shows_once_and_revokes(app: Flask) -> None:
    make_user(app, "alice")
    bob = make_user(app, "bob")
    bobs = _token_row(app, _token(app, bob, name="bob's"))
    browser = sign_in(app, "alice")
    page = browser.client.get("/account").get_data(as_text=True)
    assert "You have no API tokens." in page and "bob&#39;s" not in page
    made = browser.client.post("/account/tokens", data={
        "name": "  Living   room NAS ", "expires_days": "7", "csrf_token": browser.token})
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    html = made.get_data(as_text=True)
    secret = re.search(r'id="new-token-secret" type="text" readonly value="(mvt_[^"]+)"', html)
    assert secret is not None and "not shown again" in html
    assert 'data-copy="new-token-secret"' in html
    row = _token_row(app, secret.group(1))
    assert row.name == "Living room NAS"
    assert row.expires_at is not None
    assert abs(row.expires_at - (row.created_at + timedelta(days=7))) < timedelta(seconds=5)
    # Shown once: the page, loaded again, lists the token without its secret.
    again = browser.client.get("/account").get_data(as_text=True)
    assert secret.group(1) not in again and "Living room NAS" in again and "never" in again
    # Bad input: a readable message, nothing made.
    for form, said in (({"name": ""}, "needs a name"), ({"name": "x", "expires_days": "soon"},
                       "whole number"), ({"name": "x", "expires_days": "9999"}, "3650")):
        bad = browser.client.post("/account/tokens", data={**form, "csrf_token": browser.token})
        assert bad.status_code == 422 and said in bad.get_data(as_text=True)
    assert len(rows(app, ApiToken)) == 2
    # Without its CSRF token the form does nothing.
    assert browser.client.post("/account/tokens", data={"name": "x"}).status_code == 400
    # Bob's token id is not alice's to revoke; her own is.
    other = browser.client.post(f"/account/tokens/{bobs.id}/revoke",
                                data={"csrf_token": browser.token})
    assert other.status_code == 404
    revoked = browser.client.post(f"/account/tokens/{row.id}/revoke",
                                  data={"csrf_token": browser.token})
    assert revoked.status_code == 303 and revoked.headers["Location"] == "/account"
    after = browser.client.get("/account").get_data(as_text=True)
    assert "The token is revoked" in after and "Living room NAS" not in after
    assert app.test_client().get("/api/files",
                                 headers=_bearer(secret.group(1))).status_code == 401
    assert app.test_client().get("/api/files",
                                 headers=_bearer(_token(app, bob))).status_code == 200


def test_user_for_token_finds_the_user_or_none(app: Flask) -> None:
    alice = make_user(app, "alice")
    secret = _token(app, alice, expires_at=utcnow() + timedelta(hours=1))
    with db.session_scope(app) as session:
        found = api_tokens.user_for_token(session=session, secret=secret, now=utcnow())
        assert found is not None and found.username == "alice"
        later = utcnow() + timedelta(hours=2)
        assert api_tokens.user_for_token(session=session, secret=secret, now=later) is None
        assert api_tokens.user_for_token(session=session, secret="mvt_x", now=utcnow()) is None
        assert [t.name for t in api_tokens.list_tokens(session=session, user_id=alice)] == [
            "script"
        ]


def test_a_token_name_keeps_no_escape_sequence_for_the_terminal(
    app: Flask, runner: FlaskCliRunner
) -> None:
    """A name made on the account page with a terminal's escape sequence and a bidi
    override in it is stored without them: `movievault token list` prints names as they
    are, in the owner's terminal."""
    make_user(app, "alice")
    browser = sign_in(app, "alice")
    made = browser.client.post("/account/tokens", data={
        "name": "NAS\x1b]0;pwned\x07 \u202euploader\t\x00", "csrf_token": browser.token})
    assert made.status_code == 201
    listed = runner.invoke(args=["token", "list", "--user", "alice"])
    assert listed.exit_code == 0, listed.output
    assert "\tNAS]0;pwned uploader\t" in listed.output
    assert not [ch for ch in listed.output if ch in "\x1b\x07\u202e\x00"]
    only_escapes = browser.client.post("/account/tokens", data={
        "name": "\x1b\x07\u202e", "csrf_token": browser.token})
    assert only_escapes.status_code == 422 and "needs a name" in only_escapes.get_data(
        as_text=True)
