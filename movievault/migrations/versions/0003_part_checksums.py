"""Pending multipart uploads remember whether their parts carry a SHA-256 checksum.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Add the column; uploads begun before it carry no checksums (NULL), as they began."""
    with op.batch_alter_table("pending_upload") as batch:
        # "sha256": the store was told to expect each part's SHA-256 and refuses parts
        # without it; NULL: parts go without, as every upload of earlier releases did.
        batch.add_column(sa.Column("checksum", sa.String(length=16), nullable=True))
