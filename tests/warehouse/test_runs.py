"""Evaluation runs are recorded whole, with their per-family rows, on both backends."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import Engine

import warehouse


def _families() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "family_id": ["0001", "0002", "0003"],
            "locality": ["North", "Mid", "South"],
            "attached_on": [dt.date(2016, 5, 1), None, dt.date(2017, 8, 31)],
            "eligible": [True, False, True],
            "headlines": ["crime;health", "", "education;worklessness"],
            "ssp_state": ["met", "not_met", "pending"],
            "ssp_earliest": [None, None, dt.date(2018, 3, 1)],
            "ce_state": ["not_met", "not_met", "unknown"],
            "ce_earliest": [None, None, None],
            "claimed": [False, None, False],
            "claimable": [True, False, False],
            "basis": ["ssp", None, None],
            "status": ["claimable", "not_attached", "pending"],
        }
    )


def _record(
    engine: Engine, load_batches: dict[str, int], families: pl.DataFrame | None = None
) -> warehouse.RunInfo:
    """Record an evaluation at 2018-02-28 of the phase2 plan (the families of _families)."""
    return warehouse.record_evaluation(
        engine,
        as_of=dt.date(2018, 2, 28),
        plan_name="phase2",
        plan_hash="ab" * 32,
        software_version="0.1.0",
        load_batches=load_batches,
        families=_families() if families is None else families,
    )


def test_record_and_list(engine: Engine) -> None:
    run = _record(engine, {"families": 1, "people": 2})
    assert (run.families, run.eligible, run.claimable) == (3, 2, 1)
    [listed] = warehouse.evaluation_runs(engine)
    assert listed.id == run.id
    assert listed.load_batches == {"families": 1, "people": 2}
    assert listed.as_of == dt.date(2018, 2, 28)
    assert listed.created_at.tzinfo is not None
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT family_id, ssp_state, ssp_earliest, claimed FROM evaluation_family "
            "ORDER BY family_id"
        ).all()
    assert [r[0] for r in rows] == ["0001", "0002", "0003"]
    assert str(rows[2][2]) == "2018-03-01"
    assert rows[1][3] is None


def test_a_failed_record_leaves_nothing(engine: Engine) -> None:
    bad = _families().with_columns(pl.lit("0001").alias("family_id"))  # duplicate key
    with pytest.raises(Exception):  # noqa: B017 - either backend's integrity error
        _record(engine, {}, bad)
    assert warehouse.evaluation_runs(engine) == []


def test_one_run_by_id(engine: Engine) -> None:
    run = _record(engine, {"families": 1})
    found = warehouse.evaluation_run(engine, run.id)
    assert (found.id, found.eligible, found.as_of) == (run.id, 2, dt.date(2018, 2, 28))
    with pytest.raises(warehouse.WarehouseError, match=f"evaluation run {run.id + 1} is not"):
        warehouse.evaluation_run(engine, run.id + 1)
