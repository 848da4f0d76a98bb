"""Recording evaluation runs: what was evaluated, with which plan, and each family's result."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
from sqlalchemy import Engine, Row, Table, insert, select

from warehouse.bulk import append_rows
from warehouse.db import write_transaction
from warehouse.errors import WarehouseError
from warehouse.models import EvaluationFamily, EvaluationRun

RUN_FAMILY_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "locality": pl.String(),
    "attached_on": pl.Date(),
    "eligible": pl.Boolean(),
    "headlines": pl.String(),
    "ssp_state": pl.String(),
    "ssp_earliest": pl.Date(),
    "ce_state": pl.String(),
    "ce_earliest": pl.Date(),
    "claimed": pl.Boolean(),
    "claimable": pl.Boolean(),
    "basis": pl.String(),
    "status": pl.String(),
}
"""The per-family columns an evaluation run records, with their types."""


@dataclass(frozen=True)
class RunInfo:
    """A recorded evaluation run."""

    id: int
    created_at: dt.datetime
    as_of: dt.date
    plan_name: str
    plan_hash: str
    software_version: str
    load_batches: dict[str, int]
    families: int
    eligible: int
    claimable: int


def record_evaluation(
    engine: Engine,
    *,
    as_of: dt.date,
    plan_name: str,
    plan_hash: str,
    software_version: str,
    load_batches: dict[str, int],
    families: pl.DataFrame,
) -> RunInfo:
    """Record an evaluation run and its per-family rows (``RUN_FAMILY_COLUMNS``) in one transaction."""
    frame = families.select([pl.col(c).cast(t) for c, t in RUN_FAMILY_COLUMNS.items()])
    created = dt.datetime.now(dt.UTC)
    eligible = int(frame.get_column("eligible").sum())
    claimable = int(frame.get_column("claimable").sum())
    with write_transaction(engine) as conn:
        run_id = conn.execute(
            insert(EvaluationRun)
            .values(
                created_at=created,
                as_of=as_of,
                plan_name=plan_name,
                plan_hash=plan_hash,
                software_version=software_version,
                load_batches=json.dumps(load_batches, sort_keys=True),
                families=frame.height,
                eligible=eligible,
                claimable=claimable,
            )
            .returning(EvaluationRun.id)
        ).scalar_one()
        table = cast(Table, EvaluationFamily.__table__)
        append_rows(
            conn,
            table,
            frame.with_columns(pl.lit(run_id).alias("run_id")).select(
                "run_id", *RUN_FAMILY_COLUMNS
            ),
        )
    return RunInfo(
        run_id,
        created,
        as_of,
        plan_name,
        plan_hash,
        software_version,
        load_batches,
        frame.height,
        eligible,
        claimable,
    )


def _run_info(r: Row[Any]) -> RunInfo:
    return RunInfo(
        r.id,
        r.created_at,
        r.as_of,
        r.plan_name,
        r.plan_hash,
        r.software_version,
        {k: int(v) for k, v in json.loads(r.load_batches).items()},
        r.families,
        r.eligible,
        r.claimable,
    )


def evaluation_runs(engine: Engine, limit: int = 20) -> list[RunInfo]:
    """The most recent evaluation runs, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(EvaluationRun).order_by(EvaluationRun.id.desc()).limit(limit)
        ).all()
    return [_run_info(r) for r in rows]


def evaluation_run(engine: Engine, run_id: int) -> RunInfo:
    """One evaluation run by id; a one-line error when there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(EvaluationRun).where(EvaluationRun.id == run_id)).first()
    if row is None:
        raise WarehouseError(f"evaluation run {run_id} is not in the warehouse")
    return _run_info(row)
