"""SQLite gives the id of a deleted movie or subtitle to no later one (AUTOINCREMENT).

Revision ID: 0009
Revises: 0008

Without AUTOINCREMENT, SQLite gives a new row the largest id plus one: once the newest movie
is deleted, the next one recorded, whoever's it is, gets its id, and with it whatever still
points at the old one (a bookmark, a page left open, a poster or subtitle being made). With
it, SQLite keeps the largest id ever given (in `sqlite_sequence`) and counts on from there.

SQLite adds AUTOINCREMENT only by rebuilding the table, as its documentation describes: a
new table, the rows copied, the old table dropped, the new one renamed, the indexes made
again, the foreign keys checked. `migrations.upgrade` turns foreign keys off for this (with
them on, dropping `file` would delete every subtitle and probe job along with it). An id
deleted before this revision runs and above every id left may still be given once more.
PostgreSQL's sequences never give an id twice: nothing changes there.
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy.engine import Connection

from movievault.migrations import MigrationRefused

revision = "0009"
down_revision = "0008"

#: The tables whose ids the app hands out (in URLs) and writes to later by id.
TABLES = ("file", "subtitle")


def _new_table_sql(create: str, table: str) -> str:
    """`table`'s CREATE TABLE, for a table named _new_<table> with `id` AUTOINCREMENT."""
    renamed, named = re.subn(
        rf'^\s*CREATE TABLE\s+"?{table}"?\s*\(', f'CREATE TABLE "_new_{table}" (', create
    )
    # AUTOINCREMENT goes on the column; the table's PRIMARY KEY (id) clause goes.
    renamed, declared = re.subn(
        r"(\n\s*)id INTEGER NOT NULL,", r"\1id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,",
        renamed, count=1,
    )
    renamed, dropped = re.subn(r"\s*PRIMARY KEY \(id\),", "", renamed, count=1)
    if not dropped:
        renamed, dropped = re.subn(r",\s*PRIMARY KEY \(id\)(\s*\)\s*)$", r"\1", renamed)
    if (named, declared, dropped) != (1, 1, 1):
        raise MigrationRefused(
            f"The catalogue's table {table} is not as MovieVault made it, so revision 0009 "
            "cannot rebuild it: restore it from a backup made by MovieVault, or ask for help "
            "with its CREATE TABLE statement (sqlite3 CATALOGUE '.schema " + table + "')."
        )
    return renamed


def _rebuild(bind: Connection, table: str) -> None:
    """Make `table`'s id AUTOINCREMENT, keeping every row, index and trigger."""
    create = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    if "AUTOINCREMENT" in create.upper():
        return
    extras = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger')"
        " AND sql IS NOT NULL", (table,),
    ).scalars().all()
    columns = ", ".join(
        f'"{row[1]}"' for row in bind.exec_driver_sql(f'PRAGMA table_info("{table}")')
    )
    rows = bind.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar_one()
    bind.exec_driver_sql(_new_table_sql(create, table))
    bind.exec_driver_sql(
        f'INSERT INTO "_new_{table}" ({columns}) SELECT {columns} FROM "{table}"'
    )
    copied = bind.exec_driver_sql(f'SELECT count(*) FROM "_new_{table}"').scalar_one()
    if copied != rows:
        raise MigrationRefused(f"Copying {table} gave {copied} rows of {rows}: nothing changed.")
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    # Legacy renaming leaves the rest of the schema alone: a view of the owner's own that
    # names the table would otherwise stop the rename, as the table is briefly missing.
    bind.exec_driver_sql("PRAGMA legacy_alter_table=ON")
    try:
        bind.exec_driver_sql(f'ALTER TABLE "_new_{table}" RENAME TO "{table}"')
    finally:
        bind.exec_driver_sql("PRAGMA legacy_alter_table=OFF")
    for statement in extras:
        bind.exec_driver_sql(statement)


def _broken_references(bind: Connection) -> list[tuple[str, ...]]:
    """Every row whose foreign key points at no row (SQLite's foreign_key_check), sorted:
    SQLite lists them in an order the rebuild changes."""
    return sorted(
        tuple(str(value) for value in row)
        for row in bind.exec_driver_sql("PRAGMA foreign_key_check")
    )


def upgrade() -> None:
    """Rebuild `file` and `subtitle` with AUTOINCREMENT ids, on SQLite."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar_one():
        # Dropping the old table would then delete every row referring to it.
        raise MigrationRefused(
            "Revision 0009 must run with SQLite's foreign keys off: run it through "
            "`movievault db upgrade` (or by starting MovieVault), which turns them off."
        )
    before = _broken_references(bind)
    for table in TABLES:
        _rebuild(bind, table)
    after = _broken_references(bind)
    if after != before:
        raise MigrationRefused(
            f"Rebuilding the tables left rows pointing at nothing ({after}): nothing changed."
        )
