"""SQLite's writers queue for their turn (movievault/sqlite_writers.py).

Most connections here give SQLite's own busy handler no time at all (timeout 0): a writer
that finds the write lock taken fails at once with "database is locked", unless the queue
made it wait for its turn.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from movievault import db, sqlite_writers

WRITES_EACH = 40
THREADS = 4


def _connect(path: Path, queue_timeout: float = 30.0) -> sqlite3.Connection:
    """A queued connection whose SQLite busy timeout is zero."""
    factory = sqlite_writers.connection_class(str(path), timeout=queue_timeout)
    connection = sqlite3.connect(path, timeout=0, factory=factory, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def _pair(path: Path, queue_timeout: float) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """Two queued connections of one process (one queue), SQLite's busy timeout zero."""
    factory = sqlite_writers.connection_class(str(path), timeout=queue_timeout)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=0, factory=factory, check_same_thread=False)

    return connect(), connect()


def _create(path: Path) -> None:
    """A table of numbers, written by the tests."""
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE n (writer TEXT, value INTEGER)")


def _write_many(path: str, writer: str) -> None:
    """Several threads of this process, each writing its own connection: an implicit
    transaction (INSERT ... commit), and one begun explicitly (BEGIN IMMEDIATE).

    SQLite's busy timeout is the app's here: with none, SQLite itself answers "database is
    locked" now and then while another process's connection opens or closes its WAL.
    """
    factory = sqlite_writers.connection_class(path, timeout=30)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        connection = sqlite3.connect(path, timeout=db.BUSY_TIMEOUT_MS / 1000, factory=factory,
                                     check_same_thread=False)
        try:
            for value in range(WRITES_EACH):
                if value % 2:
                    connection.execute("BEGIN IMMEDIATE")
                    (count,) = connection.execute("SELECT count(*) FROM n").fetchone()
                    connection.execute("INSERT INTO n VALUES (?, ?)", (writer, count))
                else:
                    connection.execute("INSERT INTO n VALUES (?, ?)", (writer, -1))
                connection.commit()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_writers_of_several_processes_and_threads_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.db"
    _create(path)
    _connect(path).close()  # WAL, as the app's connections set it
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        pool.starmap(_write_many, [(str(path), "a"), (str(path), "b")])
    with sqlite3.connect(path) as check:
        rows = check.execute("SELECT count(*), count(DISTINCT value) FROM n").fetchone()
        by_writer = dict(check.execute("SELECT writer, count(*) FROM n GROUP BY writer"))
    expected = THREADS * WRITES_EACH
    assert by_writer == {"a": expected, "b": expected}
    # Each explicit transaction counted the rows and wrote the count: all different,
    # since no two of them ran at once (plus the one value -1 of the implicit ones).
    assert rows == (2 * expected, expected + 1)


def _write_one(path: str, written: multiprocessing.Event) -> None:
    """In another process: write one row through a queue of its own."""
    factory = sqlite_writers.connection_class(path, timeout=30)
    connection = sqlite3.connect(path, timeout=0, factory=factory)
    connection.execute("INSERT INTO n VALUES ('other process', 2)")
    connection.commit()
    written.set()


def test_a_write_waits_for_the_turn_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.db"
    _create(path)
    factory = sqlite_writers.connection_class(str(path), timeout=30)
    factory.queue.acquire()  # this process's turn: its writer is between two statements
    spawn = multiprocessing.get_context("spawn")
    written = spawn.Event()
    other = spawn.Process(target=_write_one, args=(str(path), written))
    other.start()
    try:
        assert not written.wait(1.0), "the other process wrote during this one's turn"
    finally:
        factory.queue.release()
    assert written.wait(30)
    other.join(30)
    assert other.exitcode == 0


def test_a_write_waits_for_the_one_under_way_in_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.db"
    _create(path)
    first, second = _pair(path, queue_timeout=30)
    first.execute("INSERT INTO n VALUES ('first', 1)")
    started = threading.Event()

    def write_second() -> None:
        started.set()
        second.execute("INSERT INTO n VALUES ('second', 2)")
        second.commit()

    thread = threading.Thread(target=write_second)
    thread.start()
    started.wait()
    thread.join(0.2)
    assert thread.is_alive(), "the second write went ahead while the first was open"
    first.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert first.execute("SELECT writer FROM n ORDER BY value").fetchall() == [
        ("first",), ("second",)
    ]


def test_a_turn_ends_with_a_rollback_a_failed_statement_or_a_closed_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalogue.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE n (value INTEGER UNIQUE)")
        setup.execute("INSERT INTO n VALUES (1)")
    one, other = _pair(path, queue_timeout=0.5)

    one.execute("INSERT INTO n VALUES (2)")
    one.rollback()
    other.execute("INSERT INTO n VALUES (3)")
    other.commit()

    # Outside a transaction (autocommit), a refused statement leaves nothing open.
    one.isolation_level = None
    with pytest.raises(sqlite3.IntegrityError):
        one.execute("INSERT INTO n VALUES (1)")
    other.execute("INSERT INTO n VALUES (4)")
    other.commit()

    one.isolation_level = ""
    one.execute("INSERT INTO n VALUES (5)")
    one.close()  # mid-transaction: SQLite rolls it back
    other.execute("INSERT INTO n VALUES (6)")
    other.commit()
    assert [v for (v,) in other.execute("SELECT value FROM n ORDER BY value")] == [1, 3, 4, 6]


def test_a_writer_gives_up_after_the_timeout_as_a_busy_sqlite_would(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.db"
    _create(path)
    one, other = _pair(path, queue_timeout=0.2)
    one.execute("INSERT INTO n VALUES ('one', 1)")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        other.execute("INSERT INTO n VALUES ('other', 2)")
    one.commit()
    other.execute("INSERT INTO n VALUES ('other', 2)")  # its turn came, nothing stuck
    other.commit()


def _write_once(path: str, factory: type[sqlite3.Connection], done: multiprocessing.Queue
                ) -> None:
    """In a forked child: write one row with the class inherited from the parent."""
    try:
        connection = sqlite3.connect(path, timeout=0, factory=factory)
        connection.execute("INSERT INTO n VALUES ('child', 2)")
        connection.commit()
        done.put("written")
    except sqlite3.Error as error:
        done.put(str(error))


def test_a_child_forked_while_the_parent_writes_gets_its_own_turn(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.db"
    _create(path)
    factory = sqlite_writers.connection_class(str(path), timeout=5)
    # A thread of the parent is writing at the fork. (Its connection is left out: SQLite
    # forbids carrying an open connection into a child, which the app's engines respect.)
    factory.queue.acquire()
    fork = multiprocessing.get_context("fork")
    done: multiprocessing.Queue = fork.Queue()
    child = fork.Process(target=_write_once, args=(str(path), factory, done))
    child.start()
    # The child waits for the parent through the lock file. Its copy of this process's
    # turn, taken at the fork, would never be given back: it would give up after 5 s.
    factory.queue.release()
    assert done.get(timeout=30) == "written"
    child.join(30)
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT writer FROM n").fetchall() == [("child",)]


def test_the_app_s_sqlite_engine_queues_its_writers(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'catalogue.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE n (value INTEGER)"))
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO n VALUES (1)"))
        raw = engine.raw_connection()
        try:
            assert isinstance(raw.dbapi_connection, sqlite_writers.QueuedConnection)
        finally:
            raw.close()
        assert (tmp_path / "catalogue.db-writers").exists()
    finally:
        engine.dispose()
