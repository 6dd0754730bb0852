"""Copying the catalogue into another database (SQLite to PostgreSQL), table by table.

Every table of the models is copied as it is, ids included, parents before children
(foreign-key order), in one transaction on the target: a copy that fails leaves the target
as empty as it found it. The source is read in one transaction too, so what is copied is
one moment's catalogue. That transaction locks the target's tables against writers, finds
them empty, copies, moves PostgreSQL's id sequences past every id the source has given
and counts each table's rows on both sides, all before its commit: a refusal, a failure or
a count that differs rolls everything back, and the commit is the last step that can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Integer, Table, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from movievault import migrations
from movievault import models as _models  # noqa: F401  (registers the tables)
from movievault.errors import MovieVaultError

#: Rows read and written at a time: memory stays small whatever the catalogue's size.
BATCH = 1000
#: Alembic's own table: the target gets its revision from the migrations, not the copy.
VERSION_TABLE = "alembic_version"


class CopyRefused(MovieVaultError):
    """The catalogue cannot be copied there (not empty, unknown tables, counts differ)."""

    status = 409


class CommitUnconfirmed(MovieVaultError):
    """The commit of a whole, checked copy failed: it may have happened or not."""

    status = 503


def _tables() -> list[Table]:
    """The catalogue's tables, parents before the tables that refer to them."""
    return list(SQLModel.metadata.sorted_tables)


def _count(connection: Connection, table: Table) -> int:
    """How many rows `table` holds."""
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def check_source(connection: Connection) -> None:
    """Refuse a source this version cannot copy whole: not at the newest revision, or
    holding tables it does not know (their rows would be left behind)."""
    revision = migrations.current(connection)
    if revision != migrations.head():
        raise CopyRefused(
            f"The catalogue is at revision {revision}, not {migrations.head()}: run "
            "`movievault db upgrade` first, then copy it."
        )
    known = {table.name for table in _tables()} | {VERSION_TABLE}
    unknown = sorted(set(inspect(connection).get_table_names()) - known)
    if unknown:
        raise CopyRefused(
            f"The catalogue has tables this version of MovieVault does not know "
            f"({', '.join(unknown)}): copy it with the version that made them."
        )


def check_target_empty(connection: Connection) -> None:
    """Refuse a target holding any row of the catalogue's tables: nothing is overwritten."""
    present = set(inspect(connection).get_table_names())
    filled = [
        f"{table.name} ({rows} rows)" for table in _tables()
        if table.name in present and (rows := _count(connection, table))
    ]
    if filled:
        raise CopyRefused(
            f"The target database is not empty: {', '.join(filled)}. Copy into a new, empty "
            "database (or one holding only an empty catalogue), so nothing is overwritten."
        )


#: How long the copy waits for the writes under way on a PostgreSQL target to end.
LOCK_TIMEOUT_SECONDS = 30


def _lock_target(connection: Connection) -> None:
    """Begin the writing transaction holding what keeps the target's tables empty until
    it ends: only this transaction writes them meanwhile (others still read)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # SQLite's one write lock, taken before the emptiness is read.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        # An advisory lock would only stop other copies; a MovieVault already started on
        # the target writes without one (a failed sign-in). EXCLUSIVE waits for the writes
        # under way and holds back every later one, reads excepted.
        quote = connection.dialect.identifier_preparer.quote
        names = ", ".join(quote(table.name) for table in _tables())
        # Not forever behind a transaction someone left open: a clear error instead.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
        connection.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection reading the source as it is at one moment, until the block ends."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # A read transaction from the first read on: others' later commits stay unseen.
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        try:
            yield connection
        finally:
            connection.rollback()


def _copy_table(source: Connection, target: Connection, table: Table) -> int:
    """Copy every row of `table`, in primary-key order; the number copied."""
    order = list(table.primary_key.columns) or list(table.columns)
    rows = source.execute(select(table).order_by(*order)).mappings()
    copied = 0
    while batch := rows.fetchmany(BATCH):
        target.execute(table.insert(), [dict(row) for row in batch])
        copied += len(batch)
    return copied


def _highest_id_given(reading: Connection, table: Table) -> int:
    """The largest id the source has ever given in `table` (0: none known): SQLite's
    AUTOINCREMENT keeps it even when that row was deleted since."""
    if reading.dialect.name != "sqlite":
        return 0
    given = reading.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = :table"), {"table": table.name}
    ).scalar()
    return int(given or 0)


def _reset_sequences(reading: Connection, target: Connection) -> None:
    """Start each id sequence after the largest id copied or ever given by the source
    (PostgreSQL's SERIAL ids, SQLite's AUTOINCREMENT): the id of a movie deleted before the
    copy is not given again."""
    if target.dialect.name == "sqlite":
        for table in _tables():
            given = _highest_id_given(reading, table)
            if not given or not table.dialect_options["sqlite"]["autoincrement"]:
                continue
            # The copy's inserts left the largest id copied there, if there was a row.
            raised = target.execute(
                text("UPDATE sqlite_sequence SET seq = MAX(seq, :given) WHERE name = :table"),
                {"given": given, "table": table.name},
            )
            if raised.rowcount == 0:
                target.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES (:table, :given)"),
                    {"given": given, "table": table.name},
                )
        return
    if target.dialect.name != "postgresql":
        return
    for table in _tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        quoted = target.dialect.identifier_preparer.quote(table.name)
        column = keys[0].name
        highest = f'GREATEST(COALESCE(MAX("{column}"), 0), :given)'
        target.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"GREATEST({highest}, 1), {highest} > 0) FROM {quoted}"
            ),
            {"table": quoted, "column": column, "given": _highest_id_given(reading, table)},
        )


def _check_counts(reading: Connection, writing: Connection, counts: dict[str, int]) -> None:
    """Refuse the copy unless each table holds as many rows on both sides as were copied."""
    for table in _tables():
        expected = _count(reading, table)
        found = _count(writing, table)
        if not expected == found == counts[table.name]:
            raise CopyRefused(
                f"The table {table.name} has {expected} rows in the catalogue, "
                f"{counts[table.name]} were copied and the target holds {found}."
            )


def copy_catalogue(
    *, source: Engine, target: Engine, say: Callable[[str], None]
) -> dict[str, int]:
    """Copy the catalogue of `source` into the empty database `target`; rows per table.

    The target's schema is made (or brought up to date) by the migrations first. Raises
    CopyRefused, with nothing copied, when the source or the target is not fit or the
    counts differ; CommitUnconfirmed when the commit itself failed (it may have happened).
    """
    committed = False
    try:
        with _snapshot(source) as reading:
            check_source(reading)
            # Refused early, before the migrations change a target holding another catalogue;
            # the check that counts is repeated under the lock below.
            with target.connect() as connection:
                check_target_empty(connection)
            migrations.upgrade(target)
            with target.connect() as writing:
                _lock_target(writing)
                check_target_empty(writing)
                counts: dict[str, int] = {}
                for table in _tables():
                    counts[table.name] = _copy_table(reading, writing, table)
                    say(f"{table.name}: {counts[table.name]} rows")
                _reset_sequences(reading, writing)
                # Counted before the commit: a difference rolls the copy back, so a refused
                # copy is never half there.
                _check_counts(reading, writing, counts)
                try:
                    writing.commit()
                except SQLAlchemyError as error:
                    # A connection lost during COMMIT does not say whether the server did it.
                    raise CommitUnconfirmed(describe_error(error)) from error
                committed = True
    except SQLAlchemyError:
        if not committed:
            raise
        # The copy is committed and was checked whole; only letting go of a connection
        # failed after, which takes nothing back.
    return counts


def describe_error(error: SQLAlchemyError) -> str:
    """The database's own words for `error`, first line only."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
