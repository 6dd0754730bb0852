"""The whole protocol over real HTTP: the app under waitress, the store over its own URLs.

Clients that lie, stores that fail and restarts are in tests/test_reliability.py; other
users' ids in tests/test_security.py; the protocol's rules one by one in
tests/test_uploads.py and tests/test_library.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from movievault.backends import get_storage
from movievault.client import ApiClient, fingerprint_of, sha256_of
from movievault.models import PendingUpload, StoredFile
from tests import postgres
from tests.support import MIB, LiveServer, download, rows


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test runs on SQLite with both stores, and on PostgreSQL with S3."""
    postgres.parametrize_databases(metafunc)


def test_small_file_uploads_by_form_post_and_downloads_identical(alice: ApiClient) -> None:
    data = os.urandom(300_000)
    result = alice.upload(name="holiday.mp4", data=data)
    assert result["file"]["sha256"] == sha256_of(data)
    assert result["file"]["size"] == len(data)
    got = download(alice, result["file"]["id"])
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert "holiday.mp4" in got.headers["Content-Disposition"]
    assert got.headers["Content-Disposition"].startswith("attachment")


def test_multipart_upload_assembles_parts_in_order(alice: ApiClient) -> None:
    data = os.urandom(12 * MIB + 123)  # three parts of 5 MiB, 5 MiB and the rest
    created = alice.create(name="big.mkv", data=data)
    assert created.status_code == 201
    upload = created.json()["upload"]
    assert upload["method"] == "multipart"
    assert (upload["part_size"], upload["part_count"]) == (5 * MIB, 3)
    etags = alice.put_parts(upload, data, [3, 1, 2])  # order of arrival does not matter
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    got = download(alice, final.json()["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)


def test_multipart_complete_without_a_part_list_uses_what_the_store_holds(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(12 * MIB + 123)
    upload = alice.create(name="unlisted.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [2, 3, 1])
    final = alice.complete(upload["id"])  # body {}: no ETags echoed back
    assert final.status_code == 201, final.text
    got = download(alice, final.json()["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert len(list(get_storage(live_server.app).iter_keys())) == 1


def test_same_content_again_is_a_duplicate_with_no_new_object(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(50_000)
    first = alice.upload(name="a.mp4", data=data)
    keys_before = set(get_storage(live_server.app).iter_keys())
    check = alice.check([(sha256_of(data), len(data))])[0]
    assert check["duplicate"] is True and check["file"]["id"] == first["file"]["id"]
    again = alice.create(name="copy of a.mp4", data=data)
    assert again.status_code == 200
    assert again.json() == {"duplicate": True, "file": first["file"]}
    assert set(get_storage(live_server.app).iter_keys()) == keys_before


def test_multipart_resume_sends_only_missing_parts(alice: ApiClient) -> None:
    data = os.urandom(16 * MIB)  # four parts
    first = alice.create(name="resume.mkv", data=data)
    upload = first.json()["upload"]
    early = alice.put_parts(upload, data, [1, 3])
    # The tab is closed here. Later the same file is added again:
    again = alice.create(name="resume.mkv", data=data)
    assert again.status_code == 200
    assert again.json()["upload"]["id"] == upload["id"]
    status = alice.status(upload["id"])
    held = {p["part_number"]: p["etag"] for p in status["uploaded_parts"]}
    assert held == early
    assert all(p["size"] == 5 * MIB for p in status["uploaded_parts"])
    rest = alice.put_parts(upload, data, [n for n in range(1, 5) if n not in held])
    assert sorted(rest) == [2, 4]
    final = alice.complete(upload["id"], held | rest)
    assert final.status_code == 201, final.text
    assert hashlib.sha256(download(alice, final.json()["file"]["id"]).content).hexdigest() == (
        sha256_of(data)
    )


def test_cancel_aborts_and_forgets(alice: ApiClient, live_server: LiveServer) -> None:
    data = os.urandom(11 * MIB)
    upload = alice.create(name="cancel.mkv", data=data).json()["upload"]
    alice.put_parts(upload, data, [1])
    assert alice.api("DELETE", f"/uploads/{upload['id']}").status_code == 204
    assert alice.api("GET", f"/uploads/{upload['id']}").status_code == 404
    assert rows(live_server.app, PendingUpload) == []
    # Starting again creates a fresh upload.
    assert alice.create(name="cancel.mkv", data=data).status_code == 201


def test_list_search_sort_rename_and_delete(alice: ApiClient, live_server: LiveServer) -> None:
    sizes = {"Alien.mkv": 3000, "brazil.mp4": 1000, "Casablanca.avi": 2000}
    ids = {
        name: alice.upload(name=name, data=os.urandom(n))["file"]["id"]
        for name, n in sizes.items()
    }
    listing = alice.api("GET", "/files?sort=name").json()
    assert [f["name"] for f in listing["files"]] == ["Alien.mkv", "brazil.mp4", "Casablanca.avi"]
    assert (listing["total"], listing["page"], listing["pages"]) == (3, 1, 1)
    by_size = alice.api("GET", "/files?sort=-size").json()["files"]
    assert [f["size"] for f in by_size] == [3000, 2000, 1000]
    found = alice.api("GET", "/files?q=BRAZ").json()
    assert [f["name"] for f in found["files"]] == ["brazil.mp4"]

    renamed = alice.api("PATCH", f"/files/{ids['brazil.mp4']}", json={"name": "Brazil (1985).mp4"})
    assert renamed.status_code == 200
    assert renamed.json()["file"]["name"] == "Brazil (1985).mp4"
    assert alice.api("GET", f"/files/{ids['brazil.mp4']}").json()["file"]["name"] == (
        "Brazil (1985).mp4"
    )

    key_count = len(list(get_storage(live_server.app).iter_keys()))
    assert alice.api("DELETE", f"/files/{ids['Alien.mkv']}").status_code == 204
    assert alice.api("GET", f"/files/{ids['Alien.mkv']}").status_code == 404
    assert len(list(get_storage(live_server.app).iter_keys())) == key_count - 1


def test_new_file_can_be_hashed_while_uploading(alice: ApiClient, live_server: LiveServer) -> None:
    data = os.urandom(11 * MIB)
    check = alice.api(
        "POST", "/files/check",
        json={"files": [{"fingerprint": fingerprint_of(data), "size": len(data)}]},
    ).json()["results"][0]
    assert check == {
        "fingerprint": fingerprint_of(data), "size": len(data), "duplicate": False,
        "file": None, "needs_sha256": False,
    }
    created = alice.create(name="stream.mkv", data=data, hashed=False)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    assert upload["sha256"] is None and upload["method"] == "multipart"
    # Resuming finds the same pending upload by its fingerprint.
    assert alice.create(name="stream.mkv", data=data, hashed=False).json()["upload"]["id"] == (
        upload["id"]
    )
    etags = alice.put_parts(upload, data, [1, 2, 3])
    missing_hash = alice.complete(upload["id"], etags)
    assert missing_hash.status_code == 400 and "sha256" in missing_hash.json()["error"]
    final = alice.complete(upload["id"], etags, sha256=sha256_of(data))
    assert final.status_code == 201, final.text
    assert final.json()["file"]["sha256"] == sha256_of(data)
    # Now that file exists, the same fingerprint must be hashed in full first...
    again = alice.api(
        "POST", "/files/check",
        json={"files": [{"fingerprint": fingerprint_of(data), "size": len(data)}]},
    ).json()["results"][0]
    assert again["needs_sha256"] is True
    refused = alice.create(name="stream again.mkv", data=data, hashed=False)
    assert refused.status_code == 409
    # ...and then it is an ordinary duplicate.
    assert alice.create(name="stream again.mkv", data=data).json()["duplicate"] is True


def test_unhashed_upload_that_turns_out_a_duplicate_keeps_one_copy(
    alice: ApiClient, live_server: LiveServer
) -> None:
    data = os.urandom(3 * MIB)
    # A file recorded with a misleading fingerprint slips past the fingerprint gate.
    first = alice.api(
        "POST", "/uploads",
        json={"name": "a.mp4", "size": len(data), "sha256": sha256_of(data),
              "fingerprint": "0" * 64},
    ).json()["upload"]
    alice.post_form(first, data).raise_for_status()
    assert alice.complete(first["id"]).status_code == 201
    keys = set(get_storage(live_server.app).iter_keys())
    second = alice.create(name="b.mp4", data=data, hashed=False).json()["upload"]
    alice.post_form(second, data).raise_for_status()
    answer = alice.complete(second["id"], sha256=sha256_of(data))
    assert answer.status_code == 200 and answer.json()["duplicate"] is True
    assert answer.json()["file"]["name"] == "a.mp4"
    assert set(get_storage(live_server.app).iter_keys()) == keys
    assert len(rows(live_server.app, StoredFile)) == 1


def test_files_without_a_fingerprint_always_need_a_full_hash(alice: ApiClient) -> None:
    old = os.urandom(2000)
    # A client that never sends fingerprints (an older script, say).
    upload = alice.api(
        "POST", "/uploads", json={"name": "old.mp4", "size": 2000, "sha256": sha256_of(old)}
    ).json()["upload"]
    alice.post_form(upload, old).raise_for_status()
    assert alice.complete(upload["id"]).status_code == 201
    other = os.urandom(2000)
    answer = alice.api(
        "POST", "/files/check",
        json={"files": [{"fingerprint": fingerprint_of(other), "size": 2000},
                        {"fingerprint": fingerprint_of(other), "size": 2001}]},
    ).json()["results"]
    # Same size and no fingerprint on record: it might be the same bytes, hash first.
    assert [r["needs_sha256"] for r in answer] == [True, False]
