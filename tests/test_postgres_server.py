"""The tests' PostgreSQL server (tests/postgres.py): fresh databases, and a catalogue on one."""

from __future__ import annotations

from sqlalchemy import inspect
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
