"""users, finding follow-up

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:58:26.798926
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "user_stores",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_user_stores_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_stores_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "store_id", name=op.f("pk_user_stores")),
    )
    with op.batch_alter_table("compliance_findings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key", sa.String(length=300), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("reopened", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_compliance_findings_key"), ["key"], unique=False)
    # Existing findings get their key (see shelfwatch.services.audits.finding_key).
    op.execute(
        "UPDATE compliance_findings SET key = CAST(fixture_id AS VARCHAR) || '|' || type || '|' "
        "|| CAST(shelf AS VARCHAR) || '|' || COALESCE(CAST(position AS VARCHAR), '') || '|' "
        "|| COALESCE(expected_sku, '') || '|' || COALESCE(observed_sku, '')"
    )


def downgrade() -> None:
    with op.batch_alter_table("compliance_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compliance_findings_key"))
        batch_op.drop_column("reopened")
        batch_op.drop_column("key")

    op.drop_table("user_stores")
    op.drop_table("users")
