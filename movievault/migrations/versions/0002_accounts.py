"""Accounts: names unique regardless of case, a session generation, an optional quota,
and sign-in attempts recorded before their password is checked.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from movievault.migrations import MigrationRefused

revision = "0002"
down_revision = "0001"


def _refuse_case_clashes() -> None:
    """Stop when two accounts differ only in case: merging them is the owner's decision."""
    names = op.get_bind().execute(sa.text('SELECT username FROM "user"')).scalars().all()
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    clashes = [", ".join(sorted(group)) for group in groups.values() if len(group) > 1]
    if clashes:
        listed = "; ".join(sorted(clashes))
        raise MigrationRefused(
            "Usernames are now the same account regardless of case, but these accounts "
            f"differ only in case: {listed}. Rename all but one of each group with "
            "`movievault rename-user OLD NEW`, then start MovieVault again. Nothing was changed."
        )


def upgrade() -> None:
    """Add the columns and the case-insensitive unique index."""
    _refuse_case_clashes()
    with op.batch_alter_table("user") as batch:
        # Bumped by sign-out, "sign out everywhere" and password changes: every session
        # signed with an older generation stops working at its next request.
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
        # Bytes the user may keep, counting unfinished uploads; NULL means no limit.
        batch.add_column(sa.Column("quota_bytes", sa.BigInteger(), nullable=True))
    op.create_index("uq_user_username_lower", "user", [sa.text("lower(username)")], unique=True)
    with op.batch_alter_table("login_attempt") as batch:
        # Attempts are recorded before their password is checked; this marks those whose
        # check has not ended yet.
        batch.add_column(
            sa.Column("in_flight", sa.Boolean(), nullable=False, server_default=sa.false())
        )
