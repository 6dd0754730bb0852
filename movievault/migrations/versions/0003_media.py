"""Movies: title and year, what probing found, a poster, and one probe job per file.

Revision ID: 0003
Revises: 0002

Every file already in the catalogue gets its title and year from its name, the status
"pending" and a probe job: the app's worker then reads a few MB of each (once; never
again unless `movievault rescan` asks), newest first and after any file uploaded since.
`movievault rescan` runs those same jobs at once, with a progress bar.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from movievault.media.names import parse_title

revision = "0003"
down_revision = "0002"

log = logging.getLogger(__name__)


def _fill_titles() -> None:
    """Give every file the title and year its name tells (about 20 ms a name)."""
    connection = op.get_bind()
    files = connection.execute(sa.text("SELECT id, name FROM file ORDER BY id")).all()
    if len(files) > 500:
        log.info("Reading titles and years from the names of %d files...", len(files))
    rows = []
    for file_id, name in files:
        title, year = parse_title(name)
        rows.append({"id": file_id, "title": title, "year": year})
    if rows:
        connection.execute(
            sa.text("UPDATE file SET title = :title, year = :year WHERE id = :id"), rows
        )


def upgrade() -> None:
    """Add the columns, their indexes and the job table; fill titles; queue every file."""
    with op.batch_alter_table("file") as batch:
        batch.add_column(
            sa.Column("title", sa.String(200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("media_status", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("media_error", sa.String(500), nullable=True))
        batch.add_column(sa.Column("media_info", sa.Text(), nullable=True))
        batch.add_column(sa.Column("duration", sa.Float(), nullable=True))
        batch.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("hdr", sa.String(16), nullable=True))
        batch.add_column(sa.Column("poster_key", sa.String(255), nullable=True))
    op.create_index(
        "ix_file_owner_lower_title", "file", ["owner_id", sa.text("lower(title)")]
    )
    op.create_index("ix_file_owner_year", "file", ["owner_id", "year"])
    op.create_index("ix_file_owner_duration", "file", ["owner_id", "duration"])
    op.create_index("uq_file_poster_key", "file", ["poster_key"], unique=True)

    op.create_table(
        "probe_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("leased_until", sa.DateTime(), nullable=True),
        sa.Column("lease", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["file_id"], ["file.id"], ondelete="CASCADE"),
    )
    op.create_index("uq_probe_job_file_id", "probe_job", ["file_id"], unique=True)
    op.create_index("ix_probe_job_due_at", "probe_job", ["due_at"])

    _fill_titles()
    # Due when the file was added: the worker takes the newest due job first, so files
    # uploaded after the upgrade (due "now") come before this backlog.
    op.execute(
        "INSERT INTO probe_job (file_id, attempts, due_at, created_at) "
        "SELECT id, 0, created_at, created_at FROM file"
    )
