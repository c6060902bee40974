"""product sources

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before this revision keep NULL: nobody recorded what put them there.
    with op.batch_alter_table("product_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_instances", schema=None) as batch_op:
        batch_op.drop_column("source")
