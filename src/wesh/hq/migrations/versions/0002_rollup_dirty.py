"""Stale rollup spans: ``rollup_dirty`` (ingestion records, refresh re-rolls and clears).

Written by hand to match :class:`wesh.hq.models.RollupDirty` (see docs/hq-schema.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``rollup_dirty``."""
    op.create_table(
        "rollup_dirty",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("first_channel_id", sa.Integer(), nullable=False),
        sa.Column("last_channel_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.BigInteger(), nullable=False),
        sa.Column("end_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_dirty"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index("ix_rollup_dirty_first_channel_id", "rollup_dirty", ["first_channel_id"])


def downgrade() -> None:
    """Drop ``rollup_dirty``."""
    op.drop_table("rollup_dirty")
