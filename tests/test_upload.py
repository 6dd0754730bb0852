"""`movievault upload` against a running app on both stores: a tree in by the page's
protocol, a second run sending nothing, a multipart upload resumed by its SHA-256, and a
command that starts without the server's dependencies."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.collection import Summary
from movievault.main import run_upload
from movievault.models import PendingUpload, StoredFile, Subtitle
from movievault.uploader import Uploader
from tests import media
from tests.support import (
    MIB,
    LiveServer,
    environment,
    keys,
    make_user,
    rows,
    run_without,
    served,
)

SERVER_PACKAGES = ("flask", "flask_login", "flask_wtf", "sqlmodel", "sqlalchemy", "alembic",
                   "boto3", "botocore", "av", "waitress", "moto")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hash cache of the test's own ($XDG_CACHE_HOME)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture
def server(app: Flask) -> Iterator[LiveServer]:
    """The app served as `movievault serve` serves it."""
    make_user(app, "alice")
    with served(app) as live:
        yield live


def upload(client: ApiClient, *paths: Path, parallel: int = 3) -> Summary:
    """Run the uploader on `paths` as `movievault upload` does, with `client`'s account."""
    summary = Summary()
    run_upload(paths, uploader=Uploader(client=client, parallel=parallel), jobs=2,
               dry_run=False, summary=summary)
    return summary


def test_upload_brings_a_tree_in_once(
    server: LiveServer, tmp_path: Path, cache_home: Path, movies: dict[str, bytes]
) -> None:
    root = tmp_path / "collection"
    (root / "nested").mkdir(parents=True)
    (root / "Alpha (2001).mp4").write_bytes(movies["clip0"])
    media.write_srt(root / "Alpha (2001).en.srt")
    (root / "nested" / "Beta.mp4").write_bytes(movies["clip1"])
    (root / "nested" / "Alpha copy.mp4").write_bytes(movies["clip0"])
    (root / "fake.mkv").write_bytes(movies["random"])
    alice = server.client_for("alice")

    first = upload(alice, root)
    assert sorted(first.imported) == ["Alpha (2001).mp4", "Beta.mp4"], first.lines()
    assert first.duplicates == ["Alpha copy.mp4"]
    assert first.subtitles == ["Alpha (2001).en.srt"]
    assert [path for path, _ in first.skipped] == [str(root / "fake.mkv")]
    assert first.failed == [] and first.exit_code == 0
    stored = {row.name: row for row in rows(server.app, StoredFile)}
    assert set(stored) == {"Alpha (2001).mp4", "Beta.mp4"}
    assert stored["Beta.mp4"].sha256 == hashlib.sha256(movies["clip1"]).hexdigest()
    assert len(rows(server.app, Subtitle)) == 1

    alice.calls.clear()
    again = upload(alice, root)
    assert again.imported == [] and again.hashed == 0 and again.cached == 4
    assert sorted(again.duplicates) == ["Alpha (2001).mp4", "Alpha copy.mp4", "Beta.mp4"]
    assert again.subtitles == []  # the server has it: nothing is sent
    alpha = stored["Alpha (2001).mp4"].id
    # One bulk check, and the subtitle beside a movie offered again (answered "attached").
    assert alice.calls == [("POST", "/files/check"), ("POST", f"/files/{alpha}/subtitles")]

    # A subtitle file put beside a movie sent before goes to that movie on the next run.
    media.write_srt(root / "nested" / "Beta.fr.srt")
    later = upload(alice, root)
    assert later.imported == [] and later.subtitles == ["Beta.fr.srt"], later.lines()
    attached = {row.name: row.file_id for row in rows(server.app, Subtitle)}
    assert attached == {"Alpha (2001).en.srt": alpha, "Beta.fr.srt": stored["Beta.mp4"].id}


def test_upload_resumes_a_multipart_upload(
    server: LiveServer, tmp_path: Path, cache_home: Path, movies: dict[str, bytes]
) -> None:
    big = tmp_path / "Gamma.mp4"
    with open(big, "wb") as handle:  # a real movie's header, then zeros: 4 parts of 5 MiB
        handle.write(movies["clip2"])
        handle.truncate(18 * MIB)
    data = big.read_bytes()
    alice = server.client_for("alice")
    # An earlier run stopped after two parts.
    created = alice.create(name="Gamma.mp4", data=data)
    assert created.status_code == 201, created.text
    begun = created.json()["upload"]
    assert begun["method"] == "multipart" and begun["part_count"] == 4
    alice.put_parts(begun, data, [1, 2])

    alice.calls.clear()
    sent: list[int] = []
    summary = Summary()
    uploader = Uploader(client=alice, parallel=2, progress=sent.append)
    run_upload((big,), uploader=uploader, jobs=1, dry_run=False, summary=summary)
    assert summary.imported == ["Gamma.mp4"] and summary.failed == []
    (row,) = rows(server.app, StoredFile)
    assert row.upload_id == begun["id"]  # the same upload, resumed
    assert row.size == len(data)
    assert alice.calls.count(("POST", f"/uploads/{begun['id']}/parts")) == 1  # parts 3, 4
    assert sum(sent) == len(data)  # the two held parts counted once, as already sent
    assert rows(server.app, PendingUpload) == []
    assert keys(get_storage(server.app)) == {row.key}


def test_upload_starts_without_server_dependencies(tmp_path: Path) -> None:
    printed = run_without(SERVER_PACKAGES, (
        "from movievault.main import cli\n"
        "cli.main(['upload', '--help'], prog_name='movievault', standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED "
        "and sys.modules[m] is not None))\n"
    ), cwd=tmp_path)
    assert "Upload movies (and subtitle files beside them)" in printed
    assert printed.endswith("[]")


# --- the command itself, with a personal API token ----------------------------------------


def uploader_process(server: LiveServer, token: str, cache: Path, *paths: Path
                     ) -> subprocess.Popen[str]:
    """`movievault upload` in a process where the server's packages cannot be imported."""
    script = (
        "import sys\n"
        f"for _name in {SERVER_PACKAGES!r}:\n"
        "    sys.modules[_name] = None\n"
        "from movievault.main import cli\n"
        f"cli([\"upload\", *{[str(p) for p in paths]!r}, \"--server\", {server.url!r}, "
        "\"--parallel\", \"1\"], prog_name=\"movievault\")\n"
    )
    env = environment()
    env.update(MOVIEVAULT_TOKEN=token, XDG_CACHE_HOME=str(cache))
    return subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def parts_held(server: LiveServer) -> tuple[str | None, int]:
    """The pending multipart upload (if any) and how many parts the store holds of it."""
    storage = get_storage(server.app)
    for upload in rows(server.app, PendingUpload):
        if upload.method == "multipart" and upload.multipart_id:
            return upload.id, len(storage.list_parts(key=upload.key, upload_id=upload.multipart_id))
    return None, 0


def test_upload_command_with_a_token_resumes_after_ctrl_c(
    server: LiveServer, runner: FlaskCliRunner, tmp_path: Path, cache_home: Path,
    movies: dict[str, bytes],
) -> None:
    made = runner.invoke(args=["token", "create", "--user", "alice"])
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    folder = tmp_path / "movies"
    folder.mkdir()
    (folder / "Alpha (2001).mp4").write_bytes(movies["clip0"])
    big = folder / "Zeta.mp4"
    with open(big, "wb") as handle:  # a real movie's header, then zeros: 5 parts of 5 MiB
        handle.write(movies["clip3"])
        handle.truncate(24 * MIB)

    process = uploader_process(server, token, cache_home, folder)
    try:
        deadline = time.monotonic() + 60
        while (held := parts_held(server))[1] < 1:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no part was ever stored"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "Interrupted: run the same command again to resume." in output
    upload_id = held[0]
    assert [row.name for row in rows(server.app, StoredFile)] == ["Alpha (2001).mp4"]

    again = uploader_process(server, token, cache_home, folder)
    output = again.communicate(timeout=120)[0]
    assert again.returncode == 0, output
    assert "1 uploaded, 1 already in the library" in output
    assert "Hashed 0 file(s); 2 known from the hash cache." in output
    stored = {row.name: row for row in rows(server.app, StoredFile)}
    assert stored["Zeta.mp4"].upload_id == upload_id  # resumed, not started over
    assert stored["Zeta.mp4"].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert rows(server.app, PendingUpload) == []
    assert keys(get_storage(server.app)) == {row.key for row in stored.values()}


def test_upload_command_needs_a_token(tmp_path: Path) -> None:
    env = environment()
    done = subprocess.run(
        [sys.executable, "-c", "from movievault.main import cli; cli()", "upload", str(tmp_path),
         "--server", "http://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Set MOVIEVAULT_TOKEN to a personal API token" in done.stderr
