"""workers' heartbeats, photo quality verdicts, captures

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("media", sa.String(length=8), nullable=False, server_default="photo")
        )
        batch_op.add_column(sa.Column("frames", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("stitched_path", sa.String(length=500), nullable=True))
    with op.batch_alter_table("product_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("track", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_instances", schema=None) as batch_op:
        batch_op.drop_column("track")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        for column in ("stitched_path", "frames", "media", "verdict"):
            batch_op.drop_column(column)
    op.drop_table("workers")
