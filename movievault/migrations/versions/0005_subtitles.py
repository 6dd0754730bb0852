"""Subtitles: subtitle files attached to movies, and uploads that attach one.

Revision ID: 0005
Revises: 0004

A new table (every movie starts with none) and a nullable column on pending uploads
(uploads begun before it are movies, as they were).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Create the subtitle table; let a pending upload name the movie it attaches to."""
    op.create_table(
        "subtitle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(35), nullable=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source_key", sa.String(255), nullable=False),
        sa.Column("source_size", sa.Integer(), nullable=False),
        sa.Column("vtt_key", sa.String(255), nullable=False),
        sa.Column("vtt_size", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["file_id"], ["file.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_subtitle_file_id", "subtitle", ["file_id"])
    op.create_index("uq_subtitle_source_key", "subtitle", ["source_key"], unique=True)
    op.create_index("uq_subtitle_vtt_key", "subtitle", ["vtt_key"], unique=True)
    # SQLite adds a column with its reference in place (a NULL default is allowed), where
    # a batch operation would copy the whole table.
    op.execute(
        "ALTER TABLE pending_upload ADD COLUMN subtitle_for INTEGER "
        "REFERENCES file (id)"
    )
