"""Schema migrations: a new catalogue, and one made by release 0.1.0, end up the same."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel
from werkzeug.security import generate_password_hash

from movievault import create_app, db, migrations
from movievault.backends import get_storage
from movievault.cli import cli
from movievault.migrations import MigrationRefused
from movievault.storage.local import LocalStorage
from tests.legacy import make_catalogue_0_1_0
from tests.support import MIB, PASSWORD, AuthActions

SHA = "ab" * 32


@pytest.fixture
def backend() -> str:
    """The schema does not depend on the store: one backend is enough."""
    return "local"


@pytest.fixture
def catalogue(app_config: dict[str, Any]) -> Path:
    """The path of the catalogue the app under test will open."""
    return Path(app_config["DATABASE_URL"].removeprefix("sqlite:///"))


def _rows(path: Path, table: str) -> list[dict[str, Any]]:
    """Every row of `table`, as dicts, in id order."""
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY id')]


def _fill_0_1_0(path: Path, usernames: list[str]) -> None:
    """A library as release 0.1.0 kept it: accounts, a file, a pending upload, a failure."""
    make_catalogue_0_1_0(path)
    with sqlite3.connect(path) as connection:
        for n, name in enumerate(usernames, start=1):
            connection.execute(
                "INSERT INTO user (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (n, name, generate_password_hash(PASSWORD), "2026-10-01 10:00:00.000000"),
            )
        connection.execute(
            "INSERT INTO file (id, owner_id, name, size, sha256, content_type, key, fingerprint,"
            " upload_id, created_at) VALUES (7, 1, 'Film (1999).mkv', 5, ?, 'video/x-matroska',"
            " 'movies/1/0123456789abcdef0123456789abcdef', NULL, 'u1', '2026-10-02 11:00:00')",
            (SHA,),
        )
        connection.execute(
            "INSERT INTO pending_upload (id, owner_id, sha256, fingerprint, size, name,"
            " content_type, key, method, multipart_id, part_size, completing_since, created_at,"
            " expires_at) VALUES ('p1', 1, ?, NULL, 9, 'Other.mp4', 'video/mp4',"
            " 'movies/1/fedcba9876543210fedcba9876543210', 'post', NULL, NULL, NULL,"
            " '2026-10-02 11:00:00', '2999-01-01 00:00:00')",
            ("cd" * 32,),
        )
        connection.execute(
            "INSERT INTO login_attempt (id, subject, at) VALUES (1, 'addr:10.0.0.1', ?)",
            ("2026-10-02 11:00:00",),
        )


def test_a_new_catalogue_is_exactly_what_the_models_declare(app: Any) -> None:
    engine = db.make_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        assert migrations.current(connection) == migrations.head()
        with warnings.catch_warnings():
            # SQLite's indexes on expressions cannot be reflected, so they are skipped.
            warnings.simplefilter("ignore")
            context = MigrationContext.configure(
                connection, opts={"compare_type": migrations.compare_type}
            )
            differences = compare_metadata(context, SQLModel.metadata)
        assert differences == []
    # The expression indexes, which the comparison cannot see, are there too.
    path = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"uq_user_username_lower", "ix_file_owner_lower_name"} <= indexes
    engine.dispose()


def test_a_0_1_0_catalogue_upgrades_with_every_row_intact(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill_0_1_0(catalogue, ["alice", "bob"])
    before = {table: _rows(catalogue, table)
              for table in ("user", "file", "pending_upload", "login_attempt")}
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    get_storage(app).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
    for table, rows in before.items():
        after = _rows(catalogue, table)
        # Every old column keeps its value; the new ones get their defaults.
        assert [{k: row[k] for k in rows[0]} for row in after] == rows
    assert [(u["session_generation"], u["quota_bytes"]) for u in _rows(catalogue, "user")] == [
        (0, None), (0, None)
    ]
    assert [a["in_flight"] for a in _rows(catalogue, "login_attempt")] == [0]
    assert [(f["title"], f["year"], f["media_status"]) for f in _rows(catalogue, "file")] == [
        ("Film", 1999, "pending")
    ]
    # The upgraded library works: alice signs in, sees her file, resumes her upload.
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login("Alice").status_code == 302
    listed = client.get("/api/files").get_json()
    assert [(f["id"], f["name"], f["sha256"], f["title"], f["year"], f["media"]["status"])
            for f in listed["files"]] == [(7, "Film (1999).mkv", SHA, "Film", 1999, "pending")]
    resumed = client.post(
        "/api/uploads", headers=auth.headers(),
        json={"name": "Other.mp4", "size": 9, "sha256": "cd" * 32, "content_type": "video/mp4"},
    )
    assert resumed.status_code == 200 and resumed.get_json()["upload"]["id"] == "p1"


def test_names_differing_only_in_case_stop_the_upgrade_until_one_is_renamed(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill_0_1_0(catalogue, ["carol", "Carol", "dave"])
    before = _rows(catalogue, "user")
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(MigrationRefused, match="Carol, carol") as refused:
        create_app(app_config)
    assert "movievault rename-user" in refused.value.message
    # Nothing changed: no new column, no revision recorded, the same accounts.
    assert _rows(catalogue, "user") == before
    with sqlite3.connect(catalogue) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "alembic_version" not in tables
    # The command the message names works on the old catalogue, and then the app starts.
    monkeypatch.setenv("MOVIEVAULT_DATABASE_URL", app_config["DATABASE_URL"])
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", app_config["SECRET_KEY"])
    monkeypatch.setenv("MOVIEVAULT_DATA_DIR", app_config["DATA_DIR"])
    taken = CliRunner().invoke(cli, ["rename-user", "Carol", "Dave"])
    assert taken.exit_code != 0 and "already taken" in taken.output
    renamed = CliRunner().invoke(cli, ["rename-user", "Carol", "caroline"])
    assert renamed.exit_code == 0, renamed.output
    app = create_app(app_config)
    assert [u["username"] for u in _rows(catalogue, "user")] == ["carol", "caroline", "dave"]
    assert AuthActions(app.test_client()).login("caroline").status_code == 302


def test_db_upgrade_reports_the_revision(app: Any) -> None:
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"at revision {migrations.head()}" in result.output


def test_a_multipart_upload_begun_before_checksums_still_finishes_without_them(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """0.1.0 created multipart uploads without a checksum algorithm: upgraded, such an upload
    keeps none (its parts are still asked for by number, unsigned) and completes."""
    _fill_0_1_0(catalogue, ["alice"])
    store = LocalStorage(root=app_config["DATA_DIR"], secret=app_config["SECRET_KEY"])
    store.setup()
    data, key = os.urandom(7 * MIB), "movies/1/" + "e" * 32
    multipart_id = store.start_multipart(key=key, content_type="video/x-matroska")
    with sqlite3.connect(catalogue) as connection:
        connection.execute(
            "INSERT INTO pending_upload (id, owner_id, sha256, fingerprint, size, name,"
            " content_type, key, method, multipart_id, part_size, completing_since,"
            " created_at, expires_at) VALUES ('m1', 1, ?, NULL, ?, 'Old.mkv',"
            " 'video/x-matroska', ?, 'multipart', ?, ?, NULL, '2026-10-02 11:00:00',"
            " '2999-01-01 00:00:00')",
            (hashlib.sha256(data).hexdigest(), len(data), key, multipart_id, 5 * MIB),
        )
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    assert {row["id"]: row["checksum"] for row in _rows(catalogue, "pending_upload")} == {
        "p1": None, "m1": None,
    }
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login("alice").status_code == 302
    resumed = client.post("/api/uploads", headers=auth.headers(), json={
        "name": "Old.mkv", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": "video/x-matroska"})
    assert resumed.status_code == 200 and resumed.get_json()["upload"]["id"] == "m1"
    assert "checksum" not in resumed.get_json()["upload"]
    parts = client.post("/api/uploads/m1/parts", headers=auth.headers(),
                        json={"part_numbers": [1, 2]}).get_json()["parts"]
    assert [p["headers"] for p in parts] == [{}, {}]
    for entry in parts:
        start = (entry["part_number"] - 1) * 5 * MIB
        sent = client.put(entry["url"], data=data[start : start + 5 * MIB])
        assert sent.status_code == 200, sent.get_data(as_text=True)
    done = client.post("/api/uploads/m1/complete", headers=auth.headers(), json={})
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.get_json()["file"]["sha256"] == hashlib.sha256(data).hexdigest()


#: The revision of the release before movie metadata (part checksums).
PREVIOUS_RELEASE = "0003"


def _fill_previous_release(path: Path, revision: str = PREVIOUS_RELEASE) -> None:
    """A library as the release before movie metadata (or `revision`) kept it: two
    accounts, three files, a pending upload."""
    engine = db.make_engine(f"sqlite:///{path}")
    migrations.upgrade(engine, revision)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        for n, name in enumerate(["alice", "bob"], start=1):
            connection.execute(
                "INSERT INTO user (id, username, password_hash, created_at, session_generation,"
                " quota_bytes) VALUES (?, ?, ?, '2026-11-01 10:00:00.000000', 3, ?)",
                (n, name, generate_password_hash(PASSWORD), 10**12 if n == 2 else None),
            )
        names = [(1, "Long.Film.1999.1080p.BluRay.x264-GRP.mkv"), (1, "holiday.mp4"),
                 (2, "Heat (1995).mkv")]
        for n, (owner, name) in enumerate(names, start=1):
            connection.execute(
                "INSERT INTO file (id, owner_id, name, size, sha256, content_type, key,"
                " fingerprint, upload_id, created_at) VALUES (?, ?, ?, ?, ?, 'video/mp4', ?,"
                " NULL, ?, ?)",
                (n, owner, name, 1000 + n, f"{n:064x}", f"movies/{owner}/{n:032x}", f"u{n}",
                 f"2026-11-0{n} 11:00:00.000000"),
            )
        connection.execute(
            "INSERT INTO pending_upload (id, owner_id, sha256, fingerprint, size, name,"
            " content_type, key, method, multipart_id, part_size, completing_since, created_at,"
            " expires_at) VALUES ('p1', 1, ?, NULL, 9, 'Other.mp4', 'video/mp4',"
            " 'movies/1/fedcba9876543210fedcba9876543210', 'post', NULL, NULL, NULL,"
            " '2026-11-02 11:00:00', '2999-01-01 00:00:00')",
            ("cd" * 32,),
        )


def test_a_catalogue_of_the_previous_release_gains_titles_and_a_probe_job_per_file(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill_previous_release(catalogue)
    before = {table: _rows(catalogue, table) for table in ("user", "file", "pending_upload")}
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    get_storage(app).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
    for table, rows in before.items():
        # Every row is there, and every old column keeps its value.
        assert [{k: row[k] for k in rows[0]} for row in _rows(catalogue, table)] == rows
    files = _rows(catalogue, "file")
    assert [(f["title"], f["year"], f["media_status"], f["poster_key"]) for f in files] == [
        ("Long Film", 1999, "pending", None),
        ("holiday", None, "pending", None),
        ("Heat", 1995, "pending", None),
    ]
    # One job each, due when its file was added (so files uploaded from now on go first).
    assert [(j["file_id"], j["attempts"], j["due_at"], j["lease"])
            for j in _rows(catalogue, "probe_job")] == [
        (f["id"], 0, f["created_at"], None) for f in files
    ]
    # The library works as before: bob signs in with his session generation and quota
    # kept, sees his file and finds it by its title; alice resumes her upload.
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login("bob").status_code == 302
    found = client.get("/api/files?q=heat").get_json()
    assert [(f["id"], f["title"], f["media"]["status"]) for f in found["files"]] == [
        (3, "Heat", "pending")
    ]
    auth.logout()
    assert auth.login("alice").status_code == 302
    resumed = client.post(
        "/api/uploads", headers=auth.headers(),
        json={"name": "Other.mp4", "size": 9, "sha256": "cd" * 32, "content_type": "video/mp4"},
    )
    assert resumed.status_code == 200 and resumed.get_json()["upload"]["id"] == "p1"


def test_a_catalogue_with_movie_metadata_gains_subtitles_with_every_row_intact(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill_previous_release(catalogue, "0004")
    before = {table: _rows(catalogue, table) for table in ("user", "file", "pending_upload")}
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    get_storage(app).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
    for table, rows in before.items():
        assert [{k: row[k] for k in rows[0]} for row in _rows(catalogue, table)] == rows
    # The pending upload is a movie's, as it was; no movie has subtitles yet.
    assert [u["subtitle_for"] for u in _rows(catalogue, "pending_upload")] == [None]
    assert _rows(catalogue, "subtitle") == []
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login("alice").status_code == 302
    shown = client.get("/api/files/1").get_json()["file"]
    assert (shown["name"], shown["media"]["subtitles"]) == (
        "Long.Film.1999.1080p.BluRay.x264-GRP.mkv", []
    )
    # A subtitle can be attached to a movie of the old catalogue, straight away.
    srt = "1\r\n00:00:01,000 --> 00:00:02,000\r\nBonjour à tous\r\n".encode("cp1252")
    created = client.post("/api/files/1/subtitles", headers=auth.headers(), json={
        "name": "Long.Film.1999.fr.srt", "size": len(srt),
        "sha256": hashlib.sha256(srt).hexdigest(),
    })
    assert created.status_code == 201, created.get_data(as_text=True)
    upload = created.get_json()["upload"]
    if upload["method"] == "post":
        sent = client.post(upload["post"]["url"], data={
            **upload["post"]["fields"], "file": (io.BytesIO(srt), "Long.Film.1999.fr.srt"),
        })
    else:
        sent = client.put(upload["put"]["url"], data=srt, headers=upload["put"]["headers"])
    assert sent.status_code in (200, 201, 204), sent.get_data(as_text=True)
    done = client.post(f"/api/uploads/{upload['id']}/complete", headers=auth.headers(), json={})
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.get_json()["subtitle"]["language"] == "fr"
    vtt = client.get(done.get_json()["subtitle"]["url"])
    assert "Bonjour à tous" in vtt.get_data(as_text=True)


def test_a_catalogue_with_subtitles_gains_api_tokens_with_every_row_intact(
    app_config: dict[str, Any], catalogue: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill_previous_release(catalogue, "0005")
    before = {table: _rows(catalogue, table) for table in ("user", "file", "pending_upload")}
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(app_config)
    for table, rows in before.items():
        assert _rows(catalogue, table) == rows  # no column was added to them
    assert _rows(catalogue, "api_token") == []
    # bob (session generation and quota kept) makes a token; it sees his files, not alice's.
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login("bob").status_code == 302
    made = client.post("/account/tokens", data={"name": "nas", "csrf_token": auth.csrf("/account")})
    assert made.status_code == 201, made.get_data(as_text=True)
    secret = re.search(r'value="(mvt_[^"]+)"', made.get_data(as_text=True))
    assert secret is not None
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    listed = app.test_client().get("/api/files", headers=bearer).get_json()
    assert [f["name"] for f in listed["files"]] == ["Heat (1995).mkv"]
    assert app.test_client().get("/api/files/1", headers=bearer).status_code == 404


def _schema(path: Path, table: str) -> set[str]:
    """The statements that make `table` and its indexes and triggers."""
    with sqlite3.connect(path) as connection:
        return {
            sql for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", (table,)
            )
        }


def test_a_catalogue_of_0008_keeps_every_row_and_gives_no_deleted_id_again(
    catalogue: Path,
) -> None:
    """Revision 0009 rebuilds `file` and `subtitle` with AUTOINCREMENT: every row, index and
    reference is kept, foreign keys hold again after, and a deleted id stays unused."""
    _fill_previous_release(catalogue, "0008")
    with sqlite3.connect(catalogue) as connection:
        connection.execute(
            "INSERT INTO probe_job (id, file_id, attempts, due_at, created_at)"
            " VALUES (1, 3, 0, '2026-11-03 11:00:00', '2026-11-03 11:00:00')"
        )
        connection.execute(
            "INSERT INTO subtitle (id, file_id, language, label, source, name, source_key,"
            " source_size, vtt_key, vtt_size, created_at) VALUES (1, 3, 'en', 'English',"
            " 'file', 'Heat.srt', 'subtitles/2/a.srt', 10, 'subtitles/2/a.vtt', 12,"
            " '2026-11-03 12:00:00')"
        )
        connection.execute("UPDATE pending_upload SET subtitle_for = 2 WHERE id = 'p1'")
    tables = ("user", "file", "subtitle", "probe_job", "pending_upload")
    before = {table: _rows(catalogue, table) for table in tables}
    indexes = {table: _schema(catalogue, table) - {_create_table(catalogue, table)}
               for table in ("file", "subtitle")}

    engine = db.open_catalogue(f"sqlite:///{catalogue}")
    assert {table: _rows(catalogue, table) for table in tables} == before
    for table, made in indexes.items():
        assert _schema(catalogue, table) - {_create_table(catalogue, table)} == made
        assert "AUTOINCREMENT" in _create_table(catalogue, table)
    with engine.begin() as connection:  # a connection of the pool, as the app gets them
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        # The references still lead to the rebuilt tables: deleting bob's movie takes its
        # subtitle and job along, and the newest id, now free, is not given again.
        connection.exec_driver_sql("DELETE FROM file WHERE id = 3")
        assert connection.exec_driver_sql("SELECT count(*) FROM subtitle").scalar_one() == 0
        assert connection.exec_driver_sql("SELECT count(*) FROM probe_job").scalar_one() == 0
        connection.exec_driver_sql(
            "INSERT INTO file (owner_id, name, size, sha256, content_type, key, created_at)"
            " VALUES (1, 'New.mp4', 1, ?, 'video/mp4', 'movies/1/new', '2026-12-01')",
            ("ef" * 32,),
        )
        assert connection.exec_driver_sql("SELECT max(id) FROM file").scalar_one() == 4
    engine.dispose()


def _create_table(path: Path, table: str) -> str:
    """The CREATE TABLE statement of `table`."""
    with sqlite3.connect(path) as connection:
        (sql,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return str(sql)


def test_revision_0009_refuses_to_run_with_foreign_keys_on(catalogue: Path) -> None:
    """With foreign keys on, dropping the old `file` would delete every subtitle and job:
    run any other way than through `migrations.upgrade`, the revision refuses, unchanged."""
    _fill_previous_release(catalogue, "0008")
    engine = db.make_engine(f"sqlite:///{catalogue}")
    with engine.connect() as connection, pytest.raises(MigrationRefused, match="foreign keys"):
        command.upgrade(migrations._config(connection), "0009")
    engine.dispose()
    assert "AUTOINCREMENT" not in _create_table(catalogue, "file")
    assert len(_rows(catalogue, "file")) == 3


def test_revision_0009_keeps_a_view_of_the_owner_s_and_rows_already_pointing_at_nothing(
    catalogue: Path,
) -> None:
    """A view naming `file` does not stop the rebuild, and references broken before it (a
    job and a subtitle upload for files long gone) are no reason to refuse it."""
    _fill_previous_release(catalogue, "0008")
    with sqlite3.connect(catalogue) as connection:
        connection.execute("CREATE VIEW my_movies AS SELECT name FROM file ORDER BY id")
        connection.execute(
            "INSERT INTO probe_job (id, file_id, attempts, due_at, created_at)"
            " VALUES (1, 99, 0, '2026-11-03 11:00:00', '2026-11-03 11:00:00')"
        )
        connection.execute("UPDATE pending_upload SET subtitle_for = 98 WHERE id = 'p1'")
        broken = sorted(connection.execute("PRAGMA foreign_key_check").fetchall())
    assert len(broken) == 2

    db.open_catalogue(f"sqlite:///{catalogue}").dispose()
    assert "AUTOINCREMENT" in _create_table(catalogue, "file")
    with sqlite3.connect(catalogue) as connection:
        assert [name for (name,) in connection.execute("SELECT name FROM my_movies")] == [
            "Long.Film.1999.1080p.BluRay.x264-GRP.mkv", "holiday.mp4", "Heat (1995).mkv"
        ]
        assert sorted(connection.execute("PRAGMA foreign_key_check").fetchall()) == broken


def test_an_upgrade_that_cannot_begin_leaves_foreign_keys_on_in_the_pool(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Foreign keys go off for the upgrade only: a connection that could not even take the
    write lock goes back to the pool with them on."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 100)
    engine = db.make_engine(f"sqlite:///{catalogue}", connections=1)
    with engine.connect():  # the one connection, open (and the database in WAL mode)
        pass
    holder = sqlite3.connect(catalogue, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            migrations.upgrade(engine)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    engine.dispose()


def test_revision_0010_gives_sequels_their_titles_back_unless_their_owner_edited_them(
    catalogue: Path,
) -> None:
    """Names read before 0010 lost "Part II" and "Vol. 1"; titles still as that reading gave
    them are read again, titles and years an owner changed are kept."""
    _fill_previous_release(catalogue, "0009")
    files = [
        # (name, title and year as stored)
        ("The.Godfather.Part.II.1974.1080p.BluRay.x264.mkv", "The Godfather", 1974),
        ("Kill Bill Vol 1 (2003).mkv", "Kill Bill: Volume 1", 2003),  # title edited
        ("Back to the Future Part II (1989).mkv", "Back to the Future", None),  # year edited
        ("Apartment (1960).mkv", "Apartment", 1960),  # "part" in it, read alike either way
        ("Lawrence of Arabia (1962) Part 2.mkv", "Lawrence of Arabia", 1962),  # split film
        ("Harry.Potter.and.the.Deathly.Hallows.Pt.2.2011.mkv",
         "Harry Potter and the Deathly Hallows", 2011),
    ]
    with sqlite3.connect(catalogue) as connection:
        connection.execute(
            "UPDATE file SET title = 'Long Film', year = 1999 WHERE id = 1"
        )
        for n, (name, title, year) in enumerate(files, start=4):
            connection.execute(
                "INSERT INTO file (id, owner_id, name, size, sha256, content_type, key,"
                " upload_id, created_at, title, year) VALUES (?, 1, ?, ?, ?, 'video/mp4', ?,"
                " ?, '2026-11-20 11:00:00.000000', ?, ?)",
                (n, name, n, f"{n:064x}", f"movies/1/{n:032x}", f"u{n}", title, year),
            )
    before = _rows(catalogue, "file")

    db.open_catalogue(f"sqlite:///{catalogue}").dispose()
    after = _rows(catalogue, "file")
    assert [(f["title"], f["year"]) for f in after] == [
        ("Long Film", 1999), ("", None), ("", None),  # untouched: no "part" or "vol"
        ("The Godfather Part II", 1974),
        ("Kill Bill: Volume 1", 2003),
        ("Back to the Future", None),
        ("Apartment", 1960),
        ("Lawrence of Arabia", 1962),
        ("Harry Potter and the Deathly Hallows Pt 2", 2011),
    ]
    changed = {"title"}
    assert [{k: v for k, v in f.items() if k not in changed} for f in after] == [
        {k: v for k, v in f.items() if k not in changed} for f in before
    ]
