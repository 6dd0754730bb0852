"""Byte counts are 64-bit everywhere, and PostgreSQL keeps times with their zone.

Revision ID: 0007
Revises: 0005

PostgreSQL's INTEGER is 32-bit, so a movie of 2 GiB or more could not be recorded there;
BIGINT holds any size S3 allows. Its times become TIMESTAMP WITH TIME ZONE, as the models
declare them: a time then means one moment whatever a connection's zone is (they were
stored in UTC, and are read as such). SQLite's INTEGER is 64-bit already and it has no
time type: its tables stay as they are (changing a declared type there would copy each
table, for nothing).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

#: (table, column, nullable) of every byte count declared INTEGER by earlier revisions.
SIZES = (
    ("file", "size", False),
    ("pending_upload", "size", False),
    ("pending_upload", "part_size", True),
    ("subtitle", "source_size", False),
    ("subtitle", "vtt_size", False),
)


def _times_without_zone() -> list[tuple[str, str, bool]]:
    """(table, column, nullable) of every TIMESTAMP WITHOUT TIME ZONE of the catalogue."""
    inspector = sa.inspect(op.get_bind())
    return [
        (table, column["name"], column["nullable"])
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
        if isinstance(column["type"], sa.DateTime) and not column["type"].timezone
    ]


def upgrade() -> None:
    """Widen the byte counts to BIGINT and give the times their zone, on PostgreSQL."""
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, nullable in SIZES:
        op.alter_column(
            table, column, type_=sa.BigInteger(), existing_type=sa.Integer(),
            existing_nullable=nullable,
        )
    for table, column, nullable in _times_without_zone():
        op.alter_column(
            table, column, type_=sa.DateTime(timezone=True), existing_type=sa.DateTime(),
            existing_nullable=nullable, postgresql_using=f"\"{column}\" AT TIME ZONE 'UTC'",
        )
