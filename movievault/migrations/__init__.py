"""Schema migrations (Alembic): every change to the catalogue's tables ships as one of these.

`upgrade(engine)` runs at start-up and from `movievault db upgrade`. A catalogue made before
migrations existed (release 0.1.0 and earlier, whose tables `create_all` made) has no
revision yet, so it runs them all: the baseline creates only what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Integer, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeEngine

from movievault.errors import MovieVaultError

#: The PostgreSQL advisory lock an upgrading process holds: "MVMIGRAT" read as a number.
MIGRATION_LOCK = int.from_bytes(b"MVMIGRAT", "big")


class MigrationRefused(MovieVaultError):
    """A migration found data it must not change silently; the message says what to do."""

    status = 500


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, without an ini file: the scripts live in this package."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def compare_type(
    context: MigrationContext, _inspected_column: Any, _metadata_column: Any,
    inspected_type: TypeEngine[Any], metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's comparison of a column's types, but INTEGER is BIGINT on SQLite (both are
    64-bit there, and revision 0007 leaves its tables alone); None: Alembic's own answer."""
    if context.dialect.name == "sqlite" and all(
        isinstance(kind, Integer) for kind in (inspected_type, metadata_type)
    ):
        return False
    return None


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: empty, or made before migrations existed)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalogue to `revision`, one process at a time, in one transaction.

    The lock is taken before anything is read (SQLite's write lock; on PostgreSQL an
    advisory lock of the transaction): workers starting together on a new database then
    wait for the first to finish instead of all creating tables. Both databases run DDL
    inside transactions, so a refused or failed migration changes nothing.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        try:
            if sqlite:
                # A revision that rebuilds a table drops the old one, which with foreign keys
                # on deletes every row referring to it. SQLite turns them off only outside a
                # transaction; such a revision checks them itself before the commit. (So no
                # revision may count on ON DELETE CASCADE while it runs.)
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            command.upgrade(_config(connection), revision)
            connection.commit()
        finally:
            if sqlite:  # the connection goes back to the pool as every other one is
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
