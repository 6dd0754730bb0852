"""Write transactions that start before their reads, where the database needs telling."""

from __future__ import annotations

from sqlmodel import Session


def begin_write(session: Session) -> None:
    """Start a write transaction now, so nothing read before the commit can change meanwhile.

    SQLite otherwise starts it at the first write, letting another process commit between
    this session's reads and its write; BEGIN IMMEDIATE takes the write lock first, and
    other writers queue behind it (the busy timeout). Other databases rely on constraints.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
