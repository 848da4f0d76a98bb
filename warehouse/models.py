"""SQLAlchemy 2.0 typed models: the extract tables and the system's own tables.

Extract tables carry ``row_no``, the 1-based row number in the source file
(the header is row 1), as their primary key: it is the row key that evidence
cites, and it lets the loader bulk-copy rows without a sequence. Tables are
full snapshots, so ``row_no`` is unique within a table.

There are no database foreign keys between extract tables: each table is
replaced on its own, and references are checked by the loader against the
snapshot the table will sit beside.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A moment in time, written in UTC. SQLite keeps no zone, so one read back without a zone
    is given UTC (every moment this system writes is UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None or value.tzinfo is not None:
            return value  # type: ignore[no-any-return]
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal stored exactly: NUMERIC on PostgreSQL, canonical text on SQLite.

    SQLite has no decimal type and would store NUMERIC as a float; money is
    never a float here, so SQLite keeps the digits as text.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        q = Decimal(value).quantize(Decimal(1).scaleb(-self.scale))
        return str(q) if dialect.name == "sqlite" else q

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints."""

    metadata = MetaData(naming_convention=NAMING)


# --------------------------------------------------------------------------
# Extract tables (contract version 1)
# --------------------------------------------------------------------------


class Family(Base):
    __tablename__ = "families"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    family_id: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    locality: Mapped[str] = mapped_column(String(64))
    attached_on: Mapped[dt.date | None] = mapped_column(Date)
    lead_worker: Mapped[str | None] = mapped_column(String(200))
    closed_on: Mapped[dt.date | None] = mapped_column(Date)


class Person(Base):
    __tablename__ = "people"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))


class Offence(Base):
    __tablename__ = "offences"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))


class Attendance(Base):
    __tablename__ = "attendance"
    __table_args__ = (Index("uq_attendance_person_term", "person_id", "term_start", unique=True),)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64))
    term_start: Mapped[dt.date] = mapped_column(Date)
    term_end: Mapped[dt.date] = mapped_column(Date)
    possible_sessions: Mapped[int] = mapped_column(Integer)
    unauthorised_sessions: Mapped[int] = mapped_column(Integer)


class Exclusion(Base):
    __tablename__ = "exclusions"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    excluded_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))


class SocialCare(Base):
    __tablename__ = "social_care"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    episode: Mapped[str] = mapped_column(String(32))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)


class Benefit(Base):
    __tablename__ = "benefits"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    benefit: Mapped[str] = mapped_column(String(32))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)


class Employment(Base):
    __tablename__ = "employment"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    hours_per_week: Mapped[Decimal | None] = mapped_column(ExactDecimal(6, 2))


class Neet(Base):
    __tablename__ = "neet"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)


class DomesticAbuse(Base):
    __tablename__ = "domestic_abuse"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))


class Health(Base):
    __tablename__ = "health"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    service: Mapped[str] = mapped_column(String(32))
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class Debt(Base):
    __tablename__ = "debt"
    __table_args__ = (
        Index("uq_debt_family_kind_recorded", "family_id", "kind", "recorded_on", unique=True),
    )
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    family_id: Mapped[str] = mapped_column(String(64))
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(12, 2))


class ClaimHistory(Base):
    """The ``claims`` extract: results claims made before this system or outside it."""

    __tablename__ = "claims_history"
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    family_id: Mapped[str] = mapped_column(String(64), index=True, unique=True)
    claimed_on: Mapped[dt.date] = mapped_column(Date)
    claim_window: Mapped[str] = mapped_column(String(7))
    basis: Mapped[str] = mapped_column(String(8))


EXTRACT_MODELS: dict[str, type[Base]] = {
    "families": Family,
    "people": Person,
    "offences": Offence,
    "attendance": Attendance,
    "exclusions": Exclusion,
    "social_care": SocialCare,
    "benefits": Benefit,
    "employment": Employment,
    "neet": Neet,
    "domestic_abuse": DomesticAbuse,
    "health": Health,
    "debt": Debt,
    "claims": ClaimHistory,
}


# --------------------------------------------------------------------------
# System tables
# --------------------------------------------------------------------------


class LoadBatch(Base):
    """One run of ``tfclaims load``: when, from where, and what it did."""

    __tablename__ = "load_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    source_dir: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    contract_version: Mapped[int] = mapped_column(Integer)
    rows_loaded: Mapped[int] = mapped_column(BigInteger)
    rows_rejected: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[list[LoadFile]] = relationship(
        back_populates="batch", order_by="LoadFile.id", cascade="all, delete-orphan"
    )


class LoadFile(Base):
    """One file of a load batch, with its hash and row counts."""

    __tablename__ = "load_file"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("load_batch.id"), index=True)
    table_name: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger)
    rows_loaded: Mapped[int] = mapped_column(BigInteger)
    rows_rejected: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[LoadBatch] = relationship(back_populates="files")


class TableState(Base):
    """The load batch whose snapshot each extract table currently holds.

    A table with no row here has never been loaded: rules that need it
    evaluate to ``unknown``.
    """

    __tablename__ = "table_state"
    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("load_batch.id"))
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    row_count: Mapped[int] = mapped_column(BigInteger)


class EvaluationRun(Base):
    """One evaluation of a plan at E: what was read, with which plan, and the totals."""

    __tablename__ = "evaluation_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[dt.date] = mapped_column(Date)
    plan_name: Mapped[str] = mapped_column(String(100))
    plan_hash: Mapped[str] = mapped_column(String(64))
    software_version: Mapped[str] = mapped_column(String(32))
    # JSON object: extract table -> load batch id whose snapshot was read
    load_batches: Mapped[str] = mapped_column(Text)
    families: Mapped[int] = mapped_column(BigInteger)
    eligible: Mapped[int] = mapped_column(BigInteger)
    claimable: Mapped[int] = mapped_column(BigInteger)


class EvaluationFamily(Base):
    """One family's result in an evaluation run (the per-family summary columns)."""

    __tablename__ = "evaluation_family"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("evaluation_run.id", ondelete="CASCADE"), primary_key=True
    )
    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    locality: Mapped[str] = mapped_column(String(64))
    attached_on: Mapped[dt.date | None] = mapped_column(Date)
    eligible: Mapped[bool] = mapped_column()
    headlines: Mapped[str] = mapped_column(Text)  # ;-separated headline codes identified
    ssp_state: Mapped[str] = mapped_column(String(8))
    ssp_earliest: Mapped[dt.date | None] = mapped_column(Date)
    ce_state: Mapped[str] = mapped_column(String(8))
    ce_earliest: Mapped[dt.date | None] = mapped_column(Date)
    claimed: Mapped[bool | None] = mapped_column()
    claimable: Mapped[bool] = mapped_column()
    basis: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))


# --------------------------------------------------------------------------
# The claim batch lifecycle
# --------------------------------------------------------------------------


class ClaimBatch(Base):
    """One claim window's batch: prepared, verified, finalised.

    ``window`` is unique: two prepares of one window cannot both succeed.
    """

    __tablename__ = "claim_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    window: Mapped[str] = mapped_column(String(7), unique=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(24))  # awaiting_verification | finalised
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finalised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    evaluation_run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_run.id"))
    plan_name: Mapped[str] = mapped_column(String(100))
    plan_hash: Mapped[str] = mapped_column(String(64))
    plan_text: Mapped[str] = mapped_column(Text)  # the plan file, canonical: later steps reuse it
    seed: Mapped[str] = mapped_column(String(200))
    sampling: Mapped[str] = mapped_column(Text)  # JSON: the sampling settings used
    load_batches: Mapped[str] = mapped_column(Text)  # JSON: table -> load batch id
    output_dir: Mapped[str] = mapped_column(Text)


class ClaimLine(Base):
    """One claimable family in a batch, with the evidence its claim rests on."""

    __tablename__ = "claim_line"
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("claim_batch.id", ondelete="CASCADE"), primary_key=True
    )
    family_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    locality: Mapped[str] = mapped_column(String(64))
    lead_worker: Mapped[str | None] = mapped_column(String(200))
    attached_on: Mapped[dt.date] = mapped_column(Date)
    basis: Mapped[str] = mapped_column(String(3))  # ssp | ce
    headlines: Mapped[str] = mapped_column(Text)  # ;-separated codes identified at A
    manual_override: Mapped[bool] = mapped_column()
    evidence: Mapped[str] = mapped_column(Text)  # JSON: the evaluation's states for this family
    status: Mapped[str] = mapped_column(String(16))  # included | failed | submitted | withdrawn
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SampleMember(Base):
    """A claim in the verification sample, and why it is there."""

    __tablename__ = "sample_member"
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("claim_batch.id", ondelete="CASCADE"), primary_key=True
    )
    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stratum: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    # random | escalation | rule:<name>; width: sampling.settings.REASON_WIDTH
    reason: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class VerificationResult(Base):
    """An auditor's result for one sampled claim."""

    __tablename__ = "verification_result"
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("claim_batch.id", ondelete="CASCADE"), primary_key=True
    )
    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    result: Mapped[str] = mapped_column(String(4))  # pass | fail
    note: Mapped[str] = mapped_column(Text)
    auditor: Mapped[str] = mapped_column(String(200))
    checked_on: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Escalation(Base):
    """A stratum's sampling rate moving up the ladder after failures."""

    __tablename__ = "escalation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("claim_batch.id", ondelete="CASCADE"), index=True
    )
    stratum: Mapped[str] = mapped_column(String(200))
    # rates as written; width: sampling.settings.RATE_WIDTH
    from_rate: Mapped[str] = mapped_column(String(8))
    to_rate: Mapped[str] = mapped_column(String(8))
    failures: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    added: Mapped[str] = mapped_column(Text)  # JSON list of family ids added


class BatchFile(Base):
    """A file a batch step wrote, with its SHA-256."""

    __tablename__ = "batch_file"
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("claim_batch.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(16))  # prepare | verify | finalise
    personal: Mapped[bool] = mapped_column()


class ClaimedFamily(Base):
    """Every family ever claimed, by any route: the double-claim guard.

    The primary key is the guarantee: a family is in the ``claims`` history
    extract or in one submitted (or later withdrawn) claim line, never both
    and never twice. The loader refreshes the ``history`` rows in the same
    transaction as the extract; finalising a batch inserts its lines.
    """

    __tablename__ = "claimed_family"
    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))  # history | batch
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("claim_batch.id"))
    claimed_on: Mapped[dt.date] = mapped_column(Date)
