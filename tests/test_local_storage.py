"""The local disk store over real HTTP: restarts, integrity, ranges, signatures, crashes."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import time
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from movievault import create_app, db
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.errors import InvalidInput, NoSuchUpload, StorageUnavailable
from movievault.models import PendingUpload, StoredFile, utcnow
from movievault.storage.local import LocalStorage, check_key
from movievault.storage.local_requests import receive_part
from tests.support import MIB, LiveServer, make_user, post_form_of_another_size, rows, serving


@pytest.fixture
def backend() -> str:
    """Every test here is about the local store (this overrides the conftest's parameter)."""
    return "local"


@pytest.fixture
def store(app: Flask) -> LocalStorage:
    """The app's local store."""
    storage = get_storage(app)
    assert isinstance(storage, LocalStorage)
    return storage


def stream_url(client: ApiClient, file_id: int, *, inline: bool = True) -> str:
    """The store URL the app redirects to for playing (or downloading) a file."""
    path = "stream" if inline else "download"
    answer = client.http.get(f"{client.base}/files/{file_id}/{path}", allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith("/storage/objects/"), location  # relative: any host works
    return urljoin(client.base, location)


def files_under(folder: Path) -> list[Path]:
    """Every regular file below `folder`."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def with_token(url: str, token: str) -> str:
    """`url` with its token replaced."""
    parts = urlsplit(url)
    return parts._replace(query=f"token={token}").geturl()


def token_of(url: str) -> str:
    """The token in a store URL."""
    return parse_qs(urlsplit(url).query)["token"][0]


# --- restart --------------------------------------------------------------------------------


def test_library_survives_a_restart_byte_for_byte(
    app: Flask, app_config: dict[str, Any]
) -> None:
    small, big, pending_data = os.urandom(300_000), os.urandom(12 * MIB + 5), os.urandom(11 * MIB)
    with serving(app) as first:
        make_user(app, "alice")
        alice = first.client_for("alice")
        ids = [alice.upload(name=n, data=d)["file"]["id"] for n, d in (("a.mp4", small),
                                                                        ("b.mkv", big))]
        upload = alice.create(name="later.mkv", data=pending_data).json()["upload"]
        held = alice.put_parts(upload, pending_data, [1, 2])

    # A new process: a new app object over the same instance, database and data folder.
    again = create_app(app_config)
    assert get_storage(again).root == get_storage(app).root
    with serving(again) as second:
        alice = second.client_for("alice")
        for file_id, data in zip(ids, (small, big), strict=True):
            got = requests.get(stream_url(alice, file_id), timeout=60)
            assert got.status_code == 200
            assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)
        # The unfinished upload resumes where it stopped.
        status = alice.status(upload["id"])
        assert {p["part_number"]: p["etag"] for p in status["uploaded_parts"]} == held
        rest = alice.put_parts(upload, pending_data, [3])
        final = alice.complete(upload["id"], held | rest)
        assert final.status_code == 201, final.text
        got = requests.get(stream_url(alice, final.json()["file"]["id"]), timeout=60)
        assert got.content == pending_data


def test_a_missing_folder_with_files_catalogued_is_an_outage_not_a_fresh_start(
    app: Flask, app_config: dict[str, Any], store: LocalStorage
) -> None:
    with serving(app) as live:
        make_user(app, "alice")
        alice = live.client_for("alice")
        alice.upload(name="kept.mp4", data=os.urandom(1000))
    store.root.rename(store.root.with_name("unmounted"))
    again = create_app(app_config)
    storage = get_storage(again)
    assert not storage.root.exists()  # not silently recreated empty
    with pytest.raises(StorageUnavailable, match="is its disk mounted"):
        storage.ping()
    with serving(again) as live:
        alice = live.client_for("alice")
        answer = alice.create(name="new.mp4", data=os.urandom(1000))
        assert answer.status_code == 503
        assert "storage service" in answer.json()["error"]


def test_a_first_run_creates_the_store(
    app: Flask, app_config: dict[str, Any], tmp_path: Path
) -> None:
    config = {**app_config, "DATA_DIR": str(tmp_path / "fresh" / "movies")}
    storage = get_storage(create_app(config))
    assert (tmp_path / "fresh" / "movies" / ".movievault-store").is_file()
    storage.ping()


# --- integrity ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [20_000, 11 * MIB], ids=["post", "multipart"])
def test_other_bytes_of_the_declared_size_are_refused_and_removed(
    alice: ApiClient, live_server: LiveServer, store: LocalStorage, size: int
) -> None:
    declared, sent = os.urandom(size), os.urandom(size)
    upload = alice.create(name="swap.mp4", data=declared).json()["upload"]
    if upload["method"] == "post":
        assert alice.post_form(upload, sent).status_code == 204
        answer = alice.complete(upload["id"])
    else:
        etags = alice.put_parts(upload, sent, [1, 2, 3])
        answer = alice.complete(upload["id"], etags)
    assert answer.status_code == 422
    assert "SHA-256" in answer.json()["error"]
    assert rows(live_server.app, StoredFile) == []
    assert rows(live_server.app, PendingUpload) == []
    assert list(store.iter_keys()) == []
    assert [p.name for p in files_under(store.root)] == [".movievault-store"]
    # The real bytes, declared honestly, are then accepted.
    honest = alice.upload(name="swap.mp4", data=sent)
    assert honest["file"]["sha256"] == sha256_of(sent)


def test_a_stale_hash_record_is_recomputed_not_trusted(
    store: LocalStorage, tmp_path: Path
) -> None:
    first, second = os.urandom(5000), os.urandom(5000)
    key = "movies/1/" + "a" * 32
    with open(tmp_path / "first", "wb+") as source:
        source.write(first)
        source.seek(0)
        store.put(key=key, stream=source, size=len(first), content_type="video/mp4")
    assert store.object_sha256(key) == sha256_of(first)
    # Another file takes the object's place behind the sidecar's back (as a crash between
    # the two renames could leave it): the recorded hash no longer describes it.
    replacement = store.tmp / "replacement"
    replacement.write_bytes(second)
    os.replace(replacement, store.object_path(key))
    assert store.object_sha256(key) == sha256_of(second)


# --- form POST ------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [-1, 1, 3 * MIB], ids=["short", "one-more", "much-more"])
def test_form_post_of_another_size_than_signed_is_refused(
    alice: ApiClient, store: LocalStorage, extra: int
) -> None:
    _, _, answer = post_form_of_another_size(alice, extra)
    assert answer.status_code == 400
    assert "20000 bytes" in answer.json()["error"]
    assert "Set-Cookie" not in answer.headers
    assert list(store.iter_keys()) == []
    assert files_under(store.tmp) == []


def test_form_post_checks_the_fields_before_the_file(
    alice: ApiClient, store: LocalStorage
) -> None:
    data = os.urandom(1000)
    upload = alice.create(name="a.mp4", data=data).json()["upload"]
    url, fields = urljoin(alice.base, upload["post"]["url"]), upload["post"]["fields"]
    other_key = {**fields, "key": "movies/1/" + "f" * 32}
    other_type = {**fields, "Content-Type": "text/html"}
    tampered = {**fields, "token": fields["token"][:-2] + "xx"}
    for bad in (other_key, other_type, tampered):
        answer = requests.post(url, data=bad, files={"file": ("a.mp4", data)}, timeout=30)
        assert answer.status_code == 403, answer.text
    # The file must come last: a file before the token is refused unread.
    answer = requests.post(
        url, files=[("file", ("a.mp4", data)), ("token", (None, fields["token"]))], timeout=30
    )
    assert answer.status_code == 403
    no_file = requests.post(url, files={"token": (None, fields["token"])}, timeout=30)
    assert no_file.status_code == 400
    not_a_form = requests.post(url, data=b"raw bytes", timeout=30)
    assert not_a_form.status_code == 400
    assert list(store.iter_keys()) == []


def _post_streamed(url: str, fields: dict[str, str], size: int) -> int:
    """POST a form whose file part is `size` random bytes, sent 1 MiB at a time."""
    boundary = "movievault-" + os.urandom(8).hex()
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    connection.putrequest("POST", parts.path)
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(head) + size + len(tail)))
    connection.endheaders()
    connection.send(head)
    chunk = os.urandom(MIB)
    for start in range(0, size, MIB):
        connection.send(chunk[: min(MIB, size - start)])
    connection.send(tail)
    status = connection.getresponse().status
    connection.close()
    return status


def pending_form_upload(app: Flask, *, key: str, size: int) -> None:
    """Record a pending form upload of `key`, as create does: the store writes no other."""
    owner = make_user(app, "uploader")
    with db.session_scope(app) as session:
        session.add(PendingUpload(
            id=uuid.uuid4().hex, owner_id=owner, sha256="0" * 64, size=size, name="a.mp4",
            content_type="video/mp4", key=key, method="post",
            expires_at=utcnow() + timedelta(hours=1),
        ))
        session.commit()


def test_a_50_mb_form_post_is_streamed_in_constant_memory(
    live_server: LiveServer, store: LocalStorage
) -> None:
    size = 50 * 1000 * 1000
    key = "movies/1/" + "b" * 32
    pending_form_upload(live_server.app, key=key, size=size)
    form = store.post_form(key=key, size=size, content_type="video/mp4", expires=600)
    tracemalloc.start()
    try:
        status = _post_streamed(urljoin(live_server.url, form.url), form.fields, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 204
    assert store.object_size(key) == size
    # Client and server together (the same process) never held more than a few chunks.
    assert peak < 12 * MIB, f"peak {peak / MIB:.1f} MiB"


# --- part PUT -------------------------------------------------------------------------------


def test_part_put_answers_an_etag_and_is_bound_to_its_part(
    alice: ApiClient, store: LocalStorage
) -> None:
    data = os.urandom(11 * MIB)
    upload = alice.create(name="parts.mkv", data=data).json()["upload"]
    parts = alice.sign_parts(upload, [1, 3], data)
    first = data[: 5 * MIB]
    answer = parts[1].put(first)
    assert answer.status_code == 200
    assert answer.headers["ETag"] == f'"{hashlib.sha256(first).hexdigest()}"'
    assert "Set-Cookie" not in answer.headers
    # Sent again, the part is replaced, not duplicated.
    assert parts[1].put(first).headers["ETag"] == answer.headers["ETag"]
    assert [p["part_number"] for p in alice.status(upload["id"])["uploaded_parts"]] == [1]
    # Part 3's signature does not open part 2, nor accept another size.
    swapped = parts[3].url.replace("/3?", "/2?")
    assert requests.put(swapped, data=data[5 * MIB : 10 * MIB], headers=parts[3].headers,
                        timeout=60).status_code == 403
    too_big = parts[3].put(data[10 * MIB :] + b"x")
    assert too_big.status_code == 400
    assert files_under(store.tmp) == []


def test_part_put_after_cancel_is_404(alice: ApiClient) -> None:
    data = os.urandom(11 * MIB)
    upload = alice.create(name="gone.mkv", data=data).json()["upload"]
    part = alice.sign_parts(upload, [1], data)[1]
    assert alice.api("DELETE", f"/uploads/{upload['id']}").status_code == 204
    answer = part.put(data[: 5 * MIB])
    assert answer.status_code == 404
    assert "NoSuchUpload" in answer.json()["error"]


def test_a_part_racing_an_abort_does_not_bring_the_upload_back(
    store: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "movies/1/" + "e" * 32
    upload_id = store.start_multipart(key=key, content_type="video/mp4")
    token = store.tokens.sign(
        {"op": "part", "key": key, "upload": upload_id, "part": 1, "size": 1000}, expires=60
    )
    checked = store._upload_key

    def check_then_abort(upload: str) -> str:
        """The upload exists when checked, and is aborted right after."""
        found = checked(upload)
        store._remove_upload(upload)  # what abort_multipart does once it has checked
        return found

    monkeypatch.setattr(store, "_upload_key", check_then_abort)
    with pytest.raises(NoSuchUpload):
        receive_part(store, token=token, upload_id=upload_id, part_number=1,
                     stream=io.BytesIO(os.urandom(1000)), length=1000)
    assert not (store.uploads / upload_id).exists()
    assert files_under(store.tmp) == []


# --- GET and Range --------------------------------------------------------------------------


def test_get_honours_ranges_like_s3(alice: ApiClient) -> None:
    data = os.urandom(1_000_000)
    file = alice.upload(name="Film (2024) été.mp4", data=data)["file"]
    url = stream_url(alice, file["id"])
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Content-Disposition"] == (
        'inline; filename="Film (2024) _t_.mp4"; '
        "filename*=UTF-8''Film%20%282024%29%20%C3%A9t%C3%A9.mp4"
    )
    assert "Set-Cookie" not in whole.headers
    cases = {
        "bytes=0-99": (0, 100),
        "bytes=999000-": (999_000, 1_000_000),
        "bytes=-500": (999_500, 1_000_000),
        "bytes=999990-2000000": (999_990, 1_000_000),  # clipped to the end
    }
    for header, (start, stop) in cases.items():
        part = requests.get(url, headers={"Range": header}, timeout=30)
        assert part.status_code == 206, header
        assert part.content == data[start:stop], header
        assert part.headers["Content-Range"] == f"bytes {start}-{stop - 1}/1000000"
        assert int(part.headers["Content-Length"]) == stop - start
    beyond = requests.get(url, headers={"Range": "bytes=1000000-"}, timeout=30)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == "bytes */1000000"
    # A range on a version the client no longer has (If-Range mismatch): the whole file.
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=30)
    assert stale.status_code == 200 and stale.content == data
    fresh = requests.get(
        url, headers={"Range": "bytes=0-9", "If-Range": whole.headers["ETag"]}, timeout=30
    )
    assert fresh.status_code == 206 and fresh.content == data[:10]
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Length"] == "1000000"
    download = requests.get(stream_url(alice, file["id"], inline=False), timeout=30)
    assert download.headers["Content-Disposition"].startswith("attachment; ")


def test_tampered_urls_are_403(alice: ApiClient, store: LocalStorage) -> None:
    mine = alice.upload(name="a.mp4", data=os.urandom(2000))["file"]
    other = alice.upload(name="b.mp4", data=os.urandom(3000))["file"]
    url = stream_url(alice, mine["id"])
    token = token_of(url)
    other_path = urlsplit(stream_url(alice, other["id"])).path
    other_token = token_of(stream_url(alice, other["id"]))
    # Change a character inside the signature (the last one may carry only padding bits).
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    # The other file's claims under this file's signature.
    spliced = other_token.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]
    attempts = {
        "signature changed": with_token(url, flipped),
        "token of one file on another's path": with_token(urljoin(url, other_path), token),
        "no token": url.split("?")[0],
        "claims of another file": with_token(url, spliced),
    }
    for what, bad in attempts.items():
        answer = requests.get(bad, timeout=30)
        assert answer.status_code == 403, what
        assert answer.headers["Content-Type"].startswith("application/json"), what
    # A part signature is not a download signature, even for the same key.
    key = urlsplit(url).path.removeprefix("/storage/objects/")
    part_token = store.tokens.sign(
        {"op": "part", "key": key, "upload": "0" * 32, "part": 1, "size": 1}, expires=60
    )
    assert requests.get(with_token(url, part_token), timeout=30).status_code == 403
    # A token signed with another secret is refused.
    stranger = LocalStorage(root=store.root, secret="another-secret")
    foreign = token_of(
        stranger.download_url(
            key=key, filename="a.mp4", content_type="video/mp4", inline=True, expires=60
        )
    )
    assert requests.get(with_token(url, foreign), timeout=30).status_code == 403


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs", "movies/../x", "movies/.hidden", "a.json", "a//b", "a/", ""]
)
def test_keys_cannot_leave_the_store(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_key(key)


# --- serving --------------------------------------------------------------------------------


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP response with a Content-Length from `sock`: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(":") for h in lines) if k.lower() ==
                  "content-length")
    body = bytearray(rest)
    while len(body) < length:
        body += sock.recv(1024 * 1024)
    return int(lines[0].split()[1]), bytes(body)


def test_a_slow_upload_and_a_stalled_download_do_not_block_pages(
    app: Flask, store: LocalStorage, tmp_path: Path
) -> None:
    """With a single worker thread, the transfers wait in waitress's I/O loop, not in it."""
    key = "movies/1/" + "c" * 32
    with open(tmp_path / "seed", "wb+") as seed:
        seed.write(os.urandom(32 * MIB))
        seed.seek(0)
        store.put(key=key, stream=seed, size=32 * MIB, content_type="video/mp4")
    url = store.download_url(key=key, filename="c.mp4", content_type="video/mp4", inline=True,
                             expires=600)
    form = store.post_form(key="movies/1/" + "d" * 32, size=8 * MIB, content_type="video/mp4",
                           expires=600)
    with serving(app, threads=1) as live:
        port = int(urlsplit(live.url).port or 0)
        upload = socket.create_connection(("127.0.0.1", port))
        readers = []
        try:
            upload.sendall(
                f"POST {form.url} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                f"boundary=b\r\nContent-Length: {8 * MIB}\r\n\r\n".encode() + b"x" * MIB
            )
            for extra in ("", "Range: bytes=100-\r\n"):
                reader = socket.socket()
                reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                reader.connect(("127.0.0.1", port))
                reader.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
                readers.append(reader)  # not read for now: the downloads stall
            time.sleep(0.5)
            started = time.monotonic()
            page = requests.get(f"{live.url}/login", timeout=10)
            assert page.status_code == 200
            assert time.monotonic() - started < 3
            # Let every transfer finish, so that the server closes what it holds open.
            upload.sendall(b"x" * 7 * MIB)
            assert _read_response(upload)[0] == 400  # the junk body is not a form
            for reader, size in zip(readers, (32 * MIB, 32 * MIB - 100), strict=True):
                reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MIB)
                status, body = _read_response(reader)
                assert status in (200, 206) and len(body) == size
                reader.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_response(reader)[0] < 500  # the file was closed before this
        finally:
            for sock in (upload, *readers):
                sock.close()


def test_storage_urls_are_not_served_for_the_s3_backend(
    app: Flask, app_config: dict[str, Any]
) -> None:
    # The module-wide parameter says "local"; this one app is built for S3 on purpose.
    app = create_app({**app_config, "STORAGE": "s3", "S3_BUCKET": "unused"})
    client: FlaskClient = app.test_client()
    assert client.post("/storage/upload").status_code == 404
    assert client.get("/storage/objects/movies/1/abc?token=x").status_code == 404


# --- crash safety ---------------------------------------------------------------------------


def test_a_cut_connection_or_a_crash_leftover_never_becomes_an_object(
    alice: ApiClient, live_server: LiveServer, store: LocalStorage, runner: FlaskCliRunner
) -> None:
    data = os.urandom(200_000)
    upload = alice.create(name="cut.mp4", data=data).json()["upload"]
    key = upload["post"]["fields"]["key"]
    # The browser is closed halfway through sending the form.
    port = int(urlsplit(live_server.url).port or 0)
    with socket.create_connection(("127.0.0.1", port)) as cut:
        cut.sendall(
            f"POST {upload['post']['url']} HTTP/1.1\r\nHost: x\r\nContent-Type: "
            f"multipart/form-data; boundary=b\r\nContent-Length: 400000\r\n\r\n".encode()
            + b"x" * 100_000
        )
    # A crash while writing leaves a half-written temporary file behind.
    leftover = store.tmp / "in-crashed.tmp"
    leftover.write_bytes(data[:1000])
    assert store.object_size(key) is None
    assert list(store.iter_keys()) == []
    assert alice.complete(upload["id"]).status_code == 422
    # gc clears leftovers once they are old enough that no upload can still own them.
    fresh = runner.invoke(args=["gc"])
    assert fresh.exit_code == 0 and leftover.exists()
    a_day_ago = time.time() - 2 * 86400
    os.utime(leftover, (a_day_ago, a_day_ago))
    swept = runner.invoke(args=["gc"])
    assert swept.exit_code == 0, swept.output
    assert "in-crashed.tmp" in swept.output
    assert not leftover.exists()
