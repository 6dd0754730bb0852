"""The database engine, per-request sessions, and the schema brought up to date at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from movievault import migrations
from movievault.config import settings

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
    return engine_of(current_app)


def engine_of(app: Flask) -> Engine:
    """Return `app`'s engine (outside a request: CLI commands, background threads)."""
    made: Engine = app.extensions["movievault.engine"]
    return made


def session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    opened: Session = g.db_session
    return opened


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """Open a session outside a request (CLI commands, tests)."""
    with Session(engine_of(app), expire_on_commit=False) as db:
        yield db


def _close_session(_exc: BaseException | None) -> None:
    """Close this request's session; anything not committed is rolled back."""
    db = g.pop("db_session", None)
    if db is not None:
        db.close()


def create_schema(eng: Engine) -> None:
    """Create or upgrade the catalogue's tables to the newest revision (see `migrations`)."""
    migrations.upgrade(eng)


def init_app(app: Flask) -> None:
    """Create the engine and the tables, and close sessions after each request."""
    eng = make_engine(settings(app).database_url)
    if not app.config.get("SKIP_MIGRATIONS"):
        create_schema(eng)
    app.extensions["movievault.engine"] = eng
    app.teardown_appcontext(_close_session)
