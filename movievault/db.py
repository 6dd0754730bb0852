"""The SQLite engine, per-request sessions and schema creation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex
from sqlmodel import Session, SQLModel, create_engine

from movievault import models  # noqa: F401  (registers the tables on SQLModel.metadata)

BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once; the busy timeout makes writers queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for `url`, configuring SQLite for several threads and processes."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def engine() -> Engine:
    """Return the current app's engine."""
    return current_app.extensions["movievault.engine"]


def session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """Open a session outside a request (CLI commands, tests)."""
    with Session(app.extensions["movievault.engine"], expire_on_commit=False) as db:
        yield db


def _close_session(_exc: BaseException | None) -> None:
    """Close this request's session; anything not committed is rolled back."""
    db = g.pop("db_session", None)
    if db is not None:
        db.close()


def create_schema(eng: Engine) -> None:
    """Create missing tables and indexes, one process at a time.

    Workers starting together on a new database would otherwise all find no tables, all
    create them, and all but one crash with "table ... already exists".
    """
    with eng.connect() as connection:
        if eng.dialect.name == "sqlite":
            # Take the write lock before looking; the others wait for it, then see the tables.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        SQLModel.metadata.create_all(connection)
        # create_all skips tables that exist, and with them any index added since: add those.
        for table in SQLModel.metadata.sorted_tables:
            for index in table.indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))
        connection.commit()


def init_app(app: Flask) -> None:
    """Create the engine and the tables, and close sessions after each request."""
    eng = make_engine(app.config["DATABASE_URL"])
    create_schema(eng)
    app.extensions["movievault.engine"] = eng
    app.teardown_appcontext(_close_session)
