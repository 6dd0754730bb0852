"""An index that answers "how many uploads has this user pending, declaring how many bytes".

Revision ID: 0008
Revises: 0007

Every create counts the owner's live pending uploads and adds up their declared sizes
(quotas.check_room), twice. With only the owner's index, that read each pending row, the
expired ones (kept until `movievault gc`) included. On (owner_id, expires_at, size) it is a
range of the index alone, over the live uploads only. Nothing that exists changes.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    """Create the pending uploads' usage index."""
    op.create_index(
        "ix_pending_upload_owner_usage", "pending_upload", ["owner_id", "expires_at", "size"]
    )
