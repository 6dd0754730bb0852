"""Faults lose nothing: the store going down, a restart, racing uploads, lying clients,
expired URLs and abandoned uploads, all through the real API over HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from flask import Flask
from flask.testing import FlaskCliRunner

from movievault import claims, completion, create_app, db, uploads
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.errors import StorageUnavailable
from movievault.models import PendingUpload, StoredFile, Subtitle, utcnow
from movievault.storage import Storage
from tests import postgres
from tests.support import (
    MIB,
    LiveServer,
    download,
    expire_in,
    free_port,
    keys,
    make_user,
    multipart_gone,
    open_multipart_uploads,
    override_settings,
    pending,
    post_form_of_another_size,
    rows,
    send_bytes,
    serving,
)

SMALL = 200_000  # one form POST
BIG = 11 * MIB  # three parts: 5 MiB, 5 MiB, 1 MiB


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test runs on SQLite with both stores, and on PostgreSQL with S3."""
    postgres.parametrize_databases(metafunc)


# --- helpers -------------------------------------------------------------------------------


def assert_unavailable(answer: requests.Response) -> None:
    """A 503 with a JSON error that names the storage service."""
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "storage service" in answer.json()["error"]


# --- the store is unreachable or failing ----------------------------------------------------


class _OverloadedS3(BaseHTTPRequestHandler):
    """Answers every request the way an overloaded S3 does: 503 ServiceUnavailable."""

    def _fail(self) -> None:
        """Drain the request and answer 503 with S3's XML error body."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>"
        )
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _fail

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep the test output quiet."""


@contextmanager
def overloaded_s3() -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 that fails every S3 call with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OverloadedS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class Outage:
    """Takes the app's store away (`begin`) and brings it back (`end`)."""

    storage: Storage
    patch: pytest.MonkeyPatch
    endpoint: str | None  # an endpoint answering 503, or None for "nothing listens"

    def begin(self) -> None:
        """Point the store at a dead (or failing) endpoint, or unplug the disk."""
        if self.storage.kind == "s3":
            dead = boto3.client(
                "s3",
                endpoint_url=self.endpoint or f"http://127.0.0.1:{free_port()}",
                region_name="us-east-1",
                config=Config(
                    retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5,
                    s3={"addressing_style": "path"},
                ),
            )
            self.patch.setattr(self.storage, "client", dead)
        else:
            root = self.storage.root  # type: ignore[attr-defined]
            self.patch.setattr(self.storage, "root", root / "unplugged-disk" / "gone")

    def end(self) -> None:
        """Bring the store back."""
        self.patch.undo()


@pytest.fixture(params=["unreachable", "failing"])
def outage(request: pytest.FixtureRequest, live_server: LiveServer) -> Iterator[Outage]:
    """The store either refuses connections or answers every call with 503."""
    storage = get_storage(live_server.app)
    if request.param == "failing" and storage.kind != "s3":
        pytest.skip("only a remote store can answer 5xx")
    with ExitStack() as stack:
        endpoint = stack.enter_context(overloaded_s3()) if request.param == "failing" else None
        patch = pytest.MonkeyPatch()
        stack.callback(patch.undo)
        yield Outage(storage=storage, patch=patch, endpoint=endpoint)


def test_check_works_without_the_store(alice: ApiClient, outage: Outage) -> None:
    # The duplicate check reads only the catalogue, so it answers while the store is down.
    data = os.urandom(1000)
    alice.upload(name="have.mp4", data=data)
    outage.begin()
    results = alice.check([(sha256_of(data), len(data)), (sha256_of(b"other"), 5)])
    assert [r["duplicate"] for r in results] == [True, False]


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["post", "multipart"])
def test_create_with_the_store_down_is_503_and_records_nothing(
    alice: ApiClient, live_server: LiveServer, outage: Outage, size: int
) -> None:
    data = os.urandom(size)
    outage.begin()
    assert_unavailable(alice.create(name="down.mkv", data=data))
    assert rows(live_server.app, PendingUpload) == []
    outage.end()
    assert alice.create(name="down.mkv", data=data).status_code == 201


def test_resume_status_and_parts_with_the_store_down_are_503_and_keep_the_upload(
    alice: ApiClient, live_server: LiveServer, outage: Outage
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="resume.mkv", data=data).json()["upload"]
    early = alice.put_parts(upload, data, [1])
    before = pending(live_server.app, upload["id"])
    outage.begin()
    # The status lists the parts in the store: a store call, which finds it down and ends
    # the trust the part URLs of put_parts earned, so the resume asks the store again.
    assert_unavailable(alice.api("GET", f"/uploads/{upload['id']}"))
    assert_unavailable(alice.create(name="resume.mkv", data=data))
    assert_unavailable(
        alice.api("POST", f"/uploads/{upload['id']}/parts",
                  json={"parts": [{"number": 2, "sha256": "2" * 64},
                                  {"number": 3, "sha256": "3" * 64}]})
    )
    after = pending(live_server.app, upload["id"])
    assert after is not None and before is not None
    assert (after.multipart_id, after.key, after.completing_since) == (
        before.multipart_id, before.key, None,
    )
    outage.end()
    again = alice.create(name="resume.mkv", data=data)
    assert again.status_code == 200 and again.json()["upload"]["id"] == upload["id"]
    held = {p["part_number"]: p["etag"] for p in alice.status(upload["id"])["uploaded_parts"]}
    assert held == early
    final = alice.complete(upload["id"], held | alice.put_parts(upload, data, [2, 3]))
    assert final.status_code == 201, final.text


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["post", "multipart"])
def test_complete_with_the_store_down_is_503_and_the_retry_succeeds(
    alice: ApiClient, live_server: LiveServer, outage: Outage, size: int
) -> None:
    data = os.urandom(size)
    upload = alice.create(name="late.mkv", data=data).json()["upload"]
    etags = send_bytes(alice, upload, data)
    outage.begin()
    assert_unavailable(alice.complete(upload["id"], etags))
    assert rows(live_server.app, StoredFile) == []
    kept = pending(live_server.app, upload["id"])
    # Kept, and not left marked as "being completed", so the retry is not blocked.
    assert kept is not None and kept.completing_since is None
    outage.end()
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    got = download(alice, final.json()["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)


def ask_parts(client: ApiClient, upload: dict[str, Any], number: int) -> requests.Response:
    """Ask for one part's URL, as the page does while it sends the parts."""
    return client.api("POST", f"/uploads/{upload['id']}/parts",
                      json={"parts": [{"number": number, "sha256": f"{number}" * 64}]})


@pytest.mark.parametrize("backend", ["s3"])
def test_part_urls_trust_a_store_that_answered_a_moment_ago(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = get_storage(live_server.app)
    heads: list[str] = []
    real = storage.client.head_bucket  # type: ignore[attr-defined]

    def counted(**kwargs: Any) -> Any:
        heads.append(kwargs["Bucket"])
        return real(**kwargs)

    monkeypatch.setattr(storage.client, "head_bucket", counted)  # type: ignore[attr-defined]
    # However slow this machine is, the answer is trusted until the test ends its trust.
    monkeypatch.setattr(storage, "reachable_seconds", 3600.0)
    upload = alice.create(name="big.mkv", data=os.urandom(BIG)).json()["upload"]
    assert heads == []  # a new multipart upload asks the store to start it: that tells
    for number in (1, 2, 3, 1):
        assert ask_parts(alice, upload, number).status_code == 200
    assert len(heads) == 1
    # Form uploads are planned without a store call: the same recent answer stands for them.
    for number in range(2):
        assert alice.create(name=f"{number}.mp4", data=os.urandom(1000)).status_code == 201
    assert len(heads) == 1
    # An answer older than the trust is asked again.
    monkeypatch.setattr(storage, "_reachable_until", 0.0)
    assert alice.create(name="later.mp4", data=os.urandom(1000)).status_code == 201
    assert len(heads) == 2


@pytest.mark.parametrize("backend", ["s3"])
def test_store_down_right_after_a_trusted_answer_records_no_file(
    alice: ApiClient, live_server: LiveServer, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = get_storage(live_server.app)
    monkeypatch.setattr(storage, "reachable_seconds", 3600.0)  # trusted however slow the test
    data = os.urandom(BIG)
    upload = alice.create(name="trusted.mkv", data=data).json()["upload"]
    assert ask_parts(alice, upload, 1).status_code == 200  # S3 answered: trusted now
    before = [(u.id, u.multipart_id, u.completing_since)
              for u in rows(live_server.app, PendingUpload)]
    outage.begin()
    # Trusted, part URLs are signed (offline) and the page's PUTs fail; nothing is kept.
    assert ask_parts(alice, upload, 2).status_code == 200
    # A form upload is planned too: its transfer fails in the browser, and the pending
    # upload, no file, waits for a retry or expires.
    planned = alice.create(name="planned.mkv", data=os.urandom(SMALL))
    assert planned.status_code == 201, planned.text
    before.append((planned.json()["upload"]["id"], None, None))
    # Starting a multipart upload is a store call: the real error path, a clear 503...
    assert_unavailable(alice.create(name="second.mkv", data=os.urandom(BIG)))
    # ...which ends the trust: part URLs and form uploads are refused from then on.
    assert_unavailable(ask_parts(alice, upload, 2))
    assert_unavailable(alice.create(name="small.mkv", data=os.urandom(SMALL)))
    # (Resuming a multipart upload asks the store anyway whether its parts are still there.)
    assert_unavailable(alice.create(name="trusted.mkv", data=data))
    assert sorted((u.id, u.multipart_id or "", u.completing_since)
                  for u in rows(live_server.app, PendingUpload)) == sorted(
        (i, m or "", c) for i, m, c in before)
    assert rows(live_server.app, StoredFile) == []
    outage.end()
    assert ask_parts(alice, upload, 2).status_code == 200
    assert alice.create(name="small.mkv", data=os.urandom(SMALL)).status_code == 201


def test_cancel_and_delete_with_the_store_down_forget_nothing(
    alice: ApiClient, live_server: LiveServer, outage: Outage
) -> None:
    storage = get_storage(live_server.app)
    kept = alice.upload(name="keep.mp4", data=os.urandom(1000))["file"]
    data = os.urandom(BIG)
    upload = alice.create(name="cancel.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1])
    row = pending(live_server.app, upload["id"])
    assert row is not None and row.multipart_id
    outage.begin()
    assert_unavailable(alice.api("DELETE", f"/uploads/{upload['id']}"))
    assert_unavailable(alice.api("DELETE", f"/files/{kept['id']}"))
    # Forgetting the rows while the store still holds the bytes would orphan them.
    assert [f.id for f in rows(live_server.app, StoredFile)] == [kept["id"]]
    assert pending(live_server.app, upload["id"]) is not None
    outage.end()
    assert alice.api("DELETE", f"/uploads/{upload['id']}").status_code == 204
    assert alice.api("DELETE", f"/files/{kept['id']}").status_code == 204
    assert keys(storage) == set()
    assert multipart_gone(storage, key=row.key, upload_id=row.multipart_id)


def test_subtitles_with_the_store_down_are_refused_and_attached_once_it_is_back(
    alice: ApiClient, live_server: LiveServer, outage: Outage
) -> None:
    """A subtitle is planned, uploaded and attached like a movie: the store down means a
    clear 503 at each step, nothing half-recorded, and the upload completes after."""
    movie = alice.upload(name="Film.mp4", data=os.urandom(1000))["file"]
    cues = b"1\n00:00:01,000 --> 00:00:02,500\nHello there.\n"

    def start(name: str) -> requests.Response:
        return alice.api("POST", f"/files/{movie['id']}/subtitles", json={
            "name": name, "size": len(cues), "sha256": sha256_of(cues),
            "content_type": "application/x-subrip",
        })

    outage.begin()
    assert_unavailable(start("Film.en.srt"))
    assert rows(live_server.app, PendingUpload) == [] and rows(live_server.app, Subtitle) == []
    outage.end()
    created = start("Film.en.srt")
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    send_bytes(alice, upload, cues)
    outage.begin()
    assert_unavailable(alice.complete(upload["id"]))
    assert pending(live_server.app, upload["id"]) is not None  # kept for the retry
    assert rows(live_server.app, Subtitle) == []
    outage.end()
    done = alice.complete(upload["id"])
    assert done.status_code == 201, done.text
    assert [s.file_id for s in rows(live_server.app, Subtitle)] == [movie["id"]]
    assert pending(live_server.app, upload["id"]) is None


# --- the app restarts -----------------------------------------------------------------------


def test_multipart_upload_resumes_after_the_app_restarts(
    app: Flask, app_config: dict[str, Any], server_port: int
) -> None:
    make_user(app, "alice")
    data = os.urandom(16 * MIB)  # four parts
    with serving(app, port=server_port, threads=4) as first:
        alice = first.client_for("alice")
        upload = alice.create(name="restart.mkv", data=data).json()["upload"]
        early = alice.put_parts(upload, data, [1, 2])
    with pytest.raises(requests.ConnectionError):
        alice.api("GET", "/files")

    # A new process: same database, same bucket, same secret key; nothing kept in memory.
    restarted = create_app(app_config)
    with serving(restarted, port=server_port, threads=4):
        # The session signed before the restart is still valid.
        again = alice.create(name="restart.mkv", data=data)
        assert again.status_code == 200, again.text
        assert again.json()["upload"]["id"] == upload["id"]
        held = {p["part_number"]: p["etag"] for p in alice.status(upload["id"])["uploaded_parts"]}
        assert held == early
        rest = alice.put_parts(upload, data, [3, 4])
        final = alice.complete(upload["id"], held | rest)
        assert final.status_code == 201, final.text
        got = download(alice, final.json()["file"]["id"])
        assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert rows(restarted, PendingUpload) == []


def test_completion_cut_short_by_a_crash_is_taken_over_after_its_lease(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(SMALL)
    upload = alice.create(name="crash.mp4", data=data).json()["upload"]
    send_bytes(alice, upload, data)

    def claimed(at: Any) -> None:
        """Mark the upload as being completed since `at`, as a worker that died would."""
        with db.session_scope(live_server.app) as session:
            row = session.get(PendingUpload, upload["id"])
            assert row is not None
            row.completing_since = at
            session.add(row)
            session.commit()

    claimed(utcnow())
    monkeypatch.setattr(completion, "COMPLETION_WAIT_SECONDS", 0.5)
    busy = alice.complete(upload["id"])
    assert busy.status_code == 409, busy.text
    assert "being completed" in busy.json()["error"]
    assert rows(live_server.app, StoredFile) == []
    assert pending(live_server.app, upload["id"]) is not None
    claimed(utcnow() - claims.COMPLETION_LEASE - timedelta(seconds=1))
    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text


def test_a_complete_stopped_once_the_store_joined_the_parts_is_finished_by_the_next(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """The process completing an upload is stopped (a restart) after the store joined the
    parts and before the file was recorded: uploading the file again resumes the upload,
    sends nothing, and records the joined object."""
    app = live_server.app
    data = os.urandom(BIG)
    upload = alice.create(name="restarted.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1, 2, 3])
    storage = get_storage(app)
    with db.session_scope(app) as session:
        row = session.get(PendingUpload, upload["id"])
        assert row is not None and row.multipart_id is not None
        parts = storage.list_parts(key=row.key, upload_id=row.multipart_id)
        storage.complete_multipart(
            key=row.key, upload_id=row.multipart_id,
            parts=[(part.part_number, part.etag) for part in parts],
            checksums={part.part_number: part.checksum for part in parts if part.checksum},
        )
    _age_claim(app, upload["id"])  # the claim of the process that was stopped

    status = alice.status(upload["id"])
    assert [(p["part_number"], p["size"]) for p in status["uploaded_parts"]] == [
        (1, 5 * MIB), (2, 5 * MIB), (3, 1 * MIB)
    ]
    final = alice.upload(name="restarted.mkv", data=data)
    assert final["file"]["name"] == "restarted.mkv" and "duplicate" not in final
    got = download(alice, final["file"]["id"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert rows(app, PendingUpload) == []


def test_a_joined_object_of_another_size_is_refused(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """The joined object is checked like one sent whole: other bytes there than declared
    (a store gone wrong) are refused, and nothing is recorded."""
    app = live_server.app
    data = os.urandom(BIG)
    upload = alice.create(name="short.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1, 2, 3])
    storage = get_storage(app)
    row = pending(app, upload["id"])
    assert row is not None and row.multipart_id is not None
    storage.abort_multipart(key=row.key, upload_id=row.multipart_id)
    storage.put(key=row.key, stream=io.BytesIO(data[:-1]), size=len(data) - 1,
                content_type="video/x-matroska")
    refused = alice.complete(upload["id"])
    assert refused.status_code == 422, refused.text
    assert "no object of its size" in refused.json()["error"]
    assert rows(app, StoredFile) == [] and rows(app, PendingUpload) == []
    assert storage.object_size(row.key) is None  # removed with the upload


def test_adding_a_file_again_whose_parts_the_store_removed_starts_a_new_upload(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """The store's clean-up of old multipart uploads removed the parts of one the page left
    pending: adding the same file again starts over, where resuming it failed every time."""
    app = live_server.app
    data = os.urandom(BIG)
    upload = alice.create(name="again.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1])
    row = pending(app, upload["id"])
    assert row is not None and row.multipart_id is not None
    get_storage(app).abort_multipart(key=row.key, upload_id=row.multipart_id)
    done = alice.upload(name="again.mkv", data=data)
    assert done["file"]["name"] == "again.mkv"
    assert pending(app, upload["id"]) is None and rows(app, PendingUpload) == []
    got = download(alice, done["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)


def test_a_complete_after_a_cancel_that_aborted_the_parts_records_nothing(
    alice: ApiClient, live_server: LiveServer
) -> None:
    """Parts gone and no object: the upload was aborted, so complete refuses it (422) and
    forgets it, where it used to keep it for a complete that could never succeed."""
    app = live_server.app
    data = os.urandom(BIG)
    upload = alice.create(name="aborted.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1, 2, 3])
    row = pending(app, upload["id"])
    assert row is not None and row.multipart_id is not None
    get_storage(app).abort_multipart(key=row.key, upload_id=row.multipart_id)
    refused = alice.complete(upload["id"])
    assert refused.status_code == 422, refused.text
    assert "parts are gone" in refused.json()["error"]
    assert rows(app, PendingUpload) == [] and rows(app, StoredFile) == []


class SlowJoin:
    """The store's joining of the parts, held at a gate per call (the first, the second)."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = storage.complete_multipart
        self.inside = [threading.Event(), threading.Event()]
        self.go = [threading.Event(), threading.Event()]
        self.down: set[int] = set()  # the calls that find the store down once let go
        self.calls = 0
        self.in_transaction: list[bool] = []  # whether the request held one while joining
        monkeypatch.setattr(storage, "complete_multipart", self)

    def __call__(self, **arguments: Any) -> None:
        number, self.calls = self.calls, self.calls + 1
        self.in_transaction.append(db.session().in_transaction())
        self.inside[number].set()
        assert self.go[number].wait(30)
        if number in self.down:
            raise StorageUnavailable("The storage cannot be reached right now.")
        self.real(**arguments)


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    """Start `call` in a thread; the list receives its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    return thread, result


def _claimed_since(app: Flask, upload_id: str) -> Any:
    """When the upload's claim was last taken or renewed."""
    with db.session_scope(app) as session:
        row = session.get(PendingUpload, upload_id)
        assert row is not None
        return row.completing_since


def _age_claim(app: Flask, upload_id: str) -> None:
    """Make the upload's claim older than the lease, as renewals that never came would."""
    with db.session_scope(app) as session:
        row = session.get(PendingUpload, upload_id)
        assert row is not None
        row.completing_since = utcnow() - claims.COMPLETION_LEASE - timedelta(seconds=1)
        session.add(row)
        session.commit()


def _joining(
    alice: ApiClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> tuple[bytes, dict[str, Any], dict[int, str], SlowJoin, tuple[threading.Thread, list[Any]]]:
    """A multipart upload whose complete is held while the store joins the parts: the data,
    upload, ETags, gates and the complete's thread."""
    data = os.urandom(BIG)
    upload = alice.create(name="long.mkv", data=data).json()["upload"]
    etags = alice.put_parts(upload, data, [1, 2, 3])
    join = SlowJoin(get_storage(app), monkeypatch)
    first = _in_thread(lambda: alice.complete(upload["id"], etags))
    assert join.inside[0].wait(30)
    return data, upload, etags, join, first


def test_a_complete_whose_lease_ran_out_leaves_the_upload_to_the_one_that_took_it_over(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A complete still joining the parts when its lease ran out (its renewals failed), and
    a retried complete taking the upload over: the first, done joining, records nothing
    and answers 409; the second records the object the first joined. No movie is deleted,
    none recorded twice."""
    app = live_server.app
    data, upload, etags, join, (first, first_answer) = _joining(alice, app, monkeypatch)
    _age_claim(app, upload["id"])
    second, second_answer = _in_thread(lambda: alice.complete(upload["id"], etags))
    assert join.inside[1].wait(30)
    join.go[0].set()  # the first joins the parts, then finds its claim gone
    first.join(30)
    assert first_answer[0].status_code == 409, first_answer[0].text
    assert "taken over" in first_answer[0].json()["error"]
    assert rows(app, StoredFile) == []
    join.go[1].set()  # the second finds the parts joined already
    second.join(30)
    assert second_answer[0].status_code == 201, second_answer[0].text
    got = download(alice, second_answer[0].json()["file"]["id"])
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert rows(app, PendingUpload) == [] and len(rows(app, StoredFile)) == 1
    again = alice.complete(upload["id"], etags)  # the first's page, retrying
    assert again.status_code == 200 and again.json()["file"]["id"] == got_id(second_answer)


def test_a_complete_that_lost_its_claim_leaves_the_new_holder_s_claim_alone(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The complete whose lease ran out then finds the store down: it releases only its own
    claim, so the one that took the upload over keeps it (and no third joins beside it)."""
    app = live_server.app
    data, upload, etags, join, (first, first_answer) = _joining(alice, app, monkeypatch)
    _age_claim(app, upload["id"])
    second, second_answer = _in_thread(lambda: alice.complete(upload["id"], etags))
    assert join.inside[1].wait(30)
    taken = _claimed_since(app, upload["id"])
    join.down.add(0)
    join.go[0].set()
    first.join(30)
    assert first_answer[0].status_code == 503, first_answer[0].text
    assert _claimed_since(app, upload["id"]) == taken
    join.go[1].set()
    second.join(30)
    assert second_answer[0].status_code == 201, second_answer[0].text
    assert join.calls == 2


def test_a_complete_stuck_in_the_store_stops_renewing_its_claim_after_a_while(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store call that does not return (an NFS mount gone) keeps its claim renewed only
    for KEPT_AT_MOST: then a retried complete takes the upload over and records it, and
    the stuck one, when it returns, records nothing."""
    app = live_server.app
    lease = timedelta(seconds=0.5)
    monkeypatch.setattr(claims, "COMPLETION_LEASE", lease)
    monkeypatch.setattr(claims, "RENEW_EVERY", timedelta(seconds=0.05))
    monkeypatch.setattr(claims, "KEPT_AT_MOST", timedelta(seconds=0.3))
    data, upload, etags, join, (first, first_answer) = _joining(alice, app, monkeypatch)
    deadline = time.monotonic() + 10
    while _claimed_since(app, upload["id"]) > utcnow() - lease:
        assert time.monotonic() < deadline, "the claim is still renewed"
        time.sleep(0.05)
    second, second_answer = _in_thread(lambda: alice.complete(upload["id"], etags))
    assert join.inside[1].wait(30)
    join.go[1].set()
    second.join(30)
    assert second_answer[0].status_code == 201, second_answer[0].text
    join.go[0].set()
    first.join(30)
    assert first_answer[0].status_code == 200, first_answer[0].text  # the file, recorded
    assert got_id(first_answer) == got_id(second_answer)
    assert len(rows(app, StoredFile)) == 1 and rows(app, PendingUpload) == []


def got_id(answer: list[Any]) -> int:
    """The id of the file a complete's answer holds."""
    return int(answer[0].json()["file"]["id"])


def test_no_transaction_stays_open_while_the_store_joins_the_parts(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The join may take minutes: an upload hashed while it was sent (whose complete looks
    for a file of its hash first) holds no transaction open meanwhile, which PostgreSQL's
    idle_in_transaction_session_timeout would end."""
    data = os.urandom(BIG)
    upload = alice.create(name="unhashed.mkv", data=data, hashed=False).json()["upload"]
    alice.put_parts(upload, data, [1, 2, 3])
    join = SlowJoin(get_storage(live_server.app), monkeypatch)
    join.go[0].set()
    done = alice.complete(upload["id"], sha256=sha256_of(data))
    assert done.status_code == 201, done.text
    assert join.in_transaction == [False]


def test_a_complete_keeps_its_claim_while_the_store_joins_the_parts(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Joining a big movie's parts outlasts the lease: the claim is renewed meanwhile, so a
    retried complete waits instead of joining the parts a second time."""
    app = live_server.app
    lease = timedelta(seconds=0.5)
    monkeypatch.setattr(claims, "COMPLETION_LEASE", lease)
    monkeypatch.setattr(claims, "RENEW_EVERY", timedelta(seconds=0.05))
    monkeypatch.setattr(completion, "COMPLETION_WAIT_SECONDS", 0.2)
    data, upload, etags, join, (first, first_answer) = _joining(alice, app, monkeypatch)
    claimed = _claimed_since(app, upload["id"])
    deadline = time.monotonic() + 10
    while _claimed_since(app, upload["id"]) < claimed + 2 * lease:
        assert time.monotonic() < deadline, "the claim was not renewed"
        time.sleep(0.05)
    busy = alice.complete(upload["id"], etags)
    assert busy.status_code == 409, busy.text
    assert join.calls == 1
    join.go[0].set()
    first.join(30)
    assert first_answer[0].status_code == 201, first_answer[0].text
    assert len(rows(app, StoredFile)) == 1


# --- the same file twice at once ------------------------------------------------------------


def _race(tabs: list[ApiClient], data: bytes, *, name: str) -> list[Any]:
    """Both tabs create at the same moment, send the bytes, then complete at the same moment."""
    barrier = threading.Barrier(len(tabs), timeout=60)
    # moto breaks when two PUTs of the same part of one upload overlap (real S3 keeps the
    # last one); the race under test is create and complete, so only transfers take turns.
    transfer = threading.Lock()
    answers: list[Any] = [None] * len(tabs)

    def tab(index: int, client: ApiClient) -> None:
        """One tab's whole upload; every tab passes both barriers whatever it was told."""
        try:
            barrier.wait()
            created = client.create(name=name, data=data)
            body = created.json()
            etags = None
            if "upload" in body:
                with transfer:
                    etags = send_bytes(client, body["upload"], data)
            barrier.wait()
            if "upload" not in body:
                answers[index] = ("create", created.status_code, body)
                return
            final = client.complete(body["upload"]["id"], etags)
            answers[index] = ("complete", final.status_code, final.json())
        except BaseException as error:
            answers[index] = ("failed", 0, repr(error))
            barrier.abort()  # do not leave the other tab waiting

    threads = [threading.Thread(target=tab, args=(i, c)) for i, c in enumerate(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["post", "multipart"])
def test_same_file_twice_at_once_becomes_one_file_and_one_duplicate(
    live_server: LiveServer, size: int
) -> None:
    make_user(live_server.app, "alice")
    tabs = [
        live_server.client_for("alice") for _ in range(2)
    ]
    storage = get_storage(live_server.app)
    for round_ in range(5):
        data = os.urandom(size)
        answers = _race(tabs, data, name=f"race {round_}.mkv")
        assert all(a is not None for a in answers), answers
        statuses = sorted(status for _, status, _ in answers)
        assert statuses == [200, 201], answers
        winner = next(body for _, status, body in answers if status == 201)
        loser = next(body for _, status, body in answers if status == 200)
        assert loser == {"duplicate": True, "file": winner["file"]}

        files = [f for f in rows(live_server.app, StoredFile) if f.sha256 == sha256_of(data)]
        assert len(files) == 1, (round_, files)
        assert rows(live_server.app, PendingUpload) == []
        assert keys(storage) == {f.key for f in rows(live_server.app, StoredFile)}
        assert len(keys(storage)) == round_ + 1
        if storage.kind == "s3":
            assert open_multipart_uploads(storage) == []


def test_create_that_finds_the_file_late_hands_no_upload_to_a_third_request(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two creates both look before the file is recorded; neither may get an upload.

    Replays an interleaving that once let the second create resume a pending row the
    first had just inserted and was about to drop, so its complete answered 404.
    """
    data = os.urandom(SMALL)
    first = alice.upload(name="first.mkv", data=data)["file"]
    other = live_server.client_for("alice")
    real_find = uploads.library.find_by_sha256
    calls: list[str] = []
    answers: list[requests.Response] = []

    def late_find(*, session: Any, owner_id: int, sha256: str) -> StoredFile | None:
        """Miss the file at each create's first look; let the other create run meanwhile."""
        calls.append(sha256)
        if len(calls) in (1, 3):
            return None  # as if the file were recorded just after this look
        if len(calls) == 2:
            # While the first create looks again, the second one runs. It waits on the
            # first's write transaction, so give it up to a few seconds, then go on.
            racer = threading.Thread(
                target=lambda: answers.append(other.create(name="third.mkv", data=data))
            )
            racer.start()
            racer.join(timeout=3)
        return real_find(session=session, owner_id=owner_id, sha256=sha256)

    monkeypatch.setattr(uploads.library, "find_by_sha256", late_find)
    mine = alice.create(name="second.mkv", data=data)
    deadline = time.monotonic() + 30
    while not answers and time.monotonic() < deadline:
        time.sleep(0.05)
    monkeypatch.undo()

    assert len(calls) >= 3, calls
    assert mine.status_code == 200 and mine.json() == {"duplicate": True, "file": first}
    assert [a.status_code for a in answers] == [200], [a.text for a in answers]
    assert answers[0].json() == {"duplicate": True, "file": first}
    assert rows(live_server.app, PendingUpload) == []
    files = rows(live_server.app, StoredFile)
    assert len(files) == 1 and keys(get_storage(live_server.app)) == {files[0].key}


# --- a client lies at complete --------------------------------------------------------------


def test_complete_without_an_object_forgets_the_upload(
    alice: ApiClient, live_server: LiveServer
) -> None:
    upload = alice.create(name="ghost.mp4", data=b"never sent").json()["upload"]
    answer = alice.complete(upload["id"])
    assert answer.status_code == 422
    assert answer.json()["error"] == "No object was uploaded for this upload."
    assert rows(live_server.app, StoredFile) == []
    assert rows(live_server.app, PendingUpload) == []
    assert alice.api("GET", f"/uploads/{upload['id']}").status_code == 404


@pytest.mark.parametrize("extra", [-1, 1, 5000], ids=["short", "one-more", "much-more"])
def test_form_upload_of_another_size_is_refused_and_deleted(
    alice: ApiClient, live_server: LiveServer, extra: int
) -> None:
    upload, sent, posted = post_form_of_another_size(alice, extra)
    answer = alice.complete(upload["id"])
    assert answer.status_code == 422
    if get_storage(live_server.app).kind == "local":
        # The local store holds a form to its signed size itself, as S3 does (moto does not).
        assert posted.status_code == 400, posted.text
        assert answer.json()["error"] == "No object was uploaded for this upload."
    else:
        assert f"{sent} bytes" in answer.json()["error"]
    assert rows(live_server.app, StoredFile) == []
    assert rows(live_server.app, PendingUpload) == []
    assert keys(get_storage(live_server.app)) == set()


def _lie_about_parts(
    alice: ApiClient,
    live_server: LiveServer,
    declare: Any,
    *,
    sizes: dict[int, int] | None = None,
    sent: tuple[int, ...] = (1, 2, 3),
) -> tuple[Any, PendingUpload]:
    """Upload parts `sent` (some with other sizes), then complete with `declare(etags)`.

    `declare` returning None completes without a part list (the app uses the store's).
    """
    data = os.urandom(BIG)
    upload = alice.create(name="parts.mkv", data=data).json()["upload"]
    row = pending(live_server.app, upload["id"])
    assert row is not None
    etags: dict[int, str] = {}
    part = upload["part_size"]
    for number, signed in alice.sign_parts(upload, list(sent), data).items():
        body = data[(number - 1) * part : number * part]
        if sizes and number in sizes:
            body = os.urandom(sizes[number])
        answer = signed.put(body)
        if sizes and number in sizes and get_storage(live_server.app).kind == "local":
            # The local store binds a part URL to the part's exact size: refused at once.
            assert answer.status_code == 400, answer.text
            etags[number] = '"' + "0" * 32 + '"'  # the client claims it anyway
            continue
        answer.raise_for_status()
        etags[number] = answer.headers["ETag"]
    parts = declare(etags)
    body = {} if parts is None else {"parts": parts}
    answer = alice.api("POST", f"/uploads/{upload['id']}/complete", json=body)
    return answer, row


def _assert_refused_and_cleaned(
    answer: requests.Response, row: PendingUpload, live_server: LiveServer, message: str
) -> None:
    """422 naming the problem; no file, no pending upload, no object, no multipart upload."""
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]
    storage = get_storage(live_server.app)
    assert rows(live_server.app, StoredFile) == []
    assert rows(live_server.app, PendingUpload) == []
    assert storage.object_size(row.key) is None
    assert row.multipart_id
    assert multipart_gone(storage, key=row.key, upload_id=row.multipart_id)


def _listed(etags: dict[int, str]) -> list[dict[str, Any]]:
    """The honest parts list."""
    return [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]


def test_wrong_part_etag_is_refused_and_the_multipart_upload_aborted(
    alice: ApiClient, live_server: LiveServer
) -> None:
    def declare(etags: dict[int, str]) -> list[dict[str, Any]]:
        parts = _listed(etags)
        parts[1]["etag"] = '"0123456789abcdef0123456789abcdef"'
        return parts

    answer, row = _lie_about_parts(alice, live_server, declare)
    _assert_refused_and_cleaned(answer, row, live_server, "Part 2")
    # The upload is gone: asking for it is a 404 now.
    assert alice.api("GET", f"/uploads/{row.id}").status_code == 404


def test_swapped_part_etags_are_refused(alice: ApiClient, live_server: LiveServer) -> None:
    def declare(etags: dict[int, str]) -> list[dict[str, Any]]:
        return [
            {"part_number": 1, "etag": etags[2]},
            {"part_number": 2, "etag": etags[1]},
            {"part_number": 3, "etag": etags[3]},
        ]

    answer, row = _lie_about_parts(alice, live_server, declare)
    _assert_refused_and_cleaned(answer, row, live_server, "Part 1")


@pytest.mark.parametrize("missing", ["absent", "null", "empty"])
def test_part_without_an_etag_is_refused_and_the_multipart_upload_aborted(
    alice: ApiClient, live_server: LiveServer, missing: str
) -> None:
    def declare(etags: dict[int, str]) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = _listed(etags)
        if missing == "absent":
            del parts[2]["etag"]
        else:
            parts[2]["etag"] = None if missing == "null" else ""
        return parts

    answer, row = _lie_about_parts(alice, live_server, declare)
    _assert_refused_and_cleaned(answer, row, live_server, "Part 3")


def test_part_left_out_is_refused_and_the_multipart_upload_aborted(
    alice: ApiClient, live_server: LiveServer
) -> None:
    answer, row = _lie_about_parts(alice, live_server, lambda etags: _listed(etags)[:2])
    _assert_refused_and_cleaned(answer, row, live_server, "all 3 parts")


def test_part_never_sent_is_refused_when_complete_lists_no_parts(
    alice: ApiClient, live_server: LiveServer
) -> None:
    answer, row = _lie_about_parts(alice, live_server, lambda _: None, sent=(1, 3))
    _assert_refused_and_cleaned(answer, row, live_server, "all 3 parts; missing: 2.")


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "unlisted"])
@pytest.mark.parametrize(
    "sizes", [{3: 2 * MIB}, {1: 5 * MIB - 1}, {3: 1}], ids=["last-too-big", "short", "tiny-last"]
)
def test_part_of_the_wrong_size_is_refused_and_the_multipart_upload_aborted(
    alice: ApiClient, live_server: LiveServer, sizes: dict[int, int], listed: bool
) -> None:
    declare = _listed if listed else lambda _: None
    answer, row = _lie_about_parts(alice, live_server, declare, sizes=sizes)
    (number,) = sizes
    local = get_storage(live_server.app).kind == "local"
    if local:  # the local store refused the part at once: it was never uploaded
        expected = f"Part {number} was never uploaded" if listed else f"missing: {number}."
    else:
        expected = f"Part {number} holds"
    _assert_refused_and_cleaned(answer, row, live_server, expected)


# --- presigned URLs expire ------------------------------------------------------------------


def _query(url: str) -> dict[str, list[str]]:
    """A URL's query parameters."""
    return parse_qs(urlsplit(url).query)


def test_expired_part_urls_are_replaced_by_fresh_ones(
    alice: ApiClient, live_server: LiveServer
) -> None:
    override_settings(live_server.app, url_expires=2)
    storage = get_storage(live_server.app)
    data = os.urandom(BIG)
    upload = alice.create(name="slow.mkv", data=data).json()["upload"]
    stale = alice.sign_parts(upload, [1, 2, 3], data)
    if storage.kind == "s3":
        assert all(_query(part.url)["X-Amz-Expires"] == ["2"] for part in stale.values())
    time.sleep(2.5)
    if storage.kind != "s3":  # moto does not enforce expiry; the local store does
        late = stale[1].put(data[: 5 * MIB])
        assert late.status_code == 403, late.text
    fresh = alice.sign_parts(upload, [1, 2, 3], data)
    assert all(fresh[n].url != stale[n].url for n in (1, 2, 3))
    if storage.kind == "s3":
        assert all(
            _query(fresh[n].url)["X-Amz-Date"] != _query(stale[n].url)["X-Amz-Date"]
            for n in fresh
        )
    # Sending 15 MiB may take longer than 2 s on a busy machine: sign the parts that
    # finish the upload for an ordinary lifetime.
    override_settings(live_server.app, url_expires=3600)
    etags = alice.put_parts(upload, data, [1, 2, 3])
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    got = download(alice, final.json()["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)


def _post_expiry(upload: dict[str, Any]) -> str:
    """When an S3 form upload's policy expires."""
    policy = json.loads(base64.b64decode(upload["post"]["fields"]["policy"]))
    return policy["expiration"]


def test_expired_form_upload_gets_fresh_fields_for_the_same_upload(
    alice: ApiClient, live_server: LiveServer
) -> None:
    override_settings(live_server.app, url_expires=2)
    storage = get_storage(live_server.app)
    data = os.urandom(SMALL)
    stale = alice.create(name="form.mp4", data=data).json()["upload"]
    time.sleep(2.5)
    if storage.kind != "s3":
        late = alice.post_form(stale, data)
        assert late.status_code == 403, late.text
    again = alice.create(name="form.mp4", data=data)
    assert again.status_code == 200
    fresh = again.json()["upload"]
    assert fresh["id"] == stale["id"]
    assert fresh["post"] != stale["post"]
    if storage.kind == "s3":
        assert _post_expiry(fresh) > _post_expiry(stale)
    alice.post_form(fresh, data).raise_for_status()
    final = alice.complete(fresh["id"])
    assert final.status_code == 201, final.text


def test_download_urls_expire_after_url_expires(alice: ApiClient, live_server: LiveServer) -> None:
    override_settings(live_server.app, url_expires=2)
    storage = get_storage(live_server.app)
    data = os.urandom(1000)
    file_id = alice.upload(name="short.mp4", data=data)["file"]["id"]
    redirect = alice.http.get(f"{alice.base}/files/{file_id}/download", allow_redirects=False)
    url = urljoin(alice.base, redirect.headers["Location"])
    if storage.kind == "s3":
        assert _query(url)["X-Amz-Expires"] == ["2"]
    else:
        time.sleep(2.5)
        late = requests.get(url, timeout=60)
        assert late.status_code == 403 and "expired" in late.json()["error"]
        assert download(alice, file_id).content == data


# --- abandoned uploads ----------------------------------------------------------------------


def test_gc_aborts_expired_uploads_in_the_store_and_forgets_them(
    alice: ApiClient, live_server: LiveServer
) -> None:
    app = live_server.app
    storage = get_storage(app)
    kept_file = alice.upload(name="done.mp4", data=os.urandom(1000))["file"]
    big = os.urandom(BIG)
    multipart = alice.create(name="abandoned.mkv", data=big).json()["upload"]
    alice.put_parts(multipart, big, [1, 2])
    small = os.urandom(SMALL)
    form = alice.create(name="abandoned.mp4", data=small).json()["upload"]
    alice.post_form(form, small).raise_for_status()  # sent, never completed
    live = alice.create(name="still working.mkv", data=os.urandom(BIG)).json()["upload"]
    rows_before = {u.id: u for u in rows(app, PendingUpload)}
    for upload_id in (multipart["id"], form["id"]):
        expire_in(app, upload_id, -timedelta(minutes=1))

    result = app.test_cli_runner().invoke(args=["gc"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 expired upload(s)." in result.output
    assert [u.id for u in rows(app, PendingUpload)] == [live["id"]]
    gone = rows_before[multipart["id"]]
    assert gone.multipart_id
    assert multipart_gone(storage, key=gone.key, upload_id=gone.multipart_id)
    assert storage.object_size(rows_before[form["id"]].key) is None
    still = rows_before[live["id"]]
    assert still.multipart_id
    assert not multipart_gone(storage, key=still.key, upload_id=still.multipart_id)
    assert [f.id for f in rows(app, StoredFile)] == [kept_file["id"]]
    assert alice.api("GET", f"/files/{kept_file['id']}").status_code == 200


def test_gc_with_the_store_down_keeps_the_uploads_and_fails_loudly(
    alice: ApiClient, live_server: LiveServer, outage: Outage
) -> None:
    data = os.urandom(BIG)
    upload = alice.create(name="abandoned.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1])
    expire_in(live_server.app, upload["id"], -timedelta(minutes=1))
    outage.begin()
    result = live_server.app.test_cli_runner().invoke(args=["gc"])
    assert result.exit_code == 1
    assert f"Could not remove {upload['id']}" in result.output
    # The row stays, so the next run can still free the parts the store holds.
    assert pending(live_server.app, upload["id"]) is not None
    outage.end()
    again = live_server.app.test_cli_runner().invoke(args=["gc"])
    assert again.exit_code == 0 and "Removed 1 expired upload(s)." in again.output
    assert rows(live_server.app, PendingUpload) == []


@pytest.mark.parametrize("backend", ["s3"])
def test_setup_bucket_applies_the_lifecycle_rule_and_cors_with_etag(
    app_config: dict[str, Any], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)  # a bucket that does not exist yet
    runner: FlaskCliRunner = app.test_cli_runner()
    result = runner.invoke(args=["setup-bucket"])
    assert result.exit_code == 0, result.output
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = app_config["S3_BUCKET"]

    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Status"] == "Enabled"
    days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
    assert days == app.config["ABORT_MULTIPART_DAYS"]
    # Longer than an upload may be resumed, so the rule never pulls parts from under a user.
    assert days * 86400 > app.config["UPLOAD_TTL"]

    (cors,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert cors["AllowedOrigins"] == [app_config["PUBLIC_URL"]]
    assert {"PUT", "POST", "GET"} <= set(cors["AllowedMethods"])
    assert "ETag" in cors["ExposeHeaders"]

    # And a browser really reads ETag from a part upload, and only from the app's origin.
    storage = get_storage(app)
    upload_id = storage.start_multipart(key="movies/cors", content_type="video/mp4")
    url = storage.part_url(key="movies/cors", upload_id=upload_id, part_number=1, size=4,
                           expires=60)
    origin = app_config["PUBLIC_URL"]
    preflight = requests.options(
        url, headers={"Origin": origin, "Access-Control-Request-Method": "PUT"}, timeout=10
    )
    assert preflight.headers.get("Access-Control-Allow-Origin") == origin
    put = requests.put(url, data=b"part", headers={"Origin": origin}, timeout=10)
    assert "ETag" in put.headers.get("Access-Control-Expose-Headers", "")
    evil = requests.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in evil.headers
    storage.abort_multipart(key="movies/cors", upload_id=upload_id)


def test_create_that_loses_to_an_upload_cancelled_meanwhile_starts_over(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create whose insert loses to another create of the same content resumes that
    upload; when that one is cancelled in between, the create starts over, never 409.

    Replays an interleaving seen with several workers: the look-up misses the other
    upload, the insert clashes with it, and it is cancelled before the create resumes it.
    """
    data = os.urandom(SMALL)
    other = alice.create(name="other-tab.mkv", data=data).json()["upload"]
    real_find = uploads._find_pending
    calls: list[int] = []

    def racing_find(**query: Any) -> PendingUpload | None:
        """Miss the other upload at first; cancel it just before it would be resumed."""
        calls.append(1)
        if len(calls) == 1:
            return None  # as if the other tab's create committed just after this look
        if len(calls) == 2:
            cancelled = alice.http.delete(f"{alice.base}/api/uploads/{other['id']}", timeout=30)
            assert cancelled.status_code == 204, cancelled.text
        return real_find(**query)

    monkeypatch.setattr(uploads, "_find_pending", racing_find)
    answer = alice.create(name="this-tab.mkv", data=data)
    monkeypatch.undo()
    assert len(calls) >= 3, calls
    assert answer.status_code == 201, answer.text
    assert answer.json()["upload"]["id"] != other["id"]
    done = alice.upload(name="this-tab.mkv", data=data)
    assert done["file"]["sha256"] == sha256_of(data)
