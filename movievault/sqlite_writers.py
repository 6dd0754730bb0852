"""SQLite's writers take turns in a queue that wakes the next one the moment the last ends.

SQLite lets one connection write at a time. One that finds the write lock taken waits in
SQLite's busy handler, which sleeps 1, 2, 5, ... up to 100 ms between tries: it never
learns the lock was freed, so under a steady stream of writes some waited for seconds
while others went ahead (P2: create's p99 was 0.6 s at 32 clients, for a 2 ms write).

Here a connection first takes its turn before the statement that begins a write
transaction (an INSERT, UPDATE, DELETE or an explicit BEGIN), and gives it up when the
transaction ends: a lock shared by the threads of this process, then an exclusive
`flock` on a file beside the database, shared with every other process of this host
(gunicorn's workers, `movievault probe`). Both wake a waiter as soon as they are free.
SQLite's own lock and busy timeout still guard against writers that do not queue here
(the `sqlite3` shell, a backup).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from typing import Any

#: The statements that begin a transaction in Python's sqlite3 (its implicit BEGIN comes
#: before data-changing statements only), and an explicit BEGIN.
_BEGINS_WRITE = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


class WriterQueue:
    """One writer at a time among this process's threads and this host's processes."""

    def __init__(self, database: str | None, timeout: float) -> None:
        # None: an in-memory database, which no other process can open.
        self.lock_path = f"{database}-writers" if database else None
        self.timeout = timeout
        self._reset()
        _queues.add(self)

    def _reset(self) -> None:
        """Start with no turn held and no lock file open (also in a forked child, whose
        copy of the parent's lock may be held, and whose inherited file would share the
        parent's flock)."""
        if getattr(self, "_file", None) is not None:
            os.close(self._file)  # type: ignore[arg-type]
        self._turn = threading.Lock()
        self._file: int | None = None

    def acquire(self) -> None:
        """Wait for this connection's turn to write; OperationalError if this process's
        other writers hold it for longer than `timeout`."""
        if not self._turn.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked")
        if self.lock_path is None:
            return
        try:
            if self._file is None:
                self._file = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            # Asleep in the kernel until the process writing now ends its transaction, or
            # ends: the kernel lets go of a dead process's lock. (No time limit here: one
            # thread per process waits, and the others give up at `timeout` above.)
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except BaseException:
            self._turn.release()
            raise

    def release(self) -> None:
        """End this connection's turn."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._turn.release()


_queues: weakref.WeakSet[WriterQueue] = weakref.WeakSet()


def _after_fork() -> None:
    """A forked child starts with every queue free and no lock file open."""
    for queue in list(_queues):
        queue._reset()


os.register_at_fork(after_in_child=_after_fork)


class _Cursor(sqlite3.Cursor):
    """Takes the connection's turn before a statement that begins a write transaction."""

    connection: QueuedConnection

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        """Run one statement, queued if it begins a write."""
        self.connection.turn_before(sql)
        try:
            super().execute(sql, parameters)
        finally:
            self.connection.turn_after()
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        """Run one statement for each set of parameters, queued if it begins a write."""
        self.connection.turn_before(sql)
        try:
            super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.turn_after()
        return self


class QueuedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions wait their turn in `queue`."""

    queue: WriterQueue

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holding = False

    def cursor(self, factory: Any = _Cursor) -> Any:
        """Cursors that queue for writing."""
        return super().cursor(factory)

    # sqlite3's own shortcuts make a plain cursor: these use the queued one.
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        """Run one statement on a new cursor, queued if it begins a write."""
        return self.cursor().execute(sql, parameters)

    def executemany(
        self, sql: str, seq_of_parameters: Any, /
    ) -> Any:
        """Run one statement for each set of parameters, queued if it begins a write."""
        return self.cursor().executemany(sql, seq_of_parameters)

    def turn_before(self, sql: str) -> None:
        """Queue before a statement that begins a write transaction."""
        if not self._holding and not self.in_transaction:
            if sql.lstrip()[:7].upper().startswith(_BEGINS_WRITE):
                self.queue.acquire()
                self._holding = True

    def turn_after(self) -> None:
        """Give up the turn once no transaction is open (a statement that failed, or one
        run outside a transaction)."""
        if self._holding and not self.in_transaction:
            self._holding = False
            self.queue.release()

    def commit(self) -> None:
        """Commit, then let the next writer go."""
        try:
            super().commit()
        finally:
            self.turn_after()

    def rollback(self) -> None:
        """Roll back, then let the next writer go."""
        try:
            super().rollback()
        finally:
            self.turn_after()

    def close(self) -> None:
        """Close (which rolls back what is open), then let the next writer go."""
        try:
            super().close()
        finally:
            if self._holding:
                self._holding = False
                self.queue.release()


def connection_class(database: str | None, timeout: float) -> type[QueuedConnection]:
    """A connection class (sqlite3.connect's `factory`) whose connections share one queue
    for the database file `database` (None: in memory)."""
    queue = WriterQueue(database, timeout)
    return type("QueuedConnection", (QueuedConnection,), {"queue": queue})
