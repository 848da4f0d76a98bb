"""evaluation runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:16:49.075074
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
        "evaluation_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("plan_name", sa.String(length=100), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.Column("load_batches", sa.Text(), nullable=False),
        sa.Column("families", sa.BigInteger(), nullable=False),
        sa.Column("eligible", sa.BigInteger(), nullable=False),
        sa.Column("claimable", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_run")),
    )
    op.create_table(
        "evaluation_family",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("attached_on", sa.Date(), nullable=True),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("headlines", sa.Text(), nullable=False),
        sa.Column("ssp_state", sa.String(length=8), nullable=False),
        sa.Column("ssp_earliest", sa.Date(), nullable=True),
        sa.Column("ce_state", sa.String(length=8), nullable=False),
        sa.Column("ce_earliest", sa.Date(), nullable=True),
        sa.Column("claimed", sa.Boolean(), nullable=True),
        sa.Column("claimable", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["evaluation_run.id"],
            name=op.f("fk_evaluation_family_run_id_evaluation_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "family_id", name=op.f("pk_evaluation_family")),
    )


def downgrade() -> None:
    op.drop_table("evaluation_family")
    op.drop_table("evaluation_run")
