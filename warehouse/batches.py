"""The claim batch lifecycle in the database: prepare, verify, finalise, withdraw.

Each step runs in one transaction (``batch_transaction``), holding the batch
for the whole step: the caller reads the batch's frames, decides, and writes,
and either all of it commits or none of it does. SQLite takes its write lock
at BEGIN; PostgreSQL locks the batch row.

The warehouse knows nothing of rules or sampling: it stores what it is given
(frames with documented columns) and enforces what a database can: one batch
per window, one claim per family ever (``claimed_family``), and no change to a
finalised batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from warehouse.bulk import append_rows
from warehouse.db import write_transaction
from warehouse.errors import WarehouseError
from warehouse.faults import fault_point
from warehouse.models import (
    BatchFile,
    ClaimBatch,
    ClaimedFamily,
    ClaimLine,
    Escalation,
    SampleMember,
    VerificationResult,
)


class BatchError(WarehouseError):
    """A batch step that cannot be done: the message says why and what to do."""


LINE_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "locality": pl.String(),
    "lead_worker": pl.String(),
    "attached_on": pl.Date(),
    "basis": pl.String(),
    "headlines": pl.String(),
    "manual_override": pl.Boolean(),
    "evidence": pl.String(),
}
"""Columns of the claim lines a prepare stores."""

SAMPLE_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "stratum": pl.String(),
    "hash": pl.String(),
    "rank": pl.Int64(),
    "reason": pl.String(),
}
"""Columns of the sample members stored (only sampled claims)."""

RESULT_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "result": pl.String(),
    "note": pl.String(),
    "auditor": pl.String(),
    "checked_on": pl.Date(),
}
"""Columns of auditors' verification results."""


@dataclass(frozen=True)
class BatchRecord:
    """A claim batch as stored."""

    id: int
    window: str
    as_of: dt.date
    status: str
    created_at: dt.datetime
    finalised_at: dt.datetime | None
    evaluation_run_id: int
    plan_name: str
    plan_hash: str
    plan_text: str
    seed: str
    sampling: dict[str, Any]
    load_batches: dict[str, int]
    output_dir: str

    @property
    def finalised(self) -> bool:
        """Whether the batch was finalised (and so can never change)."""
        return self.status == "finalised"


@dataclass(frozen=True)
class EscalationRecord:
    """One logged escalation."""

    stratum: str
    from_rate: str
    to_rate: str
    failures: int
    at: dt.datetime
    added: tuple[str, ...]


def _record(b: Any) -> BatchRecord:
    return BatchRecord(
        id=b.id,
        window=b.window,
        as_of=b.as_of,
        status=b.status,
        created_at=b.created_at,
        finalised_at=b.finalised_at,
        evaluation_run_id=b.evaluation_run_id,
        plan_name=b.plan_name,
        plan_hash=b.plan_hash,
        plan_text=b.plan_text,
        seed=b.seed,
        sampling=json.loads(b.sampling),
        load_batches={k: int(v) for k, v in json.loads(b.load_batches).items()},
        output_dir=b.output_dir,
    )


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _frame(
    conn: Connection, model: Any, batch_id: int, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    cols = [getattr(model, c) for c in schema]
    rows = conn.execute(
        select(*cols).where(model.batch_id == batch_id).order_by(model.family_id)
    ).all()
    return pl.DataFrame([tuple(r) for r in rows] or None, schema=schema, orient="row")


class BatchTx:
    """One batch step's transaction: read the batch's frames and write its changes."""

    def __init__(self, conn: Connection, batch: BatchRecord) -> None:
        self.conn = conn
        self.batch = batch

    def lines(self) -> pl.DataFrame:
        """The claim lines, with their current ``status``."""
        schema = {**LINE_COLUMNS, "status": pl.String(), "status_reason": pl.String()}
        return _frame(self.conn, ClaimLine, self.batch.id, schema)

    def sample(self) -> pl.DataFrame:
        """The sampled claims (``SAMPLE_COLUMNS``)."""
        return _frame(self.conn, SampleMember, self.batch.id, SAMPLE_COLUMNS)

    def results(self) -> pl.DataFrame:
        """The verification results recorded so far (``RESULT_COLUMNS``)."""
        return _frame(self.conn, VerificationResult, self.batch.id, RESULT_COLUMNS)

    def escalations(self) -> list[EscalationRecord]:
        """The escalation log, oldest first."""
        rows = self.conn.execute(
            select(
                Escalation.stratum,
                Escalation.from_rate,
                Escalation.to_rate,
                Escalation.failures,
                Escalation.at,
                Escalation.added,
            )
            .where(Escalation.batch_id == self.batch.id)
            .order_by(Escalation.id)
        ).all()
        return [
            EscalationRecord(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5]))) for r in rows
        ]

    def check_open(self) -> None:
        """Refuse to change a finalised batch."""
        if self.batch.finalised:
            raise BatchError(
                f"window {self.batch.window} was finalised on "
                f"{self.batch.finalised_at:%Y-%m-%d}; a finalised batch cannot be changed"
            )

    def add_results(self, results: pl.DataFrame, at: dt.datetime) -> None:
        """Store new results; a failed claim leaves the batch with its reason kept."""
        self.check_open()
        if results.is_empty():
            return
        frame = results.select([pl.col(c).cast(t) for c, t in RESULT_COLUMNS.items()])
        append_rows(
            self.conn,
            _table(VerificationResult),
            frame.with_columns(
                pl.lit(self.batch.id).alias("batch_id"), pl.lit(at).alias("recorded_at")
            ).select("batch_id", *RESULT_COLUMNS, "recorded_at"),
        )
        for row in frame.filter(pl.col("result") == "fail").iter_rows(named=True):
            self.conn.execute(
                update(ClaimLine)
                .where(ClaimLine.batch_id == self.batch.id, ClaimLine.family_id == row["family_id"])
                .values(
                    status="failed",
                    status_reason=f"failed verification by {row['auditor']} on "
                    f"{row['checked_on']}: {row['note']}",
                    status_at=at,
                )
            )

    def add_sample(self, members: pl.DataFrame, at: dt.datetime) -> None:
        """Add claims to the sample (``SAMPLE_COLUMNS``)."""
        self.check_open()
        if members.is_empty():
            return
        append_rows(
            self.conn,
            _table(SampleMember),
            members.select([pl.col(c).cast(t) for c, t in SAMPLE_COLUMNS.items()])
            .with_columns(pl.lit(self.batch.id).alias("batch_id"), pl.lit(at).alias("added_at"))
            .select("batch_id", *SAMPLE_COLUMNS, "added_at"),
        )

    def log_escalation(self, step: EscalationRecord) -> None:
        """Record one escalation."""
        self.check_open()
        self.conn.execute(
            insert(Escalation).values(
                batch_id=self.batch.id,
                stratum=step.stratum,
                from_rate=step.from_rate,
                to_rate=step.to_rate,
                failures=step.failures,
                at=step.at,
                added=json.dumps(list(step.added)),
            )
        )

    def record_files(self, files: list[tuple[str, str, bool]], step: str) -> None:
        """Record written files as (name, sha256, holds personal data), replacing same names."""
        if not files:
            return
        names = [f[0] for f in files]
        self.conn.execute(
            delete(BatchFile).where(BatchFile.batch_id == self.batch.id, BatchFile.name.in_(names))
        )
        self.conn.execute(
            insert(BatchFile),
            [
                {"batch_id": self.batch.id, "name": n, "sha256": h, "step": step, "personal": p}
                for n, h, p in files
            ],
        )

    def files(self) -> dict[str, str]:
        """Every recorded file of the batch: name -> SHA-256."""
        rows = self.conn.execute(
            select(BatchFile.name, BatchFile.sha256).where(BatchFile.batch_id == self.batch.id)
        ).all()
        return {r[0]: r[1] for r in rows}

    def finalise(self, at: dt.datetime) -> int:
        """Submit every included line: the registry takes each family, or the step fails whole."""
        self.check_open()
        lines = self.lines().filter(pl.col("status") == "included")
        if not lines.is_empty():
            try:
                with self.conn.begin_nested():
                    self.conn.execute(
                        insert(ClaimedFamily),
                        [
                            {
                                "family_id": f,
                                "source": "batch",
                                "batch_id": self.batch.id,
                                "claimed_on": self.batch.as_of,
                            }
                            for f in lines.get_column("family_id").to_list()
                        ],
                    )
            except IntegrityError as exc:
                raise BatchError(
                    f"window {self.batch.window}: a family in this batch is already claimed "
                    "(in the claims history or another submitted batch); nothing was submitted"
                ) from exc
        self.conn.execute(
            update(ClaimLine)
            .where(ClaimLine.batch_id == self.batch.id, ClaimLine.status == "included")
            .values(status="submitted", status_at=at)
        )
        fault_point("finalise:before-commit")
        self.conn.execute(
            update(ClaimBatch)
            .where(ClaimBatch.id == self.batch.id)
            .values(status="finalised", finalised_at=at)
        )
        return lines.height


def _get(conn: Connection, window: str, *, lock: bool = False) -> BatchRecord | None:
    q = select(_table(ClaimBatch)).where(ClaimBatch.window == window)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else _record(row)


def get_batch(engine: Engine, window: str) -> BatchRecord | None:
    """The batch of ``window``, if one was prepared."""
    with engine.connect() as conn:
        return _get(conn, window)


def list_batches(engine: Engine) -> list[BatchRecord]:
    """Every batch, newest window first."""
    with engine.connect() as conn:
        rows = conn.execute(select(_table(ClaimBatch)).order_by(ClaimBatch.window.desc())).all()
    return [_record(r) for r in rows]


@contextmanager
def batch_transaction(engine: Engine, window: str) -> Iterator[BatchTx]:
    """Hold the batch of ``window`` for one step; everything in the block commits together."""
    with write_transaction(engine) as conn:
        batch = _get(conn, window, lock=True)
        if batch is None:
            raise BatchError(
                f"window {window} has no batch: run 'tfclaims claim prepare --window {window}'"
            )
        yield BatchTx(conn, batch)


@contextmanager
def batch_reader(engine: Engine, window: str) -> Iterator[BatchTx]:
    """Read the batch of ``window`` without taking a write lock (its write methods are not for use here)."""
    with engine.connect() as conn:
        batch = _get(conn, window)
        if batch is None:
            raise BatchError(f"window {window} has no batch")
        yield BatchTx(conn, batch)


def create_batch(
    engine: Engine,
    draft: BatchRecord,
    *,
    lines: pl.DataFrame,
    sample: pl.DataFrame,
    files: list[tuple[str, str, bool]] | None = None,
    replace: bool = False,
) -> BatchRecord:
    """Store a prepared batch (``draft``: its id and status are ignored) with its
    lines, sample and files, in one transaction.

    An existing batch for the window is replaced only when ``replace`` is set
    and it is not finalised. Two prepares of one window at once cannot both
    succeed: the window is unique, and the loser gets a clear message.
    """
    window, at = draft.window, draft.created_at
    try:
        with write_transaction(engine) as conn:
            existing = _get(conn, window, lock=True)
            if existing is not None:
                if existing.finalised:
                    raise BatchError(
                        f"window {window} was finalised on {existing.finalised_at:%Y-%m-%d}; "
                        "a finalised batch cannot be prepared again"
                    )
                if not replace:
                    raise BatchError(
                        f"window {window} is already prepared (awaiting verification since "
                        f"{existing.created_at:%Y-%m-%d %H:%M}); use --replace to prepare it again"
                    )
                conn.execute(delete(ClaimBatch).where(ClaimBatch.id == existing.id))
            batch_id = conn.execute(
                insert(ClaimBatch)
                .values(
                    window=window,
                    as_of=draft.as_of,
                    status="awaiting_verification",
                    created_at=at,
                    finalised_at=None,
                    evaluation_run_id=draft.evaluation_run_id,
                    plan_name=draft.plan_name,
                    plan_hash=draft.plan_hash,
                    plan_text=draft.plan_text,
                    seed=draft.seed,
                    sampling=json.dumps(draft.sampling, sort_keys=True, default=str),
                    load_batches=json.dumps(draft.load_batches, sort_keys=True),
                    output_dir=draft.output_dir,
                )
                .returning(ClaimBatch.id)
            ).scalar_one()
            fault_point("prepare:after-batch-row")
            append_rows(
                conn,
                _table(ClaimLine),
                lines.select([pl.col(c).cast(t) for c, t in LINE_COLUMNS.items()])
                .with_columns(
                    pl.lit(batch_id).alias("batch_id"),
                    pl.lit("included").alias("status"),
                    pl.lit(None, pl.String).alias("status_reason"),
                    pl.lit(None, pl.Datetime("us", "UTC")).alias("status_at"),
                )
                .select("batch_id", *LINE_COLUMNS, "status", "status_reason", "status_at"),
            )
            fault_point("prepare:after-lines")
            record = _get(conn, window)
            assert record is not None
            tx = BatchTx(conn, record)
            tx.add_sample(sample, at)
            tx.record_files(files or [], "prepare")
            fault_point("prepare:before-commit")
            return record
    except IntegrityError as exc:
        raise BatchError(
            f"window {window} was prepared by another run at the same time; "
            "that one stands (see 'tfclaims claim status')"
        ) from exc


def withdraw(engine: Engine, family_id: str, reason: str, at: dt.datetime) -> tuple[str, str]:
    """Mark a submitted claim withdrawn. It stays claimed. Returns (window, family_id)."""
    with write_transaction(engine) as conn:
        row = conn.execute(
            select(ClaimLine.batch_id, ClaimBatch.window, ClaimLine.status)
            .join(ClaimBatch, ClaimBatch.id == ClaimLine.batch_id)
            .where(
                ClaimLine.family_id == family_id, ClaimLine.status.in_(["submitted", "withdrawn"])
            )
        ).first()
        if row is None:
            raise BatchError(f"family {family_id!r} has no submitted claim to withdraw")
        if row[2] == "withdrawn":
            raise BatchError(
                f"family {family_id!r}'s claim in window {row[1]} is already withdrawn"
            )
        conn.execute(
            update(ClaimLine)
            .where(ClaimLine.batch_id == row[0], ClaimLine.family_id == family_id)
            .values(status="withdrawn", status_reason=reason, status_at=at)
        )
        return str(row[1]), family_id


def submitted_lines(engine: Engine) -> pl.DataFrame:
    """Every submitted or withdrawn claim line: family_id, window, as_of, basis, locality, attached_on, status."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ClaimLine.family_id,
                ClaimBatch.window,
                ClaimBatch.as_of,
                ClaimLine.basis,
                ClaimLine.locality,
                ClaimLine.attached_on,
                ClaimLine.status,
            )
            .join(ClaimBatch, ClaimBatch.id == ClaimLine.batch_id)
            .where(ClaimLine.status.in_(["submitted", "withdrawn"]))
            .order_by(ClaimLine.family_id)
        ).all()
    schema = {
        "family_id": pl.String,
        "window": pl.String,
        "as_of": pl.Date,
        "basis": pl.String,
        "locality": pl.String,
        "attached_on": pl.Date,
        "status": pl.String,
    }
    return pl.DataFrame([tuple(r) for r in rows] or None, schema=schema, orient="row")
