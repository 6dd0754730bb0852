"""Posters on both stores: served through a signed redirect to their owner only, made from
a frame the owner picks, removed with their movie, and never taken for strays by gc.

Posters made by the background probe are in tests/test_probing.py; posters moving to S3
with `migrate-storage` in tests/test_migrate.py.
"""

from __future__ import annotations

import io
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from movievault import db, garbage, library, posters, probing
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.models import StoredFile, utcnow
from tests import media
from tests.support import LiveServer, add_file, keys, probe_due, rows, user_id

WEBP = (b"RIFF", b"WEBP")


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 4 s H.264/AAC MP4, index at the end."""
    folder = tmp_path_factory.mktemp("media")
    return media.make_h264_mp4(folder / "movie.mp4", seconds=4.0).read_bytes()


def poster_key(live_server: LiveServer, file_id: int) -> str | None:
    """The file's poster key, read fresh."""
    (stored,) = [f for f in rows(live_server.app, StoredFile) if f.id == file_id]
    return stored.poster_key


def follow(client: ApiClient, path: str) -> tuple[requests.Response, requests.Response | None]:
    """GET an app path without following; then the store's answer to its redirect, if any."""
    first = client.http.get(urljoin(client.base, path), allow_redirects=False)
    if first.status_code != 302:
        return first, None
    return first, requests.get(urljoin(client.base, first.headers["Location"]), timeout=60)


def probed(alice: ApiClient, live_server: LiveServer, movie: bytes) -> dict[str, Any]:
    """Alice's movie, uploaded and probed (with its poster)."""
    file_id = alice.upload(name="Film (2004).mp4", data=movie)["file"]["id"]
    assert probe_due(live_server.app) == ["ready"]
    shown: dict[str, Any] = alice.api("GET", f"/files/{file_id}").json()["file"]
    return shown


def test_the_poster_redirects_to_a_signed_url_for_its_owner_only(
    alice: ApiClient, bob: ApiClient, live_server: LiveServer, movie: bytes
) -> None:
    pending = alice.upload(name="Film (2004).mp4", data=movie)["file"]
    redirect, _ = follow(alice, f"/files/{pending['id']}/poster")
    assert redirect.status_code == 404  # not probed yet: no poster
    assert probe_due(live_server.app) == ["ready"]
    shown = alice.api("GET", f"/files/{pending['id']}").json()["file"]
    url = shown["media"]["poster_url"]
    assert url.startswith(f"/files/{pending['id']}/poster?v=")
    redirect, image = follow(alice, url)
    assert redirect.headers["Cache-Control"] == "private, no-store"
    assert redirect.headers["Referrer-Policy"] == "no-referrer"
    assert image is not None and image.status_code == 200
    assert image.headers["Content-Type"] == "image/webp"
    assert (image.content[:4], image.content[8:12]) == WEBP
    # Another user's id is a 404, like a file that does not exist; signed out, a sign-in.
    assert follow(bob, url)[0].status_code == 404
    assert follow(bob, "/files/999999/poster")[0].status_code == 404
    anonymous = requests.get(urljoin(alice.base, url), allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_owner_picks_a_frame_and_the_new_poster_replaces_the_old(
    alice: ApiClient, bob: ApiClient, live_server: LiveServer, movie: bytes
) -> None:
    storage = get_storage(live_server.app)
    shown = probed(alice, live_server, movie)
    old_key = poster_key(live_server, shown["id"])
    _, old_image = follow(alice, shown["media"]["poster_url"])
    assert old_key in keys(storage) and old_image is not None

    answer = alice.api("POST", f"/files/{shown['id']}/poster", json={"at": 3.5})
    assert answer.status_code == 200, answer.text
    picked = answer.json()["file"]
    new_key = poster_key(live_server, shown["id"])
    assert new_key != old_key and new_key is not None
    assert picked["media"]["poster_url"] != shown["media"]["poster_url"]
    # The old object is gone; the new one is a WebP of another frame.
    assert {k for k in keys(storage) if k.startswith(posters.PREFIX)} == {new_key}
    _, new_image = follow(alice, picked["media"]["poster_url"])
    assert new_image is not None and (new_image.content[:4], new_image.content[8:12]) == WEBP
    assert new_image.content != old_image.content
    # Bob cannot touch it.
    theirs = bob.api("POST", f"/files/{shown['id']}/poster", json={"at": 1})
    assert theirs.status_code == 404
    assert poster_key(live_server, shown["id"]) == new_key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "at must be a number"),
        ({"at": "10"}, "at must be a number"),
        ({"at": True}, "at must be a number"),
        ({"at": -1}, "at must be 0 seconds or later"),
        ({"at": 3600}, "at must be within the movie's"),
        ([1], "JSON object with at"),
    ],
)
def test_a_bad_frame_time_is_refused_and_the_poster_kept(
    alice: ApiClient, live_server: LiveServer, movie: bytes, body: Any, message: str
) -> None:
    shown = probed(alice, live_server, movie)
    before = poster_key(live_server, shown["id"])
    answer = alice.api("POST", f"/files/{shown['id']}/poster", json=body)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert poster_key(live_server, shown["id"]) == before


def test_a_frame_of_a_file_that_is_no_movie_is_refused_with_the_reason(
    alice: ApiClient, live_server: LiveServer, tmp_path: Any
) -> None:
    noise = media.make_random_bytes(tmp_path / "noise.mkv").read_bytes()
    file_id = alice.upload(name="noise.mkv", data=noise, content_type="video/x-matroska")[
        "file"]["id"]
    answer = alice.api("POST", f"/files/{file_id}/poster", json={"at": 1})
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("No poster could be made from that frame: ")
    assert poster_key(live_server, file_id) is None
    assert not {k for k in keys(get_storage(live_server.app)) if k.startswith(posters.PREFIX)}


def test_gc_keeps_posters_and_removes_posters_no_file_names_after_the_grace(
    alice: ApiClient, live_server: LiveServer, movie: bytes
) -> None:
    app = live_server.app
    storage = get_storage(app)
    shown = probed(alice, live_server, movie)
    kept = poster_key(live_server, shown["id"])
    assert kept is not None
    # A poster stored by a probe that died before recording it.
    stray = posters.new_key(owner_id=1, file_id=shown["id"])
    storage.put(key=stray, stream=io.BytesIO(b"RIFF....WEBP"), size=12,
                content_type=posters.CONTENT_TYPE)
    outside = f"elsewhere/{secrets.token_hex(8)}"
    storage.put(key=outside, stream=io.BytesIO(b"not ours"), size=8, content_type="video/mp4")
    everything = keys(storage)

    def collect(at: timedelta) -> garbage.GarbageReport:
        with db.session_scope(app) as session:
            return garbage.collect_garbage(session=session, storage=storage, now=utcnow() + at)

    early = collect(garbage.ORPHAN_GRACE - timedelta(minutes=5))
    assert (early.orphans, early.failures) == (0, [])
    assert keys(storage) == everything
    late = collect(garbage.ORPHAN_GRACE + timedelta(minutes=5))
    assert (late.orphans, late.failures) == (1, [])
    assert keys(storage) == everything - {stray}
    assert kept in keys(storage)
    _, image = follow(alice, shown["media"]["poster_url"])
    assert image is not None and image.status_code == 200


def test_a_frame_picked_while_its_movie_is_deleted_goes_to_no_other_movie(
    alice: ApiClient, bob: ApiClient, live_server: LiveServer, movie: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alice deletes her movie while the frame she picked is read, and a movie of bob's is
    recorded under its id (SQLite gave ids again before revision 0009; a catalogue edited
    by hand still could): the poster goes to no movie, and alice's answer says hers is
    gone, not what bob's is."""
    app = live_server.app
    film = probed(alice, live_server, movie)
    alice_id = rows(app, StoredFile)[0].owner_id
    bob_id = user_id(app, "bob")
    real = probing.frame_poster
    bobs: list[int] = []

    def meanwhile(source: Any, *, at: float) -> bytes:
        """Read the frame; meanwhile alice's movie goes and bob's comes."""
        image = real(source, at=at)
        with db.session_scope(app) as session:
            library.delete_file(session=session, storage=get_storage(app), owner_id=alice_id,
                                file_id=film["id"])
        bobs.append(add_file(app, bob_id, "bob.mp4", secrets.token_bytes(2000), file_id=film["id"]))
        return image

    monkeypatch.setattr(probing, "frame_poster", meanwhile)
    answer = alice.api("POST", f"/files/{film['id']}/poster", json={"at": 1})
    assert answer.status_code == 404, answer.text
    assert "bob" not in answer.text
    assert bobs == [film["id"]]
    assert poster_key(live_server, film["id"]) is None  # bob's movie has no poster of alice's
    assert [key for key in keys(get_storage(app)) if key.startswith(posters.PREFIX)] == []
