"""Alembic's entry point: run the migrations on the connection `upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from movievault import models  # noqa: F401  (registers the tables, for autogenerate)
from movievault.migrations import compare_type

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite alters tables by copying them; batch mode does that where a plain ALTER can't.
    render_as_batch=True,
    compare_type=compare_type,
)
with context.begin_transaction():
    context.run_migrations()
