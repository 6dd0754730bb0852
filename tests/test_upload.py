"""`movievault upload` against a running app on both stores: a tree in by the page's
protocol, a second run sending nothing, a multipart upload resumed by its SHA-256, and a
command that starts without the server's dependencies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from movievault.client import ApiClient
from movievault.collection import Summary
from movievault.main import run_upload
from movievault.models import PendingUpload, StoredFile, Subtitle
from movievault.uploader import Uploader
from tests import media
from tests.support import MIB, LiveServer, keys, make_user, rows, run_without, served

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
    assert alice.calls == [("POST", "/files/check")]  # one bulk check, nothing else


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
    from movievault.backends import get_storage

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
