"""Sequels keep "Part II" and "Vol. 1" in their titles.

Revision ID: 0010
Revises: 0009

Titles read from names before this release dropped those words: "The Godfather Part II
(1974).mkv" became "The Godfather", like the first film. Each file whose name holds "part",
"pt" or "vol" is read again; its title and year change only where they are still what the
earlier reading gave, so a title the owner edited stays as they wrote it. Nothing else
changes.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from movievault.media.names import parse_title

revision = "0010"
down_revision = "0009"

log = logging.getLogger(__name__)

def upgrade() -> None:
    """Read the titles of names with "part" or "vol" again, where nobody edited them."""
    connection = op.get_bind()
    files = connection.execute(sa.text(
        "SELECT id, name, title, year FROM file "
        "WHERE lower(name) LIKE '%part%' OR lower(name) LIKE '%pt%'"
        " OR lower(name) LIKE '%vol%' ORDER BY id"
    )).all()
    rows = []
    for file_id, name, title, year in files:
        if parse_title(name, sequels=False) != (title, year):
            continue  # edited by its owner (or read by a guessit of other rules): kept
        new_title, new_year = parse_title(name)
        if (new_title, new_year) != (title, year):
            rows.append({"id": file_id, "title": new_title, "year": new_year})
    if rows:
        log.info("Giving %d sequels their whole titles back...", len(rows))
        connection.execute(
            sa.text("UPDATE file SET title = :title, year = :year WHERE id = :id"), rows
        )
