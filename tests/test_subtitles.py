"""Subtitle files on both stores: uploaded by the upload protocol, converted to WebVTT,
served to their owner only, removed with their movie or on their own, known to gc.

Conversion itself (encodings, ASS, names) is in tests/test_subtitle_files.py; subtitles
moving to S3 with `migrate-storage` in tests/test_migrate.py; the player in
tests/e2e/test_subtitles.py.
"""

from __future__ import annotations

import io
import random
import secrets
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from sqlalchemy import event
from sqlmodel import Session

from movievault import db, garbage, library, subtitles
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.locking import begin_write, owner_scope
from movievault.models import PendingUpload, StoredFile, Subtitle, utcnow
from tests import media
from tests.support import LiveServer, add_file, keys, rows, send_bytes, user_id

MOVIE = b"not really a movie, but stored like one " * 50


def start(client: ApiClient, file_id: int, name: str, data: bytes) -> requests.Response:
    """POST /api/files/<id>/subtitles for `data`."""
    return client.api("POST", f"/files/{file_id}/subtitles", json={
        "name": name, "size": len(data), "sha256": sha256_of(data),
        "content_type": "application/x-subrip",
    })


def attach(client: ApiClient, file_id: int, name: str, data: bytes) -> requests.Response:
    """Upload a subtitle file for the movie end to end; the answer of complete."""
    created = start(client, file_id, name, data)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    assert upload["method"] in ("post", "put")
    send_bytes(client, upload, data)
    return client.complete(upload["id"])


def track(client: ApiClient, url: str) -> requests.Response:
    """GET a subtitle's WebVTT from the app."""
    return client.http.get(urljoin(client.base, url), allow_redirects=False, timeout=30)


def subtitle_keys(storage: Any) -> set[str]:
    """The store's objects under the subtitles prefix."""
    return {key for key in keys(storage) if key.startswith(subtitles.PREFIX)}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes; override with `pytest.mark.parametrize("overrides", ...)`."""
    return {}


@pytest.fixture
def app_config(app_config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The shared settings, with this test's overrides applied."""
    return {**app_config, **overrides}


@pytest.fixture
def movie_id(alice: ApiClient) -> int:
    """A movie of alice's."""
    file_id: int = alice.upload(name="Film.mp4", data=MOVIE)["file"]["id"]
    return file_id


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252"])
def test_an_srt_attaches_as_webvtt_with_its_cues_and_language(
    alice: ApiClient, live_server: LiveServer, movie_id: int, encoding: str
) -> None:
    data = media.srt_text().encode(encoding)
    done = attach(alice, movie_id, "Film.en.srt", data)
    assert done.status_code == 201, done.text
    body = done.json()
    subtitle = body["subtitle"]
    assert {k: subtitle[k] for k in ("language", "label", "codec", "source")} == {
        "language": "en", "label": "English", "codec": "webvtt", "source": "file",
    }
    assert subtitle["url"].startswith(f"/files/{movie_id}/subtitles/{subtitle['id']}.vtt?v=")
    assert body["file"]["id"] == movie_id
    assert body["file"]["media"]["subtitles"] == [subtitle]
    assert alice.api("GET", f"/files/{movie_id}").json()["file"]["media"]["subtitles"] == [
        subtitle
    ]
    served = track(alice, subtitle["url"])
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "text/vtt; charset=utf-8"
    text = served.content.decode("utf-8")
    assert text.startswith("WEBVTT\n\n")
    for start_at, end_at, words in media.SRT_CUES:
        assert f"{start_at:0>6.3f} --> {end_at:0>6.3f}\n{words}\n".replace(
            f"{start_at:0>6.3f}", f"00:00:{start_at:06.3f}"
        ).replace(f"{end_at:0>6.3f}", f"00:00:{end_at:06.3f}") in text
    # The original and its WebVTT are in the store, under the server's keys.
    (row,) = rows(live_server.app, Subtitle)
    storage = get_storage(live_server.app)
    assert subtitle_keys(storage) == {row.source_key, row.vtt_key}
    assert storage.read_range(row.source_key, 0, row.source_size) == data
    assert rows(live_server.app, PendingUpload) == []
    # A repeated complete answers with the same subtitle.
    again = alice.complete(row.upload_id or "")
    assert again.status_code == 200 and again.json()["subtitle"] == subtitle


def test_the_same_file_offered_again_is_found_attached(
    alice: ApiClient, live_server: LiveServer, movie_id: int
) -> None:
    """A script run again offers a subtitle the movie has: it is found, not uploaded."""
    data = media.srt_text().encode()
    first = attach(alice, movie_id, "Film.en.srt", data).json()
    again = start(alice, movie_id, "Film.en.srt", data)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["subtitle"] == first["subtitle"]
    assert rows(live_server.app, PendingUpload) == []
    # Other bytes of the same name and size are another file: a new upload.
    edited = data.replace(b"1", b"2", 1)
    assert len(edited) == len(data)
    assert start(alice, movie_id, "Film.en.srt", edited).status_code == 201


def test_an_ass_file_attaches_with_its_cues(alice: ApiClient, movie_id: int) -> None:
    from tests.test_subtitle_files import ASS

    done = attach(alice, movie_id, "Film.fre.ass", ASS.encode("utf-8"))
    assert done.status_code == 201, done.text
    subtitle = done.json()["subtitle"]
    assert (subtitle["language"], subtitle["label"]) == ("fr", "French")
    text = track(alice, subtitle["url"]).text
    assert "00:00:00.500 --> 00:00:01.500\n<i>Bonjour</i>\nle monde" in text
    assert "a note for the translator" not in text


@pytest.mark.parametrize(
    ("name", "data"),
    [("Film.en.srt", random.Random(7).randbytes(3000)),
     ("Film.en.vtt", b"WEBVTT\n\nno cues at all\n")],
    ids=["random-bytes", "webvtt-without-cues"],  # the same ids on every xdist worker
)
def test_a_file_without_cues_is_refused_and_nothing_is_kept(
    alice: ApiClient, live_server: LiveServer, movie_id: int, name: str, data: bytes
) -> None:
    storage = get_storage(live_server.app)
    done = attach(alice, movie_id, name, data)
    assert done.status_code == 422
    assert "subtitle" in done.json()["error"].lower() or "cue" in done.json()["error"]
    assert subtitle_keys(storage) == set()
    assert rows(live_server.app, Subtitle) == [] and rows(live_server.app, PendingUpload) == []
    assert alice.api("GET", f"/files/{movie_id}").json()["file"]["media"]["subtitles"] == []


def test_wrong_kinds_and_sizes_are_refused_before_any_upload(
    alice: ApiClient, live_server: LiveServer, movie_id: int
) -> None:
    wrong = start(alice, movie_id, "Film.txt", b"1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    assert wrong.status_code == 422 and ".srt" in wrong.json()["error"]
    big = alice.api("POST", f"/files/{movie_id}/subtitles", json={
        "name": "Film.srt", "size": 6 * 1024 * 1024, "sha256": "ab" * 32,
    })
    assert big.status_code == 413 and "5 MiB" in big.json()["error"]
    unhashed = alice.api("POST", f"/files/{movie_id}/subtitles", json={
        "name": "Film.srt", "size": 10,
    })
    assert unhashed.status_code == 400 and "sha256" in unhashed.json()["error"]
    assert rows(live_server.app, PendingUpload) == []


def test_another_users_movie_and_subtitles_are_not_found(
    alice: ApiClient, bob: ApiClient, movie_id: int
) -> None:
    data = media.srt_text().encode("utf-8-sig")
    assert start(bob, movie_id, "Film.en.srt", data).status_code == 404
    assert start(alice, 999999, "Film.en.srt", data).status_code == 404
    subtitle = attach(alice, movie_id, "Film.en.srt", data).json()["subtitle"]
    assert track(bob, subtitle["url"]).status_code == 404
    path = f"/files/{movie_id}/subtitles/{subtitle['id']}"
    assert bob.api("DELETE", path).status_code == 404
    other = bob.upload(name="Other.mp4", data=MOVIE + b"bob")["file"]["id"]
    # A subtitle id under another movie's path is not found either.
    assert bob.api("DELETE", f"/files/{other}/subtitles/{subtitle['id']}").status_code == 404
    assert track(alice, subtitle["url"]).status_code == 200
    anonymous = requests.get(urljoin(alice.base, subtitle["url"]), allow_redirects=False,
                             timeout=30)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_removing_a_subtitle_or_its_movie_removes_its_objects(
    alice: ApiClient, live_server: LiveServer, movie_id: int
) -> None:
    storage = get_storage(live_server.app)
    data = media.srt_text().encode("utf-8-sig")
    first = attach(alice, movie_id, "Film.en.srt", data).json()["subtitle"]
    attach(alice, movie_id, "Film.de.srt", media.srt_text().encode("cp1252"))
    assert len(subtitle_keys(storage)) == 4
    assert alice.api("DELETE", f"/files/{movie_id}/subtitles/{first['id']}").status_code == 204
    assert len(subtitle_keys(storage)) == 2
    assert track(alice, first["url"]).status_code == 404
    # An unfinished subtitle upload goes with its movie too.
    unfinished = start(alice, movie_id, "Film.fr.srt", b"1\n00:00:01,000 --> 00:00:02,000\nx\n")
    send_bytes(alice, unfinished.json()["upload"], b"1\n00:00:01,000 --> 00:00:02,000\nx\n")
    assert len(subtitle_keys(storage)) == 3
    assert alice.api("DELETE", f"/files/{movie_id}").status_code == 204
    assert subtitle_keys(storage) == set()
    assert rows(live_server.app, Subtitle) == [] and rows(live_server.app, PendingUpload) == []


def test_gc_keeps_subtitles_and_removes_subtitle_objects_no_row_names(
    alice: ApiClient, live_server: LiveServer, movie_id: int
) -> None:
    app = live_server.app
    storage = get_storage(app)
    subtitle = attach(alice, movie_id, "Film.en.srt", media.srt_text().encode()).json()
    stray = f"{subtitles.PREFIX}1/{movie_id}-{'0' * 24}-vtt"
    storage.put(key=stray, stream=io.BytesIO(b"WEBVTT\n"), size=7, content_type="text/vtt")
    kept = subtitle_keys(storage) - {stray}
    assert len(kept) == 2
    with db.session_scope(app) as session:
        report = garbage.collect_garbage(
            session=session, storage=storage,
            now=utcnow() + garbage.ORPHAN_GRACE + timedelta(minutes=5),
        )
    assert (report.orphans, report.failures) == (1, [])
    assert subtitle_keys(storage) == kept
    assert track(alice, subtitle["subtitle"]["url"]).status_code == 200


@pytest.mark.parametrize("overrides", [{"MAX_PENDING_UPLOADS": 2}])
@pytest.mark.parametrize("backend", ["local"])  # the lock is the catalogue's
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_subtitle_start_waits_for_the_owners_lock_and_the_cap_holds(
    alice: ApiClient, live_server: LiveServer, movie_id: int
) -> None:
    """Another process is starting alice's last allowed upload, under her lock, when a
    subtitle start passes its first look at the cap: the start waits for that process and
    is refused, rather than inserting a third pending upload beside it."""
    app = live_server.app
    assert start(alice, movie_id, "Film.en.srt", b"1").status_code == 201  # one of two
    (movie,) = rows(app, StoredFile)
    other = db.make_engine(app.config["DATABASE_URL"])  # another process's
    reached = threading.Event()

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """The start is past its first check: about to lock, or (unlocked) to insert."""
        if statement.startswith(("BEGIN IMMEDIATE", "INSERT INTO pending_upload")) or (
            "pg_advisory_xact_lock" in statement
        ):
            reached.set()

    answers: list[requests.Response] = []
    racing = threading.Thread(
        target=lambda: answers.append(start(alice, movie_id, "Film.de.srt", b"2"))
    )
    try:
        with Session(other) as session:
            begin_write(session, owner_scope(movie.owner_id))
            session.add(PendingUpload(
                id=secrets.token_urlsafe(16), owner_id=movie.owner_id, sha256="ab" * 32,
                size=1000, name="Other.mp4", content_type="video/mp4",
                key=f"movies/{movie.owner_id}/{secrets.token_hex(16)}", method="post",
                expires_at=utcnow() + timedelta(hours=1),
            ))
            session.flush()
            event.listen(db.engine_of(app), "before_cursor_execute", note)
            racing.start()
            assert reached.wait(timeout=30)
            session.commit()  # the other process's upload is the second of two
        racing.join(timeout=60)
    finally:
        event.remove(db.engine_of(app), "before_cursor_execute", note)
        racing.join(timeout=60)
        other.dispose()
    assert [answer.status_code for answer in answers] == [413], [a.text for a in answers]
    assert "2 unfinished uploads" in answers[0].text
    assert sorted(u.name for u in rows(app, PendingUpload)) == ["Film.en.srt", "Other.mp4"]


def test_a_subtitle_whose_movie_is_deleted_while_it_converts_goes_to_no_other_movie(
    alice: ApiClient, bob: ApiClient, live_server: LiveServer, movie_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alice deletes her movie while its subtitle converts, and a movie of bob's is recorded
    under its id (SQLite gave ids again before revision 0009; a catalogue edited by hand
    still could): the subtitle is attached to no movie, and alice hears hers is gone."""
    app = live_server.app
    data = media.srt_text().encode()
    created = start(alice, movie_id, "Film.en.srt", data)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    send_bytes(alice, upload, data)
    alice_id = rows(app, StoredFile)[0].owner_id
    real = subtitles.to_webvtt
    bobs: list[int] = []

    def meanwhile(source: bytes, *, name: str) -> str:
        """Convert; meanwhile alice's movie goes and bob's comes."""
        with db.session_scope(app) as session:
            library.delete_file(session=session, storage=get_storage(app), owner_id=alice_id,
                                file_id=movie_id)
        bobs.append(add_file(app, user_id(app, "bob"), "bob.mp4", secrets.token_bytes(2000),
                             file_id=movie_id))
        return real(source, name=name)

    monkeypatch.setattr(subtitles, "to_webvtt", meanwhile)
    done = alice.complete(upload["id"])
    assert done.status_code == 404, done.text
    assert "deleted" in done.json()["error"]
    assert bobs == [movie_id]
    assert rows(app, Subtitle) == []
    assert bob.api("GET", f"/files/{movie_id}").json()["file"]["media"]["subtitles"] == []
    assert not [key for key in subtitle_keys(get_storage(app)) if key.endswith("-vtt")]
