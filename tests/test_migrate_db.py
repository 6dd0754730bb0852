"""`movievault migrate-db --to URL`: a SQLite catalogue copied into PostgreSQL, whole.

The catalogue is made through the app as people make it: accounts (one with a quota), a
movie uploaded and completed (with its probe job), a subtitle attached to it, an upload
left unfinished, a failed sign-in. The copy must hold every row with every value and its
id, and the app must carry on with it: signing in, listing, new rows with new ids.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from movievault import create_app, db, dbcopy, migrations, users
from movievault.client import sha256_of
from movievault.models import Subtitle
from tests.support import PASSWORD, attempt, make_user, sign_in

MOVIE = b"a movie's bytes, small for the test " * 40
SRT = b"1\r\n00:00:01,000 --> 00:00:02,000\r\nBonjour\r\n"


@pytest.fixture
def backend() -> str:
    """The copy does not depend on the store: the local disk is enough."""
    return "local"


def _upload(client: Any, headers: dict[str, str], path: str, name: str, data: bytes) -> Any:
    """Create an upload at `path`, send `data` whole, complete it; the answer of complete."""
    created = client.post(path, headers=headers, json={
        "name": name, "size": len(data), "sha256": sha256_of(data),
        "content_type": "video/mp4" if name.endswith(".mp4") else "application/x-subrip",
    })
    assert created.status_code == 201, created.get_data(as_text=True)
    upload = created.get_json()["upload"]
    if upload["method"] == "post":
        sent = client.post(upload["post"]["url"], data={
            **upload["post"]["fields"], "file": (io.BytesIO(data), name)})
    else:
        sent = client.put(upload["put"]["url"], data=data, headers=upload["put"]["headers"])
    assert sent.status_code in (200, 201, 204), sent.get_data(as_text=True)
    done = client.post(f"/api/uploads/{upload['id']}/complete", headers=headers, json={})
    assert done.status_code == 201, done.get_data(as_text=True)
    return done.get_json()


def _fill(app: Flask) -> None:
    """A library as people make it, through the app."""
    make_user(app, "alice")
    make_user(app, "bob")
    assert app.test_cli_runner().invoke(args=["set-quota", "bob", "2GB"]).exit_code == 0
    alice = sign_in(app, "alice")
    movie = _upload(alice.client, alice.headers(), "/api/uploads", "Heat.1995.mp4", MOVIE)
    file_id = movie["file"]["id"]
    _upload(alice.client, alice.headers(), f"/api/files/{file_id}/subtitles", "Heat.fr.srt",
            SRT)
    unfinished = alice.client.post("/api/uploads", headers=alice.headers(), json={
        "name": "Later.mp4", "size": 3 * 1024**3, "sha256": "cd" * 32,
        "content_type": "video/mp4",
    })
    assert unfinished.status_code == 201, unfinished.get_data(as_text=True)
    assert attempt(app, "bob", "wrong password", "10.0.0.9").status_code == 401


def _everything(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the catalogue, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [dict(row) for row in connection.execute(
                select(table).order_by(*table.primary_key.columns)).mappings()]
            for table in SQLModel.metadata.sorted_tables
        }


def test_a_sqlite_catalogue_is_copied_into_postgresql_whole(
    app: Flask, app_config: dict[str, Any], postgres_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill(app)
    before = _everything(db.engine_of(app))
    assert all(before[table] for table in ("user", "file", "subtitle", "pending_upload",
                                            "probe_job", "login_attempt"))

    result = app.test_cli_runner().invoke(args=["migrate-db", "--to", postgres_url])
    assert result.exit_code == 0, result.output
    assert "file: 1 rows" in result.output and "every count matches" in result.output

    target = db.make_engine(postgres_url)
    try:
        # Every row, every value, every id; times the same moments.
        assert _everything(target) == before
        with target.connect() as connection:
            assert migrations.current(connection) == migrations.head()
    finally:
        target.dispose()

    # The app on the copy: alice signs in and finds her movie and its subtitle; new rows
    # get new ids (the sequences start after the copied ones).
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance-pg"))
    moved = create_app({**app_config, "DATABASE_URL": postgres_url})
    try:
        alice = sign_in(moved, "alice", PASSWORD)
        listed = alice.client.get("/api/files").get_json()["files"]
        assert [f["name"] for f in listed] == ["Heat.1995.mp4"]
        shown = alice.client.get(f"/api/files/{listed[0]['id']}").get_json()["file"]
        assert [s["label"] for s in shown["media"]["subtitles"] if s["source"] == "file"] == [
            before["subtitle"][0]["label"]
        ]
        assert make_user(moved, "carol") == max(u["id"] for u in before["user"]) + 1
        again = _upload(alice.client, alice.headers(), f"/api/files/{listed[0]['id']}/"
                        "subtitles", "Heat.en.srt", SRT + b"\r\n")
        assert again["subtitle"]["id"] == before["subtitle"][-1]["id"] + 1
        with db.session_scope(moved) as session:
            assert len(session.exec(select(Subtitle)).all()) == 2
    finally:
        db.engine_of(moved).dispose()


@pytest.mark.parametrize("copy_to", ["postgresql", "sqlite"])
def test_an_id_deleted_before_the_copy_is_not_given_again_by_the_copy(
    app: Flask, app_config: dict[str, Any], copy_to: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    """The newest movie and subtitle were deleted before the copy: the target's ids start
    after theirs (SQLite kept them), not after the largest id left."""
    target_url = (request.getfixturevalue("postgres_url") if copy_to == "postgresql"
                  else f"sqlite:///{tmp_path / 'copy.db'}")
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    kept = _upload(alice.client, alice.headers(), "/api/uploads", "Heat.1995.mp4", MOVIE)
    path = f"/api/files/{kept['file']['id']}/subtitles"
    _upload(alice.client, alice.headers(), path, "Heat.fr.srt", SRT)
    gone = _upload(alice.client, alice.headers(), path, "Heat.en.srt", SRT + b"\r\n")
    newest = _upload(alice.client, alice.headers(), "/api/uploads", "Later.mp4", MOVIE + b"!")
    for deleted in (f"{path}/{gone['subtitle']['id']}", f"/api/files/{newest['file']['id']}"):
        answer = alice.client.delete(deleted, headers=alice.headers())
        assert answer.status_code == 204, answer.get_data(as_text=True)

    result = app.test_cli_runner().invoke(args=["migrate-db", "--to", target_url])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance-copy"))
    moved = create_app({**app_config, "DATABASE_URL": target_url})
    try:
        alice = sign_in(moved, "alice", PASSWORD)
        again = _upload(alice.client, alice.headers(), "/api/uploads", "Again.mp4", MOVIE + b"?")
        assert again["file"]["id"] == newest["file"]["id"] + 1
        subtitle = _upload(alice.client, alice.headers(), path, "Heat.de.srt", SRT + b"\n\n")
        assert subtitle["subtitle"]["id"] == gone["subtitle"]["id"] + 1
    finally:
        db.engine_of(moved).dispose()


def test_a_database_holding_rows_is_refused_and_left_as_it_was(
    app: Flask, postgres_url: str,
) -> None:
    make_user(app, "alice")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["migrate-db", "--to", postgres_url]).exit_code == 0
    make_user(app, "bob")  # the SQLite catalogue moved on; the copy has one user

    again = runner.invoke(args=["migrate-db", "--to", postgres_url])
    assert again.exit_code == 1
    assert "The target database is not empty: user (1 rows)" in again.output
    assert "Nothing was copied." in again.output
    target = db.make_engine(postgres_url)
    try:
        assert [row["username"] for row in _everything(target)["user"]] == ["alice"]
    finally:
        target.dispose()


@pytest.mark.parametrize(("url", "said"), [
    ("nonsense", "is not a database URL MovieVault can use"),
    ("postgresql+psycopg://movievault@127.0.0.1:1/none", "Could not copy the catalogue to"),
])
def test_a_target_that_cannot_be_used_is_one_clear_line(
    app: Flask, url: str, said: str,
) -> None:
    make_user(app, "alice")
    result = app.test_cli_runner().invoke(args=["migrate-db", "--to", url])
    assert result.exit_code == 1
    assert said in result.output and "Traceback" not in result.output


def test_the_catalogue_itself_is_refused_as_target(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["migrate-db", "--to", app.config["DATABASE_URL"]]
    )
    assert result.exit_code == 1 and "names the catalogue itself" in result.output


def _rows_held(url: str) -> dict[str, int]:
    """The tables of the catalogue at `url` holding rows, and how many."""
    target = db.make_engine(url)
    try:
        return {name: len(held) for name, held in _everything(target).items() if held}
    finally:
        target.dispose()


def test_counts_that_differ_before_the_commit_roll_the_copy_back(
    app: Flask, postgres_url: str,
) -> None:
    """Something in the target writes a row of its own while the copy runs (here a trigger
    left on an empty catalogue): the counts differ, and nothing of the copy stays."""
    make_user(app, "alice")
    target = db.make_engine(postgres_url)
    try:
        migrations.upgrade(target)  # an empty catalogue is a fit target
        with target.begin() as connection:
            connection.execute(text("""
                CREATE FUNCTION note_new_users() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO login_attempt (id, subject, at, in_flight)
                    SELECT COALESCE(MAX(id), 0) + 1, 'audit', now(), false FROM login_attempt;
                    RETURN NULL;
                END $$
            """))
            connection.execute(text(
                'CREATE TRIGGER note_new_users AFTER INSERT ON "user" '
                "FOR EACH STATEMENT EXECUTE FUNCTION note_new_users()"
            ))
    finally:
        target.dispose()

    result = app.test_cli_runner().invoke(args=["migrate-db", "--to", postgres_url])
    assert result.exit_code == 1, result.output
    assert ("The table login_attempt has 0 rows in the catalogue, 0 were copied and the "
            "target holds 1. Nothing was copied.") in result.output
    assert _rows_held(postgres_url) == {}


def _waiting_on_a_lock(engine: Engine, thread: threading.Thread) -> bool:
    """Whether `thread` is seen waiting for a lock in `engine`'s database (False once it
    has finished without waiting)."""
    deadline = time.monotonic() + 30
    with engine.connect() as monitor:
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = monitor.execute(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one()
            monitor.rollback()  # a fresh look each time
            if waiting:
                return True
            time.sleep(0.02)
    return False


def test_a_writer_on_the_target_waits_for_the_copy_to_end(
    app: Flask, postgres_url: str,
) -> None:
    """A MovieVault already started on the target makes an account in the middle of the
    copy: it waits until the copy is committed, then takes the next id."""
    alice = make_user(app, "alice")
    target = db.make_engine(postgres_url)
    other = db.make_engine(postgres_url)  # another process's, on the same database
    made: list[int | None] = []
    writer = threading.Thread(target=lambda: made.append(_create_user(other, "carol")))
    seen: list[bool] = []

    def say(line: str) -> None:
        """After the first table, start the writer and see whether it has to wait."""
        if line.startswith("login_attempt:"):
            writer.start()
            seen.append(_waiting_on_a_lock(other, writer))

    try:
        counts = dbcopy.copy_catalogue(source=db.engine_of(app), target=target, say=say)
        writer.join(timeout=30)
        assert seen == [True]
        assert counts["user"] == 1
        assert made == [alice + 1]
        assert [row["username"] for row in _everything(target)["user"]] == ["alice", "carol"]
    finally:
        writer.join(timeout=30)
        target.dispose()
        other.dispose()


def test_a_transaction_left_open_on_the_target_stops_the_copy_with_a_clear_error(
    app: Flask, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer holding the target's tables does not keep the copy waiting for ever: after
    the lock timeout it stops, says why, and leaves the target as it was."""
    make_user(app, "alice")
    monkeypatch.setattr(dbcopy, "LOCK_TIMEOUT_SECONDS", 1)
    holder = db.make_engine(postgres_url)
    migrations.upgrade(holder)  # a MovieVault already started on the target made its tables
    try:
        with holder.connect() as writing:
            writing.exec_driver_sql('LOCK TABLE "user" IN ROW EXCLUSIVE MODE')  # as an INSERT
            started = time.monotonic()
            done = app.test_cli_runner().invoke(args=["migrate-db", "--to", postgres_url])
            took = time.monotonic() - started
        assert done.exit_code == 1
        assert "lock timeout" in done.output and "Nothing was copied." in done.output
        assert took < 20, took
        assert _rows_held(postgres_url) == {}
    finally:
        holder.dispose()


def _create_user(engine: Engine, username: str) -> int | None:
    """Make an account on `engine`'s catalogue; its id."""
    with Session(engine) as session:
        return users.create_user(session=session, username=username, password=PASSWORD).id


def test_a_connection_lost_at_the_commit_says_the_copy_may_be_complete(
    app: Flask, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server goes away as the copy commits: whether it did is unknown, so the command
    says so and how to tell; running it again copies, as the target is still empty."""
    make_user(app, "alice")
    killer = db.make_engine(postgres_url)
    real = dbcopy._reset_sequences

    def lose_at_commit(reading: Connection, writing: Connection) -> None:
        """Reset the sequences, then end the server's side of `writing` when it commits."""
        real(reading, writing)
        pid = writing.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

        def terminate(_connection: Connection) -> None:
            with killer.connect() as connection:
                # Waits until the backend has gone, so the COMMIT cannot reach it.
                assert connection.execute(
                    text("SELECT pg_terminate_backend(:pid, 30000)"), {"pid": pid}
                ).scalar_one()

        event.listen(writing, "commit", terminate)

    monkeypatch.setattr(dbcopy, "_reset_sequences", lose_at_commit)
    try:
        lost = app.test_cli_runner().invoke(args=["migrate-db", "--to", postgres_url])
    finally:
        killer.dispose()
    assert lost.exit_code == 1, lost.output
    assert "failed while committing the copy" in lost.output
    assert "the copy may be complete" in lost.output and "Run this command again" in lost.output
    assert "Nothing was copied" not in lost.output and "Traceback" not in lost.output

    monkeypatch.undo()
    again = app.test_cli_runner().invoke(args=["migrate-db", "--to", postgres_url])
    assert again.exit_code == 0, again.output
    assert _rows_held(postgres_url) == {"user": 1}
