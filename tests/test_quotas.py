"""Limits on uploads: the cap on pending uploads, per-user quotas (`movievault set-quota`),
the local store's free-space reserve, and the shorter expiry of form uploads."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import event
from sqlmodel import select

from movievault import db, quotas
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.models import PendingUpload, StoredFile, User, utcnow
from movievault.storage import Storage
from tests.support import (
    MIB,
    AuthActions,
    LiveServer,
    at_once,
    expire_in,
    make_user,
    open_multipart_uploads,
    rows,
)

SMALL = 200_000  # one form POST
MULTIPART = 6 * MIB + 4096  # over MULTIPART_THRESHOLD (6 MiB): parts of 5 MiB and the rest
#: Stands for "a reserve larger than the free space of the test's disk" (computed per test).
MORE_THAN_THE_DISK_HAS = "more than the disk has"

local_only = pytest.mark.parametrize("backend", ["local"])


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes; override with `pytest.mark.parametrize("overrides", ...)`."""
    return {}


@pytest.fixture
def app_config(app_config: dict[str, Any], overrides: dict[str, Any], tmp_path: Path) -> Any:
    """The shared settings, with this test's overrides applied."""
    config = {**app_config, **overrides}
    if config.get("FREE_SPACE_RESERVE") == MORE_THAN_THE_DISK_HAS:
        config["FREE_SPACE_RESERVE"] = shutil.disk_usage(tmp_path).free + 1024**4
    return config


# --- helpers -------------------------------------------------------------------------------


def pending_keys(app: Flask, method: str) -> list[str]:
    """Keys of the pending uploads of that method, as the catalogue has them."""
    return sorted(u.key for u in rows(app, PendingUpload) if u.method == method)


def assert_nothing_written(
    app: Flask, storage: Storage, *, rows_before: set[str], objects_before: set[str]
) -> None:
    """No new pending upload, no new object, and no multipart upload the app forgot."""
    assert {u.id for u in rows(app, PendingUpload)} == rows_before
    assert set(storage.iter_keys()) == objects_before
    assert open_multipart_uploads(storage) == pending_keys(app, "multipart")


def refused(answer: requests.Response, status: int, words: str) -> None:
    """The answer is `status` with a JSON error containing `words`."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert words in answer.json()["error"]


def declare(client: ApiClient, size: int, name: str = "movie.mkv") -> requests.Response:
    """Start an upload of `size` random bytes (nothing is sent yet)."""
    return client.create(name=name, data=os.urandom(size))


def quota(app: Flask, username: str) -> int | None:
    """The account's quota as stored."""
    with db.session_scope(app) as session:
        return session.exec(select(User.quota_bytes).where(User.username == username)).one()


# --- the cap on pending uploads -------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"MAX_PENDING_UPLOADS": 3}])
def test_pending_cap_refuses_one_more_upload_and_writes_nothing(
    alice: ApiClient, bob: ApiClient, live_server: LiveServer
) -> None:
    app = live_server.app
    storage = get_storage(app)
    started = [declare(alice, size) for size in (SMALL, SMALL, MULTIPART)]
    assert [a.status_code for a in started] == [201, 201, 201]
    ids = {a.json()["upload"]["id"] for a in started}
    before = {"rows_before": ids, "objects_before": set(storage.iter_keys())}

    for size in (MULTIPART, SMALL):  # a multipart started in the store would be left open
        refused(declare(alice, size), 413, "3 unfinished uploads")
        assert_nothing_written(app, storage, **before)
    assert len(open_multipart_uploads(storage)) == 1
    # The cap is per user.
    assert declare(bob, SMALL).status_code == 201

    # Cancelling one makes room again.
    first = started[0].json()["upload"]["id"]
    assert alice.api("DELETE", f"/uploads/{first}").status_code == 204
    assert declare(alice, SMALL).status_code == 201
    refused(declare(alice, SMALL), 413, "unfinished uploads")

    # Expired uploads no longer count, even before gc removes them.
    expire_in(app, started[1].json()["upload"]["id"], -timedelta(minutes=1))
    assert declare(alice, MULTIPART).status_code == 201


@pytest.mark.parametrize("quota", [None, 10**12])
def test_room_for_an_upload_is_counted_from_indexes_alone(app: Flask, quota: int | None) -> None:
    """Each statement of the check every create runs twice reads an index, never the rows:
    a user's pending uploads (live or expired) and files cost index entries only."""
    owner = make_user(app, "counted")
    if quota is not None:
        with db.session_scope(app) as session:
            user = session.get(User, owner)
            assert user is not None
            user.quota_bytes = quota
            session.add(user)
            session.commit()
    ran: list[tuple[str, Any]] = []
    engine = db.engine_of(app)

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        ran.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with db.session_scope(app) as session:
            quotas.check_room(session=session, owner_id=owner, size=1, max_pending=100)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(ran) == (2 if quota is None else 3)  # no quota: the files are not added up
    with engine.connect() as connection:
        for statement, parameters in ran:
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters
            ))
            assert "COVERING INDEX" in plan or "INTEGER PRIMARY KEY" in plan, (statement, plan)


@pytest.mark.parametrize("overrides", [{"MAX_PENDING_UPLOADS": 2}])
def test_resuming_a_pending_upload_is_not_a_new_one(alice: ApiClient) -> None:
    data = os.urandom(SMALL)
    assert alice.create(name="one.mp4", data=data).status_code == 201
    assert declare(alice, SMALL).status_code == 201
    resumed = alice.create(name="one.mp4", data=data)
    assert resumed.status_code == 200, resumed.text
    refused(declare(alice, SMALL), 413, "unfinished uploads")


# --- quotas ---------------------------------------------------------------------------------


def test_quota_set_through_the_cli_admits_what_fits_and_refuses_the_rest(
    alice: ApiClient, live_server: LiveServer
) -> None:
    app = live_server.app
    storage = get_storage(app)
    runner: FlaskCliRunner = app.test_cli_runner()
    result = runner.invoke(args=["set-quota", "alice", "10MB"])
    assert result.exit_code == 0, result.output
    assert "alice may keep 10.0 MB; they use 0 bytes." in result.output
    assert quota(app, "alice") == 10_000_000

    alice.upload(name="stored.mp4", data=os.urandom(4_000_000))  # stored: 4 MB
    pending_upload = declare(alice, 5_000_000, "pending.mp4")  # declared, never sent: 5 MB
    assert pending_upload.status_code == 201, pending_upload.text
    before = {
        "rows_before": {u.id for u in rows(app, PendingUpload)},
        "objects_before": set(storage.iter_keys()),
    }

    # 4 MB kept + 5 MB pending + 1,000,001 bytes > 10 MB; a multipart one does not fit either.
    refused(declare(alice, 1_000_001), 413, "quota of 10.0 MB: 1.0 MB left")
    refused(declare(alice, MULTIPART), 413, "quota")
    assert_nothing_written(app, storage, **before)
    # Exactly what is left fits.
    assert declare(alice, 1_000_000).status_code == 201
    refused(declare(alice, 1), 413, "0 bytes left")

    # Pending uploads count until they end: cancelling one gives its room back.
    gone = pending_upload.json()["upload"]["id"]
    assert alice.api("DELETE", f"/uploads/{gone}").status_code == 204
    assert declare(alice, 5_000_000).status_code == 201

    report = runner.invoke(args=["set-quota", "alice", "none"])
    assert report.exit_code == 0, report.output
    assert "alice may keep no limit; they use 10.0 MB." in report.output
    assert quota(app, "alice") is None
    assert declare(alice, MULTIPART).status_code == 201


# On PostgreSQL writers run side by side: the owner's advisory lock serializes the check.
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("size", "limit"),
    [(3_000_000, "10MB"), (MULTIPART, "20MB")],
    ids=["post", "multipart"],
)
def test_parallel_creates_never_exceed_the_quota(
    alice: ApiClient, live_server: LiveServer, size: int, limit: str
) -> None:
    app = live_server.app
    storage = get_storage(app)
    result = app.test_cli_runner().invoke(args=["set-quota", "alice", limit])
    assert result.exit_code == 0, result.output
    allowed = quota(app, "alice")
    assert allowed is not None
    fits = allowed // size  # 3 either way

    tabs = 8
    data = [os.urandom(size) for _ in range(tabs)]

    def tab(index: int) -> Callable[[], requests.Response]:
        """One browser tab (same session) declaring its own file."""
        client = ApiClient(http=requests.Session(), base=alice.base)
        client.http.cookies.update(alice.http.cookies)
        client.http.headers["X-CSRFToken"] = alice.http.headers["X-CSRFToken"]
        return partial(client.create, name=f"tab {index}.mkv", data=data[index])

    # All at the same moment.
    answers = at_once(*(tab(i) for i in range(tabs)))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * fits + [413] * (tabs - fits), answers
    accepted = [json.loads(body)["upload"]["size"] for status, body in answers if status == 201]
    assert sum(accepted) <= allowed
    held = rows(app, PendingUpload)
    assert len(held) == fits and sum(u.size for u in held) <= allowed
    # The losers that had started a multipart upload in the store aborted it again.
    assert open_multipart_uploads(storage) == pending_keys(app, "multipart")
    assert set(storage.iter_keys()) == set()


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500GB", 500 * 10**9),
        ("2TB", 2 * 10**12),
        ("1.5gb", 1_500_000_000),
        ("750 MB", 750 * 10**6),
        ("123456", 123456),
        ("none", None),
    ],
)
def test_set_quota_reads_sizes(
    app: Flask, runner: FlaskCliRunner, text: str, expected: int | None
) -> None:
    make_user(app, "alice")
    if expected is None:
        assert runner.invoke(args=["set-quota", "alice", "1GB"]).exit_code == 0
    result = runner.invoke(args=["set-quota", "alice", text])
    assert result.exit_code == 0, result.output
    assert quota(app, "alice") == expected


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize(
    "text", ["lots", "12XB", "GB", "", "-5GB", "5 GiB", "nan", "inf", "1e400GB", "1e30TB"]
)
def test_set_quota_refuses_what_is_not_a_size_and_keeps_the_quota(
    app: Flask, runner: FlaskCliRunner, text: str
) -> None:
    make_user(app, "alice")
    assert runner.invoke(args=["set-quota", "alice", "1GB"]).exit_code == 0
    # "--" so that "-5GB" reaches the command rather than being read as an option.
    result = runner.invoke(args=["set-quota", "--", "alice", text])
    assert result.exit_code == 2, result.output  # click's usage error, not a crash
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "size" in result.output or "negative" in result.output
    assert quota(app, "alice") == 10**9


@pytest.mark.parametrize("backend", ["local"])
def test_set_quota_for_an_unknown_account_fails(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["set-quota", "nobody", "1GB"])
    assert result.exit_code == 1, result.output
    assert "no account 'nobody'" in result.output


# --- the local store's free-space reserve ---------------------------------------------------


@local_only
@pytest.mark.parametrize("overrides", [{"FREE_SPACE_RESERVE": MORE_THAN_THE_DISK_HAS}])
def test_create_on_a_full_disk_is_507_and_writes_nothing(
    alice: ApiClient, live_server: LiveServer
) -> None:
    app = live_server.app
    storage = get_storage(app)
    for size in (SMALL, MULTIPART):
        refused(declare(alice, size), 507, "disk is almost full")
        assert_nothing_written(app, storage, rows_before=set(), objects_before=set())


@local_only
def test_writes_signed_before_the_disk_filled_up_are_refused_with_507(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = live_server.app
    storage = get_storage(app)
    small = os.urandom(SMALL)
    form = alice.create(name="form.mp4", data=small).json()["upload"]
    big = os.urandom(MULTIPART)
    parts = alice.create(name="parts.mkv", data=big).json()["upload"]
    urls = alice.sign_parts(parts, [1, 2], big)
    sent = os.urandom(MULTIPART)
    assembled = alice.create(name="assembled.mkv", data=sent).json()["upload"]
    sent_etags = alice.put_parts(assembled, sent, [1, 2])

    # The disk fills up (another program, a big download...). Writing gigabytes to the
    # test's disk is not an option, so the reserve grows past what is free instead.
    free = shutil.disk_usage(storage.root).free  # type: ignore[attr-defined]
    monkeypatch.setattr(storage, "free_space_reserve", free + 1024**4)

    refused(alice.post_form(form, small), 507, "disk is almost full")
    first = urls[1].put(big[: 5 * MIB])
    refused(first, 507, "disk is almost full")
    refused(alice.complete(assembled["id"], sent_etags), 507, "disk is almost full")
    assert set(storage.iter_keys()) == set()
    assert alice.status(parts["id"])["uploaded_parts"] == []
    assert list(storage.tmp.iterdir()) == []  # type: ignore[attr-defined]
    # Every upload is kept, to be finished once there is room again.
    assert len(rows(app, PendingUpload)) == 3
    assert all(u.completing_since is None for u in rows(app, PendingUpload))

    monkeypatch.undo()
    assert alice.post_form(form, small).status_code == 204
    assert alice.complete(form["id"]).status_code == 201
    assert alice.complete(assembled["id"], sent_etags).status_code == 201
    etags = alice.put_parts(parts, big, [1, 2])
    assert alice.complete(parts["id"], etags).status_code == 201
    assert len(rows(app, StoredFile)) == 3


# --- form uploads expire sooner -------------------------------------------------------------


def _parse(stamp: str) -> datetime:
    """Read the API's ISO 8601 timestamps (with a Z)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_form_uploads_expire_after_form_upload_ttl_and_multipart_after_upload_ttl(
    alice: ApiClient, live_server: LiveServer
) -> None:
    config = live_server.app.config
    assert config["FORM_UPLOAD_TTL"] < config["UPLOAD_TTL"]
    small = os.urandom(SMALL)
    expected = {
        "post": timedelta(seconds=config["FORM_UPLOAD_TTL"]),
        "multipart": timedelta(seconds=config["UPLOAD_TTL"]),
    }
    for data in (small, os.urandom(MULTIPART)):
        for attempt in ("created", "resumed"):
            asked = utcnow()
            answer = alice.create(name="ttl.mkv", data=data)
            assert answer.status_code == (201 if attempt == "created" else 200), answer.text
            upload = answer.json()["upload"]
            ahead = _parse(upload["expires_at"]) - asked
            wanted = expected[upload["method"]]
            # Timestamps are whole seconds; a few more for a slow machine.
            assert wanted - timedelta(seconds=2) <= ahead <= wanted + timedelta(seconds=10), (
                attempt, upload["method"], ahead,
            )
    # The catalogue agrees (gc reads the row, not the answer).
    spans = {u.method: u.expires_at - u.created_at for u in rows(live_server.app, PendingUpload)}
    for method, wanted in expected.items():
        assert abs(spans[method] - wanted) < timedelta(seconds=30), (method, spans)


# --- the account page -----------------------------------------------------------------------


@local_only
def test_account_page_shows_usage_and_quota(
    app: Flask, client: Any, runner: FlaskCliRunner
) -> None:
    owner = make_user(app, "alice")
    with db.session_scope(app) as session:
        session.add(StoredFile(
            owner_id=owner, name="a.mkv", size=1_500_000, sha256="a" * 64,
            content_type="video/x-matroska", key="movies/1/" + "a" * 32,
        ))
        session.add(PendingUpload(
            id="p1", owner_id=owner, sha256="b" * 64, size=250_000, name="b.mp4",
            content_type="video/mp4", key="movies/1/" + "b" * 32, method="post",
            expires_at=utcnow() + timedelta(hours=1),
        ))
        session.commit()
    assert runner.invoke(args=["set-quota", "alice", "2GB"]).exit_code == 0
    auth = AuthActions(client)
    assert auth.login().status_code == 302

    page = client.get("/account")
    assert page.status_code == 200
    usage = _usage_text(page.get_data(as_text=True))
    assert "Your library holds 1.5 MB" in usage
    assert "plus 1 unfinished upload (250.0 KB)" in usage
    assert "Your quota is 2.0 GB." in usage

    assert runner.invoke(args=["set-quota", "alice", "none"]).exit_code == 0
    usage = _usage_text(client.get("/account").get_data(as_text=True))
    assert "Your library holds 1.5 MB" in usage and "quota" not in usage


def _usage_text(html: str) -> str:
    """The text of the page's usage paragraph, whitespace collapsed."""
    match = re.search(r'<p id="usage">(.*?)</p>', html, re.S)
    assert match, "the account page has no usage paragraph"
    return " ".join(match.group(1).split())
