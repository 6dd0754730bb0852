"""Upload tokens write once: no replay after complete, cancel or delete; gc removes what
nobody refers to; a cancel racing a complete never leaves a file without its bytes.

Everything goes through the real API and the store's own URLs over HTTP, as in
tests/test_reliability.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from movievault import db, garbage
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.models import PendingUpload, StoredFile, utcnow
from movievault.storage import Storage
from tests.support import (
    MIB,
    LiveServer,
    at_once,
    download,
    expire_in,
    keys,
    multipart_gone,
    pending,
    rows,
    send_bytes,
)

SMALL = 200_000  # one form POST
MULTIPART = 6 * MIB + 4096  # over MULTIPART_THRESHOLD (6 MiB): parts of 5 MiB and the rest

local_only = pytest.mark.parametrize("backend", ["local"])


# --- helpers -------------------------------------------------------------------------------


def tmp_leftovers(storage: Storage) -> list[str]:
    """Files the local store is still receiving or forgot to clean from .tmp/."""
    return sorted(path.name for path in storage.tmp.iterdir())  # type: ignore[attr-defined]


def created(client: ApiClient, data: bytes, name: str) -> dict[str, Any]:
    """Start an upload of `data` and return it (the answer must be a new upload)."""
    answer = client.create(name=name, data=data)
    assert answer.status_code == 201, answer.text
    return answer.json()["upload"]


def sent_form(client: ApiClient, name: str) -> tuple[dict[str, Any], bytes]:
    """A form upload of random bytes, sent but not completed: the upload and its bytes."""
    data = os.urandom(SMALL)
    upload = created(client, data, name)
    assert client.post_form(upload, data).status_code == 204
    return upload, data


# --- the local store writes an object once, only while its upload is pending ---------------


@local_only
def test_form_token_replayed_after_complete_cannot_replace_the_movie(
    alice: ApiClient, live_server: LiveServer
) -> None:
    storage = get_storage(live_server.app)
    upload, data = sent_form(alice, "kept.mp4")
    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text
    recorded = final.json()["file"]
    (row,) = rows(live_server.app, StoredFile)

    # The same token, other bytes of the same size: the signature alone would still pass.
    replay = alice.post_form(upload, os.urandom(SMALL))
    assert replay.status_code == 403, replay.text
    assert "AccessDenied" in replay.json()["error"]
    assert storage.object_sha256(row.key) == recorded["sha256"] == sha256_of(data)
    assert hashlib.sha256(download(alice, recorded["id"]).content).hexdigest() == sha256_of(data)
    # The very same bytes again (a client retrying after a lost answer) change nothing.
    assert alice.post_form(upload, data).status_code == 204
    assert download(alice, recorded["id"]).content == data
    assert keys(storage) == {row.key}
    assert tmp_leftovers(storage) == []


@local_only
@pytest.mark.parametrize("sent", [True, False], ids=["sent-then-cancelled", "cancelled-unsent"])
def test_form_token_replayed_after_cancel_writes_nothing(
    alice: ApiClient, live_server: LiveServer, sent: bool
) -> None:
    storage = get_storage(live_server.app)
    data = os.urandom(SMALL)
    upload = created(alice, data, "cancelled.mp4")
    if sent:
        assert alice.post_form(upload, data).status_code == 204
    assert alice.api("DELETE", f"/uploads/{upload['id']}").status_code == 204
    assert keys(storage) == set()

    replay = alice.post_form(upload, data)
    assert replay.status_code == 403, replay.text
    assert keys(storage) == set()
    assert tmp_leftovers(storage) == []
    assert rows(live_server.app, PendingUpload) == []


@local_only
def test_form_token_replayed_after_delete_writes_nothing(
    alice: ApiClient, live_server: LiveServer
) -> None:
    storage = get_storage(live_server.app)
    upload, data = sent_form(alice, "deleted.mp4")
    file_id = alice.complete(upload["id"]).json()["file"]["id"]
    assert alice.api("DELETE", f"/files/{file_id}").status_code == 204
    assert keys(storage) == set()

    for body in (data, os.urandom(SMALL)):
        replay = alice.post_form(upload, body)
        assert replay.status_code == 403, replay.text
    # Nothing the catalogue does not know about, which gc would otherwise have to find.
    assert keys(storage) == set()
    assert tmp_leftovers(storage) == []


@local_only
def test_while_pending_the_same_bytes_are_a_retry_and_other_bytes_are_refused(
    alice: ApiClient, live_server: LiveServer
) -> None:
    storage = get_storage(live_server.app)
    upload, data = sent_form(alice, "retry.mp4")
    # The answer was lost, say: the client sends the same bytes again.
    assert alice.post_form(upload, data).status_code == 204
    # Other bytes never replace an object, even before complete.
    other = alice.post_form(upload, os.urandom(SMALL))
    assert other.status_code == 403, other.text
    row = pending(live_server.app, upload["id"])
    assert row is not None and storage.object_sha256(row.key) == sha256_of(data)

    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text
    assert download(alice, final.json()["file"]["id"]).content == data
    assert tmp_leftovers(storage) == []


@local_only
def test_two_tabs_resuming_one_upload_send_identical_bytes_and_both_succeed(
    alice: ApiClient, live_server: LiveServer
) -> None:
    storage = get_storage(live_server.app)
    tabs = [alice, live_server.client_for("alice")]
    for round_ in range(3):
        data = os.urandom(SMALL)
        forms = [created(tabs[0], data, f"tabs {round_}.mp4")]
        resumed = tabs[1].create(name=f"tabs {round_}.mp4", data=data)
        assert resumed.status_code == 200, resumed.text
        forms.append(resumed.json()["upload"])
        assert forms[0]["id"] == forms[1]["id"]  # each tab holds its own copy of the form

        sent = at_once(
            partial(tabs[0].post_form, forms[0], data), partial(tabs[1].post_form, forms[1], data)
        )
        assert [status for status, _ in sent] == [204, 204], (round_, sent)

        first, second = (tabs[i].complete(forms[i]["id"]) for i in (0, 1))
        assert (first.status_code, second.status_code) == (201, 200), (first.text, second.text)
        recorded = first.json()["file"]
        assert second.json() == {"duplicate": True, "file": recorded}
        assert download(alice, recorded["id"]).content == data
        # Neither tab's token writes any more: both were for an upload now finished.
        for index in (0, 1):
            late = tabs[index].post_form(forms[index], os.urandom(SMALL))
            assert late.status_code == 403, (round_, index, late.text)
        assert download(alice, recorded["id"]).content == data
    assert len(keys(storage)) == 3
    assert tmp_leftovers(storage) == []


# --- gc removes objects that no file or pending upload refers to ----------------------------


def put_object(storage: Storage, key: str, data: bytes) -> None:
    """Write an object straight into the store, as a crash or a rogue client would leave it."""
    storage.put(key=key, stream=io.BytesIO(data), size=len(data), content_type="video/mp4")


def stray_key(owner_id: int) -> str:
    """A key like the app's own, that no row refers to."""
    return f"movies/{owner_id}/{secrets.token_hex(16)}"


def test_gc_removes_unreferenced_objects_only_once_older_than_the_grace(
    alice: ApiClient, live_server: LiveServer
) -> None:
    app = live_server.app
    storage = get_storage(app)
    grace = garbage.ORPHAN_GRACE
    kept = alice.upload(name="kept.mp4", data=os.urandom(1000))["file"]
    (kept_row,) = rows(app, StoredFile)
    # A form upload whose bytes are sent but not completed: its object has a row.
    form, _ = sent_form(alice, "pending.mp4")
    # The clock below moves past its 6 hours; the client is still on it.
    expire_in(app, form["id"], grace * 2)
    form_row = pending(app, form["id"])
    assert form_row is not None
    # A multipart upload with one part: parts are not objects, and must survive too.
    big = os.urandom(MULTIPART)
    multipart = created(alice, big, "pending.mkv")
    alice.put_parts(multipart, big, [1])
    multipart_row = pending(app, multipart["id"])
    assert multipart_row is not None and multipart_row.multipart_id

    owner = kept_row.owner_id
    stray = stray_key(owner)
    put_object(storage, stray, b"nobody wants me")
    outside = f"elsewhere/{secrets.token_hex(8)}"  # not a movie: gc looks only under movies/
    put_object(storage, outside, b"not ours to judge")
    everything = {kept_row.key, form_row.key, stray, outside}
    assert keys(storage) == everything

    def collect(at: timedelta) -> garbage.GarbageReport:
        """Run gc as if `at` had passed since now."""
        with db.session_scope(app) as session:
            return garbage.collect_garbage(session=session, storage=storage, now=utcnow() + at)

    early = collect(grace - timedelta(minutes=5))
    assert (early.expired_uploads, early.orphans, early.failures) == (0, 0, [])
    assert keys(storage) == everything

    late = collect(grace + timedelta(minutes=5))
    assert (late.expired_uploads, late.orphans, late.failures) == (0, 1, [])
    assert keys(storage) == everything - {stray}
    if storage.kind == "local":  # its SHA-256 sidecar went with it
        assert not (storage.root / (stray + ".json")).exists()  # type: ignore[attr-defined]
    assert {u.id for u in rows(app, PendingUpload)} == {form["id"], multipart["id"]}
    assert not multipart_gone(
        storage, key=multipart_row.key, upload_id=multipart_row.multipart_id
    )
    assert download(alice, kept["id"]).content and storage.object_size(kept_row.key) == 1000
    # The pending upload is still completed as usual.
    final = alice.complete(form["id"])
    assert final.status_code == 201, final.text


def test_gc_command_removes_strays_once_older_than_the_grace_and_prints_the_count(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = live_server.app
    storage = get_storage(app)
    alice.upload(name="kept.mp4", data=os.urandom(1000))
    (kept_row,) = rows(app, StoredFile)
    strays = {stray_key(kept_row.owner_id) for _ in range(2)}
    for key in strays:
        put_object(storage, key, os.urandom(500))

    fresh = app.test_cli_runner().invoke(args=["gc"])
    assert fresh.exit_code == 0, fresh.output
    assert "Removed 0 stray object(s)" in fresh.output
    assert keys(storage) == strays | {kept_row.key}

    # A day passes. Objects' times come from the store (moto's LastModified cannot be set),
    # so the catalogue's clock moves instead: gc reads it through garbage.utcnow.
    real = garbage.utcnow
    monkeypatch.setattr(
        garbage, "utcnow", lambda: real() + garbage.ORPHAN_GRACE + timedelta(minutes=5)
    )
    later = app.test_cli_runner().invoke(args=["gc"])
    assert later.exit_code == 0, later.output
    assert "Removed 0 expired upload(s)." in later.output
    assert "Removed 2 stray object(s)" in later.output
    assert keys(storage) == {kept_row.key}
    again = app.test_cli_runner().invoke(args=["gc"])
    assert again.exit_code == 0 and "Removed 0 stray object(s)" in again.output


# --- cancel racing complete -----------------------------------------------------------------

#: Latency added to the store's removals in the race below. The old cancel read the upload,
#: checked that no complete held it, then removed the bytes and the row: a complete starting
#: in between recorded a file whose object the cancel then deleted (2 in 300 tries in the
#: review). Slowing the removal down (as a busy disk or a distant bucket does) opens that
#: window in every round where the cancel reads first: against the old code 9 form rounds
#: in 16 went wrong on S3 and 16 in 16 on the local store, so 20 rounds miss it with odds
#: below 1 in 10 million. The fixed cancel claims the upload before it touches the store,
#: so there the delay only costs time (both outcomes still occur, about half each).
STORE_LATENCY = 0.3


def _slowed(real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, called after STORE_LATENCY seconds."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(STORE_LATENCY)
        return real(*args, **kwargs)

    return slow


def _cancel_and_complete_at_once(
    tabs: list[ApiClient], upload_id: str, etags: dict[int, str] | None
) -> tuple[tuple[int, str], tuple[int, str]]:
    """One tab cancels while the other completes, at the same instant."""
    cancel, complete = at_once(
        partial(tabs[0].api, "DELETE", f"/uploads/{upload_id}"),
        partial(tabs[1].complete, upload_id, etags),
    )
    return cancel, complete


@pytest.mark.parametrize(
    ("size", "rounds"), [(SMALL, 20), (MULTIPART, 3)], ids=["post", "multipart"]
)
def test_cancel_racing_complete_never_records_a_file_without_bytes(
    alice: ApiClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch,
    size: int, rounds: int,
) -> None:
    app = live_server.app
    storage = get_storage(app)
    tabs = [alice, live_server.client_for("alice")]
    monkeypatch.setattr(storage, "delete", _slowed(storage.delete))
    monkeypatch.setattr(storage, "abort_multipart", _slowed(storage.abort_multipart))
    for round_ in range(rounds):
        data = os.urandom(size)
        upload = created(alice, data, f"race {round_}.mkv")
        row = pending(app, upload["id"])
        assert row is not None
        etags = send_bytes(alice, upload, data)

        cancel, complete = _cancel_and_complete_at_once(tabs, upload["id"], etags)
        seen = (round_, cancel, complete)
        files = [f for f in rows(app, StoredFile) if f.upload_id == upload["id"]]
        assert pending(app, upload["id"]) is None, seen
        if files:
            # The complete won: the file is whole, and the cancel was told it came too late
            # (409 while the complete held the upload, 404 once it was a file).
            assert storage.object_size(files[0].key) == size, seen
            assert storage.object_sha256(files[0].key) in (None, sha256_of(data)), seen
            assert complete[0] == 201 and cancel[0] in (404, 409), seen
        else:
            # The cancel won: nothing recorded, and nothing left in the store.
            assert cancel[0] == 204 and complete[0] in (404, 422), seen
            assert storage.object_size(row.key) is None, seen
        if row.multipart_id and not files:
            assert multipart_gone(storage, key=row.key, upload_id=row.multipart_id), seen
    # Every file in the catalogue has its bytes, and the store holds nothing else.
    recorded = rows(app, StoredFile)
    assert keys(storage) == {f.key for f in recorded}
    assert all(storage.object_size(f.key) == f.size for f in recorded)
