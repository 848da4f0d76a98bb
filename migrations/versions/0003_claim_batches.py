"""claim batches

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:40:53.995618
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
        "claim_batch",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("window", sa.String(length=7), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finalised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_run_id", sa.Integer(), nullable=False),
        sa.Column("plan_name", sa.String(length=100), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("plan_text", sa.Text(), nullable=False),
        sa.Column("seed", sa.String(length=200), nullable=False),
        sa.Column("sampling", sa.Text(), nullable=False),
        sa.Column("load_batches", sa.Text(), nullable=False),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_run_id"],
            ["evaluation_run.id"],
            name=op.f("fk_claim_batch_evaluation_run_id_evaluation_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_batch")),
        sa.UniqueConstraint("window", name=op.f("uq_claim_batch_window")),
    )
    op.create_table(
        "batch_file",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["claim_batch.id"],
            name=op.f("fk_batch_file_batch_id_claim_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "name", name=op.f("pk_batch_file")),
    )
    op.create_table(
        "claim_line",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("lead_worker", sa.String(length=200), nullable=True),
        sa.Column("attached_on", sa.Date(), nullable=False),
        sa.Column("basis", sa.String(length=3), nullable=False),
        sa.Column("headlines", sa.Text(), nullable=False),
        sa.Column("manual_override", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["claim_batch.id"],
            name=op.f("fk_claim_line_batch_id_claim_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "family_id", name=op.f("pk_claim_line")),
    )
    with op.batch_alter_table("claim_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_line_family_id"), ["family_id"], unique=False)

    op.create_table(
        "claimed_family",
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("claimed_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["claim_batch.id"], name=op.f("fk_claimed_family_batch_id_claim_batch")
        ),
        sa.PrimaryKeyConstraint("family_id", name=op.f("pk_claimed_family")),
    )
    op.create_table(
        "escalation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(length=200), nullable=False),
        sa.Column("from_rate", sa.String(length=8), nullable=False),
        sa.Column("to_rate", sa.String(length=8), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["claim_batch.id"],
            name=op.f("fk_escalation_batch_id_claim_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation")),
    )
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "sample_member",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("stratum", sa.String(length=200), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["claim_batch.id"],
            name=op.f("fk_sample_member_batch_id_claim_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "family_id", name=op.f("pk_sample_member")),
    )
    op.create_table(
        "verification_result",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=4), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("auditor", sa.String(length=200), nullable=False),
        sa.Column("checked_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["claim_batch.id"],
            name=op.f("fk_verification_result_batch_id_claim_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "family_id", name=op.f("pk_verification_result")),
    )

    # Families already in the claims history extract are claimed.
    op.execute(
        "INSERT INTO claimed_family (family_id, source, batch_id, claimed_on) "
        "SELECT family_id, 'history', NULL, claimed_on FROM claims_history"
    )


def downgrade() -> None:
    op.drop_table("verification_result")
    op.drop_table("sample_member")
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_batch_id"))

    op.drop_table("escalation")
    op.drop_table("claimed_family")
    with op.batch_alter_table("claim_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_line_family_id"))

    op.drop_table("claim_line")
    op.drop_table("batch_file")
    op.drop_table("claim_batch")
