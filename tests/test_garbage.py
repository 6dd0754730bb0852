"""gc and expired uploads: what a client revives after gc has looked is kept.

Orphaned objects and the `gc` command are in tests/test_upload_tokens.py; subtitles'
objects in tests/test_subtitles.py.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlmodel import col, delete

from movievault import claims, db, garbage, uploads
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.config import settings
from movievault.errors import StorageUnavailable
from movievault.models import PendingUpload, StoredFile, utcnow
from movievault.storage import Storage
from tests import postgres
from tests.support import MIB, LiveServer, expire_in, multipart_gone, pending, rows


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test runs on SQLite with both stores, and on PostgreSQL with S3."""
    postgres.parametrize_databases(metafunc)


MULTIPART = 6 * MIB + 4096  # over MULTIPART_THRESHOLD (6 MiB): parts of 5 MiB and the rest


def test_an_upload_revived_after_gc_looked_it_up_is_kept(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two multipart uploads have expired; gc finds both, and before it claims them the
    client comes back for part URLs of one (which moves its expiry on). That one survives
    and completes; the other, still expired, goes."""
    app = live_server.app
    storage = get_storage(app)
    data = os.urandom(MULTIPART)
    started: dict[str, dict[str, Any]] = {}
    for name, body in (("revived.mkv", data), ("abandoned.mkv", os.urandom(MULTIPART))):
        answer = alice.create(name=name, data=body)
        assert answer.status_code == 201, answer.text
        started[name] = answer.json()["upload"]
        expire_in(app, started[name]["id"], -timedelta(minutes=1))
    revived, abandoned = started["revived.mkv"], started["abandoned.mkv"]
    abandoned_row = pending(app, abandoned["id"])
    assert abandoned_row is not None and abandoned_row.multipart_id

    real = claims.claim_and_discard
    looked_up: list[str] = []

    def revive_first(*, session: Any, storage: Storage, upload: PendingUpload,
                     **rest: Any) -> bool:
        """The client asks for part URLs after gc's look-up, before its claim."""
        looked_up.append(upload.id)
        if upload.id == revived["id"]:
            alice.sign_parts(revived, [1], data)
        return real(session=session, storage=storage, upload=upload, **rest)

    monkeypatch.setattr(claims, "claim_and_discard", revive_first)
    with db.session_scope(app) as session:
        report = garbage.collect_garbage(session=session, storage=storage)
    monkeypatch.undo()

    assert sorted(looked_up) == sorted([revived["id"], abandoned["id"]])
    assert (report.expired_uploads, report.failures) == (1, [])
    kept = pending(app, revived["id"])
    assert kept is not None and kept.completing_since is None and kept.expires_at > utcnow()
    assert pending(app, abandoned["id"]) is None
    assert multipart_gone(storage, key=abandoned_row.key, upload_id=abandoned_row.multipart_id)
    # The client carries on with the upload it revived.
    alice.put_parts(revived, data, list(range(1, revived["part_count"] + 1)))
    done = alice.complete(revived["id"])
    assert done.status_code == 201, done.text
    assert [(f.name, f.size) for f in rows(app, StoredFile)] == [("revived.mkv", MULTIPART)]


def test_part_urls_move_an_upload_s_expiry_on_at_most_once_a_minute(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """The page asks for part URLs every few seconds: the first request after create writes
    nothing, one a minute later moves the expiry a whole UPLOAD_TTL on."""
    app = live_server.app
    data = os.urandom(MULTIPART)
    started = alice.create(name="movie.mkv", data=data).json()["upload"]
    created = pending(app, started["id"])
    assert created is not None
    alice.sign_parts(started, [1], data)
    unchanged = pending(app, started["id"])
    assert unchanged is not None and unchanged.expires_at == created.expires_at

    ttl = timedelta(seconds=settings(app).upload_ttl)
    expire_in(app, started["id"], ttl - uploads.EXTEND_EVERY - timedelta(seconds=5))
    before = utcnow()
    alice.sign_parts(started, [2], data)
    moved = pending(app, started["id"])
    assert moved is not None and moved.expires_at >= before + ttl


def test_a_failure_then_an_upload_finished_meanwhile_do_not_stop_the_sweep(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails for one expired upload, and the next is finished by its owner before
    gc gets to it: the failure is reported, the finished one skipped, and the sweep goes on
    (reading the finished upload after the failure's rollback crashed it)."""
    app = live_server.app
    ids = []
    for name in ("first.mp4", "second.mp4"):
        answer = alice.create(name=name, data=os.urandom(1000 + len(ids)))
        ids.append(answer.json()["upload"]["id"])
        expire_in(app, ids[-1], -timedelta(minutes=1))

    def store_fails_and_the_other_is_finished(*, upload: PendingUpload, **rest: Any) -> bool:
        """The first call: the other upload's row goes (completed), the store fails."""
        other = next(upload_id for upload_id in ids if upload_id != upload.id)
        with db.session_scope(app) as session:
            session.exec(delete(PendingUpload).where(col(PendingUpload.id) == other))
            session.commit()
        monkeypatch.setattr(claims, "claim_and_discard", real)
        raise StorageUnavailable("The storage cannot be reached right now.")

    real = claims.claim_and_discard
    monkeypatch.setattr(claims, "claim_and_discard", store_fails_and_the_other_is_finished)
    with db.session_scope(app) as session:
        report = garbage.collect_garbage(session=session, storage=get_storage(app))
    assert report.expired_uploads == 0
    assert len(report.failures) == 1 and "cannot be reached" in report.failures[0]


def test_an_upload_gc_has_claimed_is_not_handed_back_to_the_client(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: gc has claimed an expired upload and is removing it when the client
    comes back for part URLs. The client is told the upload is gone (it starts again)
    rather than handed URLs for an upload that is about to vanish."""
    app = live_server.app
    storage = get_storage(app)
    data = os.urandom(MULTIPART)
    answer = alice.create(name="late.mkv", data=data)
    assert answer.status_code == 201, answer.text
    started = answer.json()["upload"]
    expire_in(app, started["id"], -timedelta(minutes=1))

    real = claims.discard
    asked: list[int] = []

    def client_comes_back(
        *, session: Any, storage: Storage, upload: PendingUpload, claim: claims.Claim | None
    ) -> None:
        """Between gc's claim and its removal, the client asks for part URLs."""
        try:
            alice.sign_parts(started, [1], data)
            asked.append(200)
        except requests.HTTPError as error:
            asked.append(error.response.status_code)
        real(session=session, storage=storage, upload=upload, claim=claim)

    monkeypatch.setattr(claims, "discard", client_comes_back)
    with db.session_scope(app) as session:
        report = garbage.collect_garbage(session=session, storage=storage)
    monkeypatch.undo()

    assert asked == [404]
    assert (report.expired_uploads, report.failures) == (1, [])
    assert pending(app, started["id"]) is None
