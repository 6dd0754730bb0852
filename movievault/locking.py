"""Write transactions that start before their reads, where the database needs telling.

SQLite has one writer at a time: BEGIN IMMEDIATE takes the database's write lock before
anything is read, and every other writer queues behind it. PostgreSQL lets writers run side
by side and sees each statement's newest commits (READ COMMITTED), so a read-then-write
(is there room in the quota? is this file there already?) takes a lock of its own: a
transaction-level advisory lock per scope ("owner:7", "login-addr:10.0.0.1"), which only
writers of the same scope wait for, and which ends with the commit or rollback.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

#: One call takes the locks of every scope in this order, so two writers cannot wait for
#: each other holding one lock each.
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:scope, 0))")


def owner_scope(owner_id: int) -> str:
    """The scope of one user's library: what they upload and what counts toward their quota."""
    return f"owner:{owner_id}"


def begin_write(session: Session, *scopes: str) -> None:
    """Start a write transaction now, so nothing read before the commit can change meanwhile
    (by a writer of the same `scopes`, on PostgreSQL; by any writer, on SQLite).

    SQLite otherwise starts it at the first write, letting another process commit between
    this session's reads and its write. Other databases rely on constraints.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        lock(session, *scopes)


def lock(session: Session, *scopes: str) -> None:
    """Within a write transaction begun already, wait for others of the same `scopes`.

    Only PostgreSQL needs it: SQLite's writers take turns with its one write lock, and a
    transaction begun by `begin_write` holds it from its start.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for scope in sorted(set(scopes)):
        session.connection().execute(_LOCK, {"scope": scope})
