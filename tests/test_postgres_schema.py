"""The catalogue's schema on PostgreSQL: made by the migrations alone, byte counts 64-bit.

SQLite's own upgrade tests are in tests/test_migrations.py.
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from movievault import db, migrations
from movievault.models import StoredFile
from tests.support import AuthActions, make_user

GIB = 1024**3
BIG = 10 * GIB


@pytest.fixture
def engine(postgres_url: str) -> Any:
    """An engine on the test's empty PostgreSQL database, disposed after it."""
    made = db.make_engine(postgres_url)
    yield made
    made.dispose()


def _column_types(engine: Engine) -> dict[str, str]:
    """`table.column` -> its type as PostgreSQL names it, for the byte counts."""
    found = {}
    for table, column in [("file", "size"), ("pending_upload", "size"),
                          ("pending_upload", "part_size"), ("subtitle", "source_size"),
                          ("subtitle", "vtt_size"), ("user", "quota_bytes")]:
        kinds = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns(table)}
        found[f"{table}.{column}"] = kinds[column]
    return found


def test_an_empty_database_upgrades_to_exactly_what_the_models_declare(engine: Engine) -> None:
    migrations.upgrade(engine)
    with engine.connect() as connection:
        assert migrations.current(connection) == migrations.head()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # expression indexes are compared by name below
            context = MigrationContext.configure(
                connection, opts={"compare_type": migrations.compare_type}
            )
            differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    indexes = {index["name"]: index for index in inspect(engine).get_indexes("pending_upload")}
    # The partial unique index is partial on PostgreSQL too.
    where = indexes["uq_pending_owner_fingerprint"]["dialect_options"]["postgresql_where"]
    assert "sha256 IS NULL" in str(where)
    assert set(_column_types(engine).values()) == {"BIGINT"}
    # Every time is TIMESTAMP WITH TIME ZONE.
    zones = {(table, column["name"]): column["type"].timezone
             for table in inspect(engine).get_table_names()
             for column in inspect(engine).get_columns(table)
             if isinstance(column["type"], DateTime)}
    assert ("file", "created_at") in zones and set(zones.values()) == {True}
    # Running it again (every worker does at start) changes nothing and takes no error.
    migrations.upgrade(engine)


def test_byte_counts_of_the_previous_release_become_64_bit_with_every_row_intact(
    engine: Engine,
) -> None:
    migrations.upgrade(engine, "0005")
    assert _column_types(engine)["file.size"] == "INTEGER"
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO \"user\" (id, username, password_hash, created_at, session_generation)"
            " VALUES (1, 'alice', 'x', '2026-11-01 10:00:00', 0)"
        ))
        connection.execute(text(
            "INSERT INTO file (id, owner_id, name, size, sha256, content_type, key, created_at,"
            " title, media_status) VALUES (1, 1, 'Big.mkv', :size, :sha, 'video/x-matroska',"
            " 'movies/1/a', '2026-11-01 11:00:00', 'Big', 'ready')"
        ), {"size": 2**31 - 1, "sha": "ab" * 32})
        # Written as 0005 wrote times: UTC, without a zone.
        connection.execute(text(
            "INSERT INTO subtitle (id, file_id, label, source, name, source_key, source_size,"
            " vtt_key, vtt_size, created_at) VALUES (1, 1, 'English', 'file', 'Big.en.srt',"
            " 'movies/1/s', 1234, 'movies/1/s-vtt', 1300, '2026-11-01 12:00:00')"
        ))
    migrations.upgrade(engine)
    assert set(_column_types(engine).values()) == {"BIGINT"}
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, size FROM file")).all() == [(1, 2**31 - 1)]
        assert connection.execute(
            text("SELECT source_size, vtt_size FROM subtitle")
        ).all() == [(1234, 1300)]
        # The same moments, now with their zone (the server's own zone is not UTC).
        assert connection.execute(text(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM subtitle"
        )).scalar_one() == "2026-11-01 12:00"
        # What INTEGER refused ("integer out of range") now fits.
        connection.execute(text("UPDATE file SET size = :size"), {"size": BIG})
        assert connection.execute(text("SELECT size FROM file")).scalar_one() == BIG


@pytest.mark.parametrize("database", ["postgres"])
@pytest.mark.parametrize("backend", ["s3"])
def test_a_10_gib_movie_is_planned_recorded_and_listed_on_postgresql(
    app: Any, auth: AuthActions,
) -> None:
    """A 10 GiB upload is planned (multipart) and a 10 GiB file is listed with its total."""
    owner = make_user(app, "alice")
    auth.login("alice")
    client = auth.client
    created = client.post("/api/uploads", headers=auth.headers(), json={
        "name": "Huge.Film.2001.mkv", "size": BIG, "sha256": "cd" * 32,
        "content_type": "video/x-matroska",
    })
    assert created.status_code == 201, created.get_data(as_text=True)
    upload = created.get_json()["upload"]
    assert (upload["size"], upload["method"]) == (BIG, "multipart")
    assert upload["part_size"] * upload["part_count"] >= BIG
    with db.session_scope(app) as session:
        session.add(StoredFile(
            owner_id=owner, name="Other.Film.1999.mkv", size=BIG, sha256="ef" * 32,
            content_type="video/x-matroska", key="movies/1/big", title="Other Film",
        ))
        session.commit()
    listed = client.get("/api/files").get_json()
    assert [(f["name"], f["size"]) for f in listed["files"]] == [("Other.Film.1999.mkv", BIG)]
    assert listed["total_size"] == BIG
    shown = client.get(f"/api/files/{listed['files'][0]['id']}").get_json()["file"]
    assert shown["size"] == BIG


def test_a_catalogue_of_the_previous_release_keeps_its_big_sizes_on_sqlite(
    tmp_path: Path,
) -> None:
    """SQLite's INTEGER is 64-bit already: revision 0007 leaves its tables as they are."""
    path = tmp_path / "movievault.db"
    engine = db.make_engine(f"sqlite:///{path}")
    migrations.upgrade(engine, "0005")
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO user (id, username, password_hash, created_at,"
                           " session_generation) VALUES (1, 'alice', 'x', '2026-11-01', 0)")
        connection.execute(
            "INSERT INTO file (id, owner_id, name, size, sha256, content_type, key, created_at,"
            " title, media_status) VALUES (1, 1, 'Big.mkv', ?, ?, 'video/x-matroska',"
            " 'movies/1/a', '2026-11-01 11:00:00', 'Big', 'ready')", (BIG, "ab" * 32),
        )
        schema = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'file'").fetchone()
    migrations.upgrade(engine, "0008")  # past 0007 (0009 does rebuild it, for its ids)
    with engine.connect() as connection:
        assert migrations.current(connection) == "0008"
        assert connection.exec_driver_sql("SELECT size FROM file").scalar_one() == BIG
    engine.dispose()
    with sqlite3.connect(path) as connection:
        after = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'file'").fetchone()
    assert after == schema  # not copied into a new table


def test_processes_starting_together_on_an_empty_database_migrate_it_once(
    postgres_url: str,
) -> None:
    """Each engine stands for a process; the advisory lock makes all but one wait."""
    engines = [db.make_engine(postgres_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines), timeout=30)

    def start(engine: Engine) -> None:
        try:
            barrier.wait()
            migrations.upgrade(engine)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        with engines[0].connect() as connection:
            assert migrations.current(connection) == migrations.head()
            versions = connection.execute(text("SELECT count(*) FROM alembic_version"))
            assert versions.scalar_one() == 1
    finally:
        for engine in engines:
            engine.dispose()
