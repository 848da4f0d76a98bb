"""initial schema: extract tables and load batches

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:47:01.173803
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attendance",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("term_start", sa.Date(), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=False),
        sa.Column("possible_sessions", sa.Integer(), nullable=False),
        sa.Column("unauthorised_sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_attendance")),
    )
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.create_index("uq_attendance_person_term", ["person_id", "term_start"], unique=True)

    op.create_table(
        "benefits",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("benefit", sa.String(length=32), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_benefits")),
    )
    with op.batch_alter_table("benefits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_benefits_person_id"), ["person_id"], unique=False)

    op.create_table(
        "claims_history",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_on", sa.Date(), nullable=False),
        sa.Column("claim_window", sa.String(length=7), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_claims_history")),
    )
    with op.batch_alter_table("claims_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_history_family_id"), ["family_id"], unique=True)

    op.create_table(
        "debt",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "amount", sa.Numeric(12, 2).with_variant(sa.String(14), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_debt")),
    )
    with op.batch_alter_table("debt", schema=None) as batch_op:
        batch_op.create_index(
            "uq_debt_family_kind_recorded", ["family_id", "kind", "recorded_on"], unique=True
        )

    op.create_table(
        "domestic_abuse",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_domestic_abuse")),
    )
    with op.batch_alter_table("domestic_abuse", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_domestic_abuse_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "employment",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column(
            "hours_per_week", sa.Numeric(6, 2).with_variant(sa.String(8), "sqlite"), nullable=True
        ),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_employment")),
    )
    with op.batch_alter_table("employment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_employment_person_id"), ["person_id"], unique=False)

    op.create_table(
        "exclusions",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("excluded_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_exclusions")),
    )
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exclusions_person_id"), ["person_id"], unique=False)

    op.create_table(
        "families",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("attached_on", sa.Date(), nullable=True),
        sa.Column("lead_worker", sa.String(length=200), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_families")),
    )
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_families_family_id"), ["family_id"], unique=True)

    op.create_table(
        "health",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_health")),
    )
    with op.batch_alter_table("health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_health_person_id"), ["person_id"], unique=False)

    op.create_table(
        "load_batch",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_dir", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("contract_version", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_batch")),
    )
    op.create_table(
        "neet",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_neet")),
    )
    with op.batch_alter_table("neet", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_neet_person_id"), ["person_id"], unique=False)

    op.create_table(
        "offences",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_offences")),
    )
    with op.batch_alter_table("offences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offences_person_id"), ["person_id"], unique=False)

    op.create_table(
        "people",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_people")),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_family_id"), ["family_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_people_person_id"), ["person_id"], unique=True)

    op.create_table(
        "social_care",
        sa.Column("row_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.String(length=32), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_social_care")),
    )
    with op.batch_alter_table("social_care", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_social_care_person_id"), ["person_id"], unique=False)

    op.create_table(
        "load_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["load_batch.id"], name=op.f("fk_load_file_batch_id_load_batch")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_file")),
    )
    with op.batch_alter_table("load_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_load_file_batch_id"), ["batch_id"], unique=False)

    op.create_table(
        "table_state",
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["load_batch.id"], name=op.f("fk_table_state_batch_id_load_batch")
        ),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_table_state")),
    )


def downgrade() -> None:
    op.drop_table("table_state")
    with op.batch_alter_table("load_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_load_file_batch_id"))

    op.drop_table("load_file")
    with op.batch_alter_table("social_care", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_care_person_id"))

    op.drop_table("social_care")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_person_id"))
        batch_op.drop_index(batch_op.f("ix_people_family_id"))

    op.drop_table("people")
    with op.batch_alter_table("offences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offences_person_id"))

    op.drop_table("offences")
    with op.batch_alter_table("neet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_neet_person_id"))

    op.drop_table("neet")
    op.drop_table("load_batch")
    with op.batch_alter_table("health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_person_id"))

    op.drop_table("health")
    with op.batch_alter_table("families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_families_family_id"))

    op.drop_table("families")
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exclusions_person_id"))

    op.drop_table("exclusions")
    with op.batch_alter_table("employment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_employment_person_id"))

    op.drop_table("employment")
    with op.batch_alter_table("domestic_abuse", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_domestic_abuse_person_id"))

    op.drop_table("domestic_abuse")
    with op.batch_alter_table("debt", schema=None) as batch_op:
        batch_op.drop_index("uq_debt_family_kind_recorded")

    op.drop_table("debt")
    with op.batch_alter_table("claims_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claims_history_family_id"))

    op.drop_table("claims_history")
    with op.batch_alter_table("benefits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benefits_person_id"))

    op.drop_table("benefits")
    with op.batch_alter_table("attendance", schema=None) as batch_op:
        batch_op.drop_index("uq_attendance_person_term")

    op.drop_table("attendance")
