"""Several worker processes on one catalogue (a SQLite file, or PostgreSQL) and one store,
hit by many threads at once.

Each worker is a real `movievault serve` process. Requests of one upload go to different
processes (create on one, parts on another, complete on a third), the same user uploads
the same file from several threads, and lists, renames, deletes and cancels run meanwhile.
Nothing may answer 5xx, and afterwards the catalogue and the store must agree.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import event, text
from sqlmodel import select

from movievault import create_app, db
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.config import settings
from movievault.models import PendingUpload, StoredFile, User
from movievault.storage.s3 import S3Storage
from tests import postgres
from tests.support import (
    MIB,
    MOVIEVAULT,
    ROOT,
    environment,
    free_port,
    make_user,
    open_multipart_uploads,
    sign_in,
    sign_in_over_http,
    stop_process,
    wait_for_port,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test runs on SQLite with both stores, and on PostgreSQL with S3."""
    postgres.parametrize_databases(metafunc)


WORKERS = 3
USERS = ("alice", "bob")
THREADS_PER_USER = 3
ROUNDS = 5


# --- worker processes -----------------------------------------------------------------------


@contextmanager
def worker_processes(env: dict[str, str], count: int, logs: Path) -> Iterator[list[str]]:
    """Start `count` `movievault serve` processes at once; stop them afterwards."""
    logs.mkdir(parents=True, exist_ok=True)
    started: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    try:
        for _ in range(count):
            port = free_port()
            log = logs / f"worker-{port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--threads", "6"],
                    env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                )
            started.append((port, process, log))
        for port, process, log in started:
            wait_for_port(port, process, log)
        yield [f"http://127.0.0.1:{port}" for port, _, _ in started]
    finally:
        for _, process, _ in started:
            stop_process(process)


# --- the load -------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients did and were told, shared by all threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: The sha256 of every file each user should have at the end.
    expected: dict[str, set[str]] = field(default_factory=dict)

    def record(self, answer: requests.Response, *_: Any, **__: Any) -> None:
        """requests hook: count every answer of the app; keep the odd ones."""
        request = answer.request
        path = (request.path_url or "").split("?")[0]
        route = "/".join("<id>" if part and (part[0].isdigit() or len(part) >= 16) else part
                         for part in path.split("/"))
        with self.lock:
            self.answers[(f"{request.method} {route}", answer.status_code)] += 1
            if answer.status_code not in (200, 201, 204):
                self.unexpected.append(
                    f"{request.method} {answer.url} -> {answer.status_code} {answer.text[:300]}"
                )

    def owns(self, user: str, sha256: str, present: bool = True) -> None:
        """Note that `user` should (or should no longer) have the file `sha256`."""
        with self.lock:
            files = self.expected.setdefault(user, set())
            (files.add if present else files.discard)(sha256)


def ok(answer: requests.Response) -> dict[str, Any]:
    """The JSON of a successful answer (the ledger keeps the unsuccessful ones)."""
    answer.raise_for_status()
    return answer.json() if answer.status_code != 204 else {}


def send(client: ApiClient, upload: dict[str, Any], data: bytes, parts_from: ApiClient) -> Any:
    """Send the bytes; for multipart, sign the parts through another worker."""
    if upload["method"] == "post":
        client.post_form(upload, data).raise_for_status()
        return None
    return parts_from.put_parts(upload, data, list(range(1, upload["part_count"] + 1)))


def user_thread(
    user: str, index: int, urls: list[str], ledger: Ledger, shared: list[bytes],
    shared_locks: list[threading.Lock], start: threading.Barrier,
) -> None:
    """One client's session: every kind of request, each to a randomly chosen worker."""
    rng = random.Random(f"{user}-{index}")
    # Signed in through one worker; the cookie is valid on all of them.
    http = sign_in_over_http(rng.choice(urls), user)
    http.hooks["response"].append(ledger.record)
    clients = [ApiClient(http=http, base=url) for url in urls]

    def pick() -> ApiClient:
        """A client bound to a random worker."""
        return rng.choice(clients)

    kept: list[int] = []
    start.wait()
    for round_ in range(ROUNDS):
        # A file of its own, started, sent and completed through different workers.
        size = 7 * MIB if round_ == 0 and index == 0 else rng.randint(1000, 50_000)
        own = os.urandom(size)
        upload = ok(pick().create(name=f"{user} {index}.{round_}.mp4", data=own))["upload"]
        etags = send(pick(), upload, own, parts_from=pick())
        done = ok(pick().complete(upload["id"], etags))
        kept.append(done["file"]["id"])
        ledger.owns(user, sha256_of(own))

        # The same file as this user's other threads, at the same time. API calls race;
        # only the transfers of one upload take turns (moto mishandles overlapping
        # writes to one key, which real S3 and the local store accept).
        data = shared[round_]
        created = ok(pick().create(name=f"shared {round_}.mkv", data=data))
        if "upload" in created:
            with shared_locks[round_]:
                etags = send(pick(), created["upload"], data, parts_from=pick())
            final = ok(pick().complete(created["upload"]["id"], etags))
            assert "file" in final
        ledger.owns(user, sha256_of(data))

        # Reads and small writes meanwhile.
        hashes = [(sha256_of(own), size), (sha256_of(data), len(data))]
        hashes += [(sha256_of(os.urandom(8)), 8) for _ in range(30)]
        results = pick().check(hashes)
        assert [r["duplicate"] for r in results[:2]] == [True, True]
        ok(pick().api("GET", "/files", params={"sort": rng.choice(["name", "-size"]),
                                               "q": rng.choice(["", "shared", user])}))
        ok(pick().api("PATCH", f"/files/{rng.choice(kept)}",
                      json={"name": f"renamed {user} {index} {round_}.mp4"}))
        cancelled = ok(pick().create(name="cancelled.mp4", data=os.urandom(2000)))["upload"]
        ok(pick().api("DELETE", f"/uploads/{cancelled['id']}"))
        if round_ % 2 == 1:
            victim = kept.pop(0)
            gone = ok(pick().api("GET", f"/files/{victim}"))["file"]["sha256"]
            ok(pick().api("DELETE", f"/files/{victim}"))
            ledger.owns(user, gone, present=False)


def run_load(urls: list[str]) -> Ledger:
    """Run every user's threads at once against the workers and return the ledger."""
    ledger = Ledger()
    threads = []
    start = threading.Barrier(len(USERS) * THREADS_PER_USER, timeout=120)
    for user in USERS:
        shared = [os.urandom(20_000 + n) for n in range(ROUNDS)]
        locks = [threading.Lock() for _ in range(ROUNDS)]
        for index in range(THREADS_PER_USER):

            def run(user: str = user, index: int = index, shared: list[bytes] = shared,
                    locks: list[threading.Lock] = locks) -> None:
                try:
                    user_thread(user, index, urls, ledger, shared, locks, start)
                except BaseException as error:  # reported below, with the odd answers
                    with ledger.lock:
                        ledger.failures.append(f"{user}/{index}: {error!r}")
                    start.abort()

            threads.append(threading.Thread(target=run))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return ledger


# --- checks ---------------------------------------------------------------------------------


def assert_consistent(app: Flask, ledger: Ledger) -> None:
    """The catalogue and the store agree, and hold exactly what the clients uploaded."""
    storage = get_storage(app)
    with db.session_scope(app) as session:
        files = session.exec(select(StoredFile)).all()
        pending = session.exec(select(PendingUpload)).all()
        names = {u.id: u.username for u in session.exec(select(User)).all()}
    assert pending == [], "uploads that were completed or cancelled are still pending"
    assert {f.key for f in files} == set(storage.iter_keys())
    assert open_multipart_uploads(storage) == []
    for user in USERS:
        mine = Counter(f.sha256 for f in files if names[f.owner_id] == user)
        assert set(mine) == ledger.expected[user], user
        assert max(mine.values()) == 1, user


@pytest.fixture
def cluster(app_config: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Flask, list[str]]]:
    """Worker processes started together on a fresh database, and an app to inspect it."""
    settings = {name: value for name, value in app_config.items() if name != "TESTING"}
    env = environment(**settings, INSTANCE_PATH=tmp_path / "instance")
    if app_config["STORAGE"] == "s3":
        # `movievault serve` refuses a bucket that does not exist: make it first, without an
        # app (which would make the database the workers are to find fresh).
        S3Storage(bucket=app_config["S3_BUCKET"], endpoint_url=app_config["S3_ENDPOINT_URL"]
                  ).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
    with worker_processes(env, WORKERS, tmp_path / "logs") as urls:
        inspector = create_app(app_config)
        get_storage(inspector).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
        for user in USERS:
            make_user(inspector, user)
        yield inspector, urls
    for log in sorted((tmp_path / "logs").iterdir()):
        output = log.read_text(errors="replace")
        assert "Traceback" not in output and "unhandled error" not in output, output[-3000:]


def test_workers_and_threads_at_once_never_fail_and_leave_a_consistent_catalogue(
    cluster: tuple[Flask, list[str]],
) -> None:
    app, urls = cluster
    started = time.monotonic()
    ledger = run_load(urls)
    elapsed = time.monotonic() - started
    summary = "\n".join(f"{n:4} x {what} -> {status}"
                        for (what, status), n in sorted(ledger.answers.items()))
    assert not ledger.failures, "\n".join(ledger.failures + ledger.unexpected) + "\n" + summary
    assert not ledger.unexpected, "\n".join(ledger.unexpected)
    assert all(status < 500 for _, status in ledger.answers)
    # Each round of each thread makes at least eight calls (more when it races and loses).
    assert sum(ledger.answers.values()) >= len(USERS) * THREADS_PER_USER * ROUNDS * 8, summary
    assert_consistent(app, ledger)
    print(f"\n{sum(ledger.answers.values())} API requests in {elapsed:.1f}s\n{summary}")


@pytest.mark.parametrize("database", ["sqlite"])
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app: Flask) -> None:
    with db.session_scope(app) as session:
        connection = session.connection()
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == db.BUSY_TIMEOUT_MS
    # WAL is a property of the file, so every process that opens it shares it.
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- what WAL and the busy timeout each contribute ------------------------------------------


@contextmanager
def another_process_writing(app: Flask, seconds: float) -> Iterator[None]:
    """Hold SQLite's write lock from a separate connection, as another worker would."""
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    holder = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE user SET username = username")
    release = threading.Timer(seconds, holder.execute, args=("COMMIT",))
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()


@pytest.mark.parametrize("database", ["sqlite"])
def test_a_write_waits_for_another_writer_instead_of_failing(app: Flask) -> None:
    # Without the busy timeout this request fails at once with "database is locked" (500).
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    body = {"name": "n.mp4", "size": 10, "sha256": "ab" * 32}
    with another_process_writing(app, seconds=1.0):
        started = time.monotonic()
        answer = alice.client.post("/api/uploads", json=body, headers=alice.headers())
        waited = time.monotonic() - started
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert waited >= 0.8  # it queued behind the other writer


@pytest.mark.parametrize("database", ["sqlite"])
def test_reads_go_on_while_another_writer_holds_the_lock(app: Flask) -> None:
    # In WAL mode readers never wait for writers; with a rollback journal this read would
    # wait for the whole write (here 3 s).
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    with another_process_writing(app, seconds=3.0):
        started = time.monotonic()
        answer = alice.client.get("/api/files")
        took = time.monotonic() - started
    assert answer.status_code == 200
    assert took < 1.0, took


def test_the_pool_keeps_a_connection_for_each_request_thread(app: Flask, database: str) -> None:
    """Twelve requests at once, twice over: the second round finds every connection the
    first one opened still open (with five kept, each request beyond them opened a
    connection and closed it after: a new server process each time on PostgreSQL)."""
    assert settings(app).threads >= 12  # the request threads a server runs (THREADS)
    engine = db.engine_of(app)
    engine.dispose()
    opened: list[object] = []
    event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    barrier = threading.Barrier(12, timeout=30)

    def request() -> None:
        """Hold a connection while the other threads get theirs."""
        with db.session_scope(app) as session:
            session.exec(select(User.id)).all()
            barrier.wait()

    for _ in range(2):
        threads = [threading.Thread(target=request) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not barrier.broken
    assert len(opened) == 12


def test_a_forked_worker_opens_connections_of_its_own(
    app: Flask, app_config: dict[str, Any], database: str
) -> None:
    """A pre-loading server (gunicorn --preload, uWSGI) forks its workers from the process
    that built the app: the app holds no connection then, a child never uses one it
    inherited (two processes on one socket mix up their answers), and the parent's
    connections outlive the child."""
    engine = db.engine_of(create_app(app_config))  # as wsgi.py builds it, catalogue migrated
    assert engine.pool.checkedin() == 0  # building the app let go of the migration's
    opened: list[object] = []
    event.listen(engine, "connect", lambda connection, _record: opened.append(connection))
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert len(opened) == 1 and engine.pool.checkedin() == 1  # kept for the next request
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns of forking a process with threads (moto's server, xdist's):
        # the child here only connects, answers and leaves, as a server's worker starts.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # the child: report whether it had to connect, and leave at once
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            os.write(write, str(len(opened)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        connects_in_child = answer.read()
    os.waitpid(child, 0)
    assert connects_in_child == "2"  # its own connection, opened after the fork
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert len(opened) == 1  # the parent's pooled connection still served it
