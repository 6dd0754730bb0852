"""The catalogue of release 0.1.0: users, files, pending uploads and login attempts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _index(name: str, table: str, columns: list[Any], **options: Any) -> None:
    """Create an index unless it is there already."""
    op.create_index(name, table, columns, if_not_exists=True, **options)


def upgrade() -> None:
    """Create the four tables and their indexes as release 0.1.0 had them.

    Everything is created only where missing: a catalogue made before migrations existed
    runs this too, and gets any index its version of the code did not have yet.
    """
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    _index("ix_user_username", "user", ["username"], unique=True)

    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    _index("ix_login_attempt_subject", "login_attempt", ["subject"])
    _index("ix_login_attempt_at", "login_attempt", ["at"])

    op.create_table(
        "file",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("upload_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "sha256", name="uq_file_owner_sha256"),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"]),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    _index("ix_file_owner_created", "file", ["owner_id", "created_at"])
    _index("ix_file_owner_id", "file", ["owner_id"])
    _index("ix_file_owner_size", "file", ["owner_id", "size"])
    _index("ix_file_created_at", "file", ["created_at"])
    _index("ix_file_owner_lower_name", "file", ["owner_id", sa.text("lower(name)")])
    _index("ix_file_upload_id", "file", ["upload_id"])

    op.create_table(
        "pending_upload",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("multipart_id", sa.String(1024), nullable=True),
        sa.Column("part_size", sa.Integer(), nullable=True),
        sa.Column("completing_since", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "sha256", name="uq_pending_owner_sha256"),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"]),
        sa.UniqueConstraint("key"),
        if_not_exists=True,
    )
    _index("ix_pending_upload_owner_id", "pending_upload", ["owner_id"])
    _index("ix_pending_upload_expires_at", "pending_upload", ["expires_at"])
    _index(
        "uq_pending_owner_fingerprint",
        "pending_upload",
        ["owner_id", "fingerprint", "size"],
        unique=True,
        sqlite_where=sa.text("sha256 IS NULL"),
        postgresql_where=sa.text("sha256 IS NULL"),
    )
