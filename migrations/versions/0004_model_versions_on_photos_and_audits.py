"""model versions on photos and audits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:34:10.622240
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("models", sa.String(length=500), nullable=True))

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_version", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("model_version")

    with op.batch_alter_table("audits", schema=None) as batch_op:
        batch_op.drop_column("models")
