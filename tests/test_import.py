"""`movievault import` on both stores: a folder tree in, the catalogue and bytes checked,
idempotent runs, hard links, and interrupted runs that leave nothing half-done.

Tests run as root here, where `chmod 000` does not stop a read: the unreadable file is a
broken symbolic link (and a FIFO stands for what is not a regular file).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import select

from movievault import collection, db, subtitles, users
from movievault.backends import get_storage
from movievault.collection import HashCache, Summary, sniff
from movievault.models import PendingUpload, ProbeJob, StoredFile, Subtitle
from tests import media
from tests.support import MIB, MOVIEVAULT, environment, keys, make_user, open_multipart_uploads


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hash cache of the test's own ($XDG_CACHE_HOME)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture
def alice_id(app: Flask) -> int:
    """The account movies are imported for."""
    return make_user(app, "alice")


def files_of(app: Flask, owner_id: int) -> dict[str, StoredFile]:
    """The owner's files by name."""
    with db.session_scope(app) as session:
        found = session.exec(select(StoredFile).where(StoredFile.owner_id == owner_id)).all()
        return {row.name: row for row in found}


def nothing_stray(app: Flask) -> None:
    """gc's view: no pending upload, and exactly the objects the catalogue names."""
    storage = get_storage(app)
    with db.session_scope(app) as session:
        assert session.exec(select(PendingUpload)).all() == []
        named = set(session.exec(select(StoredFile.key)).all())
        for row in session.exec(select(Subtitle)).all():
            named |= {row.source_key, row.vtt_key}
    assert keys(storage) == named
    assert open_multipart_uploads(storage) == []


def run_import(runner: FlaskCliRunner, *args: str) -> Any:
    """`movievault import ... --user alice`, in this process."""
    return runner.invoke(args=["import", *args, "--user", "alice"])


@pytest.fixture
def tree(tmp_path: Path, movies: dict[str, bytes]) -> Path:
    """Two movies (one with a subtitle file), a copy of one under another name in another
    folder, nested folders, a text file, random bytes named .mkv, a broken link, a FIFO."""
    root = tmp_path / "collection"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "copies").mkdir()
    (root / "Alpha (2001).mp4").write_bytes(movies["clip0"])
    media.write_srt(root / "Alpha (2001).en.srt")
    (root / "nested" / "deeper" / "Beta.mp4").write_bytes(movies["clip1"])
    (root / "copies" / "Alpha again.mp4").write_bytes(movies["clip0"])
    (root / "notes.txt").write_text("not a movie")
    (root / "nested" / "fake.mkv").write_bytes(movies["random"])
    (root / "nested" / "gone.mp4").symlink_to(root / "nowhere.mp4")
    os.mkfifo(root / "nested" / "pipe.mp4")
    return root


def test_import_brings_a_tree_in_once(
    app: Flask, runner: FlaskCliRunner, alice_id: int, tree: Path, cache_home: Path,
    movies: dict[str, bytes],
) -> None:
    first = run_import(runner, str(tree), str(tree / "missing"))
    # A broken link and a missing path fail; the run goes on and says so in its status.
    assert first.exit_code == 1, first.output
    assert "2 imported, 1 already in the library, 3 skipped, 2 failed; " \
           "1 subtitle file(s) attached." in first.output
    assert "Hashed 4 file(s); 0 known from the hash cache." in first.output
    assert "named like a video, but its bytes are not one" in first.output
    assert "not a regular file" in first.output
    assert f"Failed {tree / 'nested' / 'gone.mp4'}: cannot be read" in first.output
    assert "not videos by name (1 .txt)" in first.output

    stored = files_of(app, alice_id)
    assert set(stored) == {"Alpha (2001).mp4", "Beta.mp4"}
    storage = get_storage(app)
    for name, clip in (("Alpha (2001).mp4", "clip0"), ("Beta.mp4", "clip1")):
        row = stored[name]
        assert row.sha256 == hashlib.sha256(movies[clip]).hexdigest()
        assert storage.read_range(row.key, 0, row.size) == movies[clip]
        assert row.content_type == "video/mp4"
    assert (stored["Alpha (2001).mp4"].title, stored["Alpha (2001).mp4"].year) == ("Alpha", 2001)
    with db.session_scope(app) as session:
        jobs = session.exec(select(ProbeJob.file_id)).all()
        attached = session.exec(select(Subtitle)).all()
    assert sorted(jobs) == sorted(row.id for row in stored.values())
    assert [(s.file_id, s.language) for s in attached] == [(stored["Alpha (2001).mp4"].id, "en")]
    assert attached[0].source_key.startswith(subtitles.PREFIX)
    nothing_stray(app)

    again = run_import(runner, str(tree))
    assert "0 imported, 3 already in the library" in again.output, again.output
    assert "0 subtitle file(s) attached" in again.output
    assert "Hashed 0 file(s); 4 known from the hash cache." in again.output
    assert files_of(app, alice_id).keys() == stored.keys()
    nothing_stray(app)


def test_dry_run_changes_nothing(
    app: Flask, runner: FlaskCliRunner, alice_id: int, tree: Path, cache_home: Path
) -> None:
    result = run_import(runner, str(tree / "nested"), "--dry-run")
    assert "1 would be imported, 0 already in the library" in result.output, result.output
    assert files_of(app, alice_id) == {}
    assert keys(get_storage(app)) == set()


def test_quota_fails_a_file_and_the_others_go_on(
    app: Flask, runner: FlaskCliRunner, alice_id: int, tmp_path: Path, cache_home: Path,
    movies: dict[str, bytes],
) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(movies["clip0"])
    (folder / "b.mp4").write_bytes(movies["clip3"])  # the longest: sorted last, over quota
    with db.session_scope(app) as session:
        users.set_quota(session=session, username="alice", quota_bytes=len(movies["clip0"]) + 10)
    result = run_import(runner, str(folder))
    assert result.exit_code == 1
    assert "1 imported" in result.output and "1 failed" in result.output, result.output
    assert set(files_of(app, alice_id)) == {"a.mp4"}
    nothing_stray(app)


def test_link_uses_no_extra_disk(
    app: Flask, backend: str, runner: FlaskCliRunner, alice_id: int, tmp_path: Path,
    cache_home: Path, movies: dict[str, bytes],
) -> None:
    source = tmp_path / "linked" / "Gamma.mp4"
    source.parent.mkdir()
    source.write_bytes(movies["clip2"])
    result = run_import(runner, str(source.parent), "--link")
    if backend == "s3":
        assert result.exit_code == 1
        assert "--link hard-links files into the local store" in result.output
        assert files_of(app, alice_id) == {}
        nothing_stray(app)
        return
    assert result.exit_code == 0, result.output
    row = files_of(app, alice_id)["Gamma.mp4"]
    stored = get_storage(app).object_path(row.key)  # type: ignore[attr-defined]
    assert stored.stat().st_ino == source.stat().st_ino
    assert source.stat().st_nlink == 2
    assert get_storage(app).object_sha256(row.key) == row.sha256
    nothing_stray(app)


@pytest.mark.parametrize("backend", ["local"])  # hard links: S3 refuses --link above
def test_link_across_filesystems_is_refused_clearly(
    app: Flask, runner: FlaskCliRunner, alice_id: int, cache_home: Path,
    movies: dict[str, bytes], tmp_path: Path,
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem (tmpfs at /dev/shm) to link across")
    folder = shm / f"movievault-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    try:
        (folder / "Delta.mp4").write_bytes(movies["clip3"])
        result = run_import(runner, str(folder), "--link")
    finally:
        (folder / "Delta.mp4").unlink()
        folder.rmdir()
    assert result.exit_code == 1
    assert "on another filesystem; import it without --link to copy it" in result.output
    assert files_of(app, alice_id) == {}
    nothing_stray(app)


def test_sniffing_knows_the_containers(media_files: dict[str, Path]) -> None:
    for name in ("h264.mp4", "h264.mkv", "vp9.webm", "av1.mp4"):
        assert sniff(media_files[name].read_bytes()[:1024]) is not None, name
    assert sniff(media_files["random.mkv"].read_bytes()[:1024]) is None
    assert sniff(media_files["subtitles.srt"].read_bytes()[:1024]) is None


def test_hashing_runs_below_the_transfers_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashing threads lower their own priority (the thread storing a file keeps its)."""
    seen: list[int] = []

    def hash_here(path: Path, progress: Any) -> str:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return hashlib.sha256(path.read_bytes()).hexdigest()

    monkeypatch.setattr(collection, "hash_file", hash_here)
    head = bytes.fromhex("00000018") + b"ftypisom" + bytes.fromhex("00000200") + b"isomiso2"
    (tmp_path / "a.mp4").write_bytes(head + b"a" * 1000)
    (tmp_path / "b.mp4").write_bytes(head + b"b" * 1000)
    summary = Summary()
    items = collection.walk((tmp_path,), summary)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    cache = HashCache(None)
    hashed = list(collection.hash_in_order(items, jobs=2, cache=cache, summary=summary))
    assert [item.sha256 for item in hashed] == [
        hashlib.sha256(head + b"a" * 1000).hexdigest(),
        hashlib.sha256(head + b"b" * 1000).hexdigest(),
    ]
    assert seen == [min(19, mine + collection.HASHING_NICENESS)] * 2
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


# --- interrupted runs -------------------------------------------------------------------


def process_environment(app_config: dict[str, Any], cache: Path) -> dict[str, str]:
    """The app's settings as a `movievault` process reads them."""
    settings = {name: value for name, value in app_config.items() if name != "TESTING"}
    env = environment(**settings)
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def under_way(app: Flask, backend: str, tmp_path: Path) -> bool:
    """Whether the store is in the middle of receiving a file (a temporary file, or an
    open multipart upload)."""
    storage = get_storage(app)
    if backend == "s3":
        return bool(open_multipart_uploads(storage))
    with os.scandir(storage.tmp) as entries:  # type: ignore[attr-defined]
        return any(
            entry.name.startswith("in-") and entry.stat().st_size > 0 for entry in entries
        )


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_an_interrupted_import_leaves_a_consistent_catalogue(
    app: Flask, app_config: dict[str, Any], backend: str, runner: FlaskCliRunner,
    alice_id: int, tmp_path: Path, cache_home: Path, movies: dict[str, bytes],
    how: signal.Signals,
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    big = folder / "Epsilon.mp4"
    # A real movie's header, then sparse zeros (cheap to make): long enough to be caught
    # mid-file, a multipart upload of several parts on S3.
    size = (24 if backend == "s3" else 128) * MIB
    with open(big, "wb") as handle:
        handle.write(movies["clip0"])
        handle.truncate(size)
    process = subprocess.Popen(
        [*MOVIEVAULT, "import", str(folder), "--user", "alice"],
        env=process_environment(app_config, cache_home), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not under_way(app, backend, tmp_path):
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "the import never started storing"
            time.sleep(0.001)
        process.send_signal(signal.SIGSTOP)  # hold it mid-file while we look
        assert under_way(app, backend, tmp_path)
        assert files_of(app, alice_id) == {}
        process.send_signal(how)
        process.send_signal(signal.SIGCONT)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert files_of(app, alice_id) == {}
    if how == signal.SIGINT:
        assert process.returncode == 130, output
        assert "Interrupted" in output
        nothing_stray(app)
        assert not under_way(app, backend, tmp_path)
    else:
        assert process.returncode == -signal.SIGKILL

    result = run_import(runner, str(folder))
    assert result.exit_code == 0, result.output
    assert "1 imported" in result.output
    row = files_of(app, alice_id)["Epsilon.mp4"]
    assert row.size == size
    assert get_storage(app).read_range(row.key, 0, len(movies["clip0"])) == movies["clip0"]
    nothing_stray(app)
    if backend == "local" and how == signal.SIGKILL:
        # A killed copy leaves its temporary file, which `gc` sweeps once a day old.
        storage = get_storage(app)
        swept = storage.sweep(abort_after_days=7, now=time.time() + 2 * 86400)  # type: ignore[call-arg]
        assert any("from .tmp/" in line for line in swept)
        assert not under_way(app, backend, tmp_path)
