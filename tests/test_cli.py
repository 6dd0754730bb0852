"""The movievault commands: create-user, setup-bucket, gc."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import select

from movievault import db, uploads, users
from movievault.backends import get_storage
from movievault.config import settings
from movievault.errors import StorageRejected
from movievault.models import PendingUpload, User, utcnow
from tests.conftest import MIB, make_user


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


def test_gc_discards_only_expired_uploads(app: Flask, runner: FlaskCliRunner) -> None:
    owner = make_user(app, "frank")
    storage = get_storage(app)
    with db.session_scope(app) as session:
        upload_settings = replace(
            settings(app).uploads, multipart_threshold=5 * MIB, part_size=5 * MIB
        )
        started = [
            uploads.start_upload(
                session=session, storage=storage, settings=upload_settings, owner_id=owner,
                data={"name": f"{n}.mkv", "size": 11 * MIB, "sha256": f"{n:064x}"},
            ).upload
            for n in (1, 2)
        ]
        old = session.get(PendingUpload, started[0].id)
        old.expires_at = utcnow() - timedelta(minutes=1)
        session.add(old)
        session.commit()
    result = runner.invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 expired upload" in result.output
    with db.session_scope(app) as session:
        left = session.exec(select(PendingUpload)).all()
        assert [u.id for u in left] == [started[1].id]
    # The expired multipart upload is gone from the store; the live one is still there.
    with pytest.raises(StorageRejected):
        storage.list_parts(key=started[0].key, upload_id=started[0].multipart_id)
    assert storage.list_parts(key=started[1].key, upload_id=started[1].multipart_id) == []
