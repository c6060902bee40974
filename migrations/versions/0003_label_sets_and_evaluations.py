"""label sets and evaluations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:31:50.040655
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_sets")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_label_sets_name_version")),
        sa.UniqueConstraint("source_sha256", name=op.f("uq_label_sets_source_sha256")),
    )
    with op.batch_alter_table("label_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_sets_name"), ["name"], unique=False)

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_set_id", sa.Integer(), nullable=True),
        sa.Column("backend", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_set_id"],
            ["label_sets.id"],
            name=op.f("fk_evaluations_label_set_id_label_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evaluations_label_set_id"), ["label_set_id"], unique=False
        )

    op.create_table(
        "label_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_set_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["label_set_id"],
            ["label_sets.id"],
            name=op.f("fk_label_images_label_set_id_label_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
            name=op.f("fk_label_images_photo_id_photos"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_images")),
        sa.UniqueConstraint(
            "label_set_id", "sha256", name=op.f("uq_label_images_label_set_id_sha256")
        ),
    )
    with op.batch_alter_table("label_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_images_sha256"), ["sha256"], unique=False)

    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label_image_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("mask_rle", sa.Text(), nullable=True),
        sa.Column("iscrowd", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_image_id"],
            ["label_images.id"],
            name=op.f("fk_labels_label_image_id_label_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_labels_label_image_id"), ["label_image_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_label_image_id"))

    op.drop_table("labels")
    with op.batch_alter_table("label_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_images_sha256"))

    op.drop_table("label_images")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_label_set_id"))

    op.drop_table("evaluations")
    with op.batch_alter_table("label_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_label_sets_name"))

    op.drop_table("label_sets")
