"""The movievault commands create-user and setup-bucket.

The others are tested with what they serve: gc in tests/test_reliability.py and
tests/test_upload_tokens.py, set-quota in tests/test_quotas.py, reset-password in
tests/test_sessions.py, migrate-storage in tests/test_migrate.py, db upgrade and
rename-user in tests/test_migrations.py, serve in tests/test_serving.py.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import select

from movievault import db, users
from movievault.models import User
from tests.support import make_user


def test_create_user_reads_the_password_from_stdin(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["create-user", "carol"], input="s3cret-password\n")
    assert result.exit_code == 0, result.output
    assert "Created user carol" in result.output
    with db.session_scope(app) as session:
        assert users.authenticate(session=session, username="carol", password="s3cret-password")
        stored = session.exec(select(User).where(User.username == "carol")).one()
        assert "s3cret-password" not in stored.password_hash


def test_create_user_refuses_duplicates_and_short_passwords(
    app: Flask, runner: FlaskCliRunner
) -> None:
    make_user(app, "dave")
    taken = runner.invoke(args=["create-user", "dave"], input="another-password\n")
    assert taken.exit_code != 0 and "already taken" in taken.output
    short = runner.invoke(args=["create-user", "erin"], input="short\n")
    assert short.exit_code != 0 and "at least 8" in short.output


def test_setup_bucket_reports_what_it_did(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["setup-bucket"])
    assert result.exit_code == 0, result.output
    assert "CORS allows" in result.output or "folder" in result.output
