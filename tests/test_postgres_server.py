"""The tests' PostgreSQL server (tests/postgres.py): fresh databases, and a catalogue on one."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from movievault import db, migrations
from movievault.models import User
from tests.postgres import PostgresServer


def test_each_test_gets_a_fresh_empty_database(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The database is new and empty, on the server's loopback port, as its own superuser."""
    assert postgres_url.startswith(f"postgresql+psycopg://movievault@127.0.0.1:"
                                   f"{postgres_server.port}/t_")
    engine = db.make_engine(postgres_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    listens = postgres_server.execute("SHOW listen_addresses")
    assert listens == [("127.0.0.1",)]


def test_a_catalogue_opens_on_postgresql_at_the_newest_revision(postgres_url: str) -> None:
    """The migrations run on an empty PostgreSQL database and leave it usable."""
    engine = db.open_catalogue(postgres_url)
    try:
        with engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
        with Session(engine) as session:
            session.add(User(username="alice", password_hash="x"))
            session.commit()
            assert session.exec(select(User.username)).all() == ["alice"]
    finally:
        engine.dispose()


def _terminate_backends(server: PostgresServer, database: str) -> None:
    """Close every server-side connection to `database`, as a restart of the server does."""
    server.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


def test_a_connection_closed_while_idle_is_replaced_before_use(
    postgres_server: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server closed the pooled connection while it was idle (restarted, or a firewall
    dropped it): the ping at checkout finds out, and a new connection serves instead."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = db.make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _terminate_backends(postgres_server, make_url(postgres_url).database or "")
        with engine.connect() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a connection goes back to the pool and out again within milliseconds:
    no ping then (a round trip per request); one idle longer than the limit is pinged."""
    engine = db.make_engine(postgres_url, connections=1)
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda dbapi: pings.append(dbapi) or real(dbapi))
    try:
        for _ in range(3):
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        assert pings == []
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        engine.dispose()
