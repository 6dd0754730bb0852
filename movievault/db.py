"""The database engine, per-request sessions, and the schema brought up to date at start."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from movievault import migrations, sqlite_writers
from movievault.config import ConfigError, settings

BUSY_TIMEOUT_MS = 30_000
#: A pooled PostgreSQL connection left unused this long is pinged before it serves again:
#: the server may have restarted, or a firewall dropped the connection, meanwhile. One in
#: steady use is not, which saves a round trip per request under load.
PING_AFTER_IDLE_SECONDS = 5.0

#: Every engine made here, so a forked child can let go of the connections it inherited.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    """In a forked child, start every engine's pool afresh without closing the parent's
    connections: a pre-loading server (gunicorn --preload, uWSGI) forks workers from a
    process that may hold some, and two processes on one socket mix up their answers."""
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once; the busy timeout makes writers queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, *, connections: int = 5) -> Engine:
    """Create an engine for `url`, configuring SQLite for several threads and processes,
    and PostgreSQL's sessions for the times the catalogue keeps.

    The pool keeps up to `connections` open (the request threads that may each hold one):
    with fewer, every request beyond them opened a connection and closed it again after,
    which costs a PostgreSQL server a new backend process each time.
    """
    # As many again may open for a burst (background jobs, commands) and close after.
    pool = {"pool_size": connections, "max_overflow": connections}
    if url.startswith("sqlite"):
        database = make_url(url).database
        writers = sqlite_writers.connection_class(
            database if database not in (None, "", ":memory:") else None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000,
                               "factory": writers},
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _engines.add(engine)
        return engine
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # psycopg 3 (the `postgres` extra), not SQLAlchemy's default of psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if parsed.drivername in ("postgresql+psycopg", "postgresql+psycopg2"):
        # Times are stored without a zone, in UTC. The driver sends Python's aware times as
        # TIMESTAMPTZ, which the server turns into its session's zone: that must be UTC,
        # whatever the server's own default is.
        connect_args["options"] = "-c timezone=UTC"
    engine = create_engine(parsed, connect_args=connect_args, **pool)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    _engines.add(engine)
    return engine


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Remember when the connection went back to the pool."""
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Callable[[Any, ConnectionPoolEntry, Any], None]:
    """A checkout hook that pings a connection idle for PING_AFTER_IDLE_SECONDS; one that
    fails is replaced by a new connection (the pool retries on DisconnectionError).

    A connection the server closed while in steady use fails its next statement instead;
    SQLAlchemy then replaces every connection of the pool, so after a restart under load
    one request per process answers 500 rather than one per connection.
    """

    def ping(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        """Ping the connection if it has been idle a while."""
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection was closed: {error}") from error

    return ping


def size_pool(app: Flask, connections: int) -> None:
    """Give `app` an engine keeping `connections` connections (`serve --threads`)."""
    app.extensions["movievault.engine"].dispose()
    app.extensions["movievault.engine"] = make_engine(
        settings(app).database_url, connections=connections
    )


def pool_size(app: Flask) -> int:
    """How many connections `app`'s engine keeps open."""
    size: int = engine_of(app).pool.size()  # type: ignore[attr-defined]
    return size


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


def shown_url(url: str) -> str:
    """`url` as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "MOVIEVAULT_DATABASE_URL"


def open_catalogue(url: str, *, migrate: bool = True, connections: int = 5) -> Engine:
    """The engine for `url` with its schema brought up to date (unless `migrate` is False).

    A database MovieVault cannot use raises ConfigError, one sentence saying why: an unknown
    URL, a driver that is not installed, a database that cannot be reached or written.
    """
    try:
        eng = make_engine(url, connections=connections)
    except ArgumentError as error:
        raise ConfigError(
            f"MOVIEVAULT_DATABASE_URL is not a database URL MovieVault can use ({error}): "
            "give one such as sqlite:////var/lib/movievault/movievault.db."
        ) from error
    except ImportError as error:
        raise ConfigError(
            f"The database {shown_url(url)} needs the Python module {error.name}, which is not "
            "installed: install it beside MovieVault, or use another MOVIEVAULT_DATABASE_URL."
        ) from error
    if migrate:
        try:
            create_schema(eng)
        except (OperationalError, InterfaceError) as error:
            # The driver's own words, first line only (some add hints on further lines).
            reason = str(error.orig or error).strip().splitlines()[0]
            advice = (
                "check that MovieVault may write to it and to its folder"
                if eng.dialect.name == "sqlite"
                else "check MOVIEVAULT_DATABASE_URL, and that the server is running and lets "
                "MovieVault in"
            )
            raise ConfigError(
                f"Could not open the catalogue database {shown_url(url)} ({reason}): {advice}."
            ) from error
        # The app may be forked next (a pre-loading server): keep no connection open.
        eng.dispose()
    return eng


def init_app(app: Flask) -> None:
    """Create the engine and the tables, and close sessions after each request."""
    config = settings(app)
    eng = open_catalogue(
        config.database_url, migrate=not app.config.get("SKIP_MIGRATIONS"),
        connections=config.threads,
    )
    app.extensions["movievault.engine"] = eng
    app.teardown_appcontext(_close_session)
