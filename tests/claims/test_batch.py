"""The claim batch lifecycle end to end on a synthetic council, on SQLite and PostgreSQL:
prepare, verify (with escalation), finalise, withdraw, and the double-claim guard."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

import sampling
import warehouse
from claims import batch, evaluation
from claims.settings import Settings
from warehouse.models import ClaimedFamily

WINDOW = "2018-02"
E = dt.date(2018, 2, 28)


@pytest.fixture
def loaded(engine: Engine, synth_folder: Path) -> Engine:
    warehouse.load_folder(engine, synth_folder)
    return engine


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        output_dir=tmp_path / "out",
    )


def _results_for(
    engine: Engine, window: str, fail: set[str] = frozenset()
) -> list[dict[str, object]]:  # type: ignore[assignment]
    with warehouse.batch_reader(engine, window) as tx:
        sampled = tx.sample().get_column("family_id").to_list()
        done = set(tx.results().get_column("family_id").to_list())
    return [
        {
            "family_id": f,
            "result": "fail" if f in fail else "pass",
            "note": "evidence did not support the claim" if f in fail else "",
            "auditor": "A. Auditor",
            "checked_on": dt.date(2018, 3, 10),
        }
        for f in sampled
        if f not in done
    ]


def test_prepare_takes_every_claimable_family(loaded: Engine, settings: Settings) -> None:
    result = batch.prepare(settings, loaded, WINDOW, seed="s1")
    claimable = evaluation.evaluate(loaded, E).families.filter(pl.col("claimable"))
    with warehouse.batch_reader(loaded, WINDOW) as tx:
        lines = tx.lines()
        sample = tx.sample()
    assert sorted(lines.get_column("family_id").to_list()) == sorted(
        claimable.get_column("family_id").to_list()
    )
    assert (lines.get_column("status") == "included").all()
    # the sample follows the formula in every stratum
    frame = sampling.draw_sample(
        lines.select("family_id", "basis", "locality", "manual_override"),
        "s1",
        sampling.SamplingSettings(),
    )
    assert sorted(sample.get_column("family_id").to_list()) == sorted(
        frame.filter(pl.col("sampled")).get_column("family_id").to_list()
    )
    assert result.counts["sampled"] == sample.height
    for name in (
        batch.VERIFICATION_XLSX,
        batch.VERIFICATION_HTML,
        batch.INSUFFICIENT_CSV,
        batch.SAMPLE_FRAME_CSV,
        batch.MANIFEST,
    ):
        assert (result.folder / name).is_file(), name
    for name in batch.PERSONAL:
        assert stat.S_IMODE(os.stat(result.folder / name).st_mode) == 0o600, name
    manifest = json.loads((result.folder / batch.MANIFEST).read_text())
    assert manifest["sampling"]["seed"] == "s1"
    assert manifest["files"][batch.VERIFICATION_XLSX] == batch.sha256_file(
        result.folder / batch.VERIFICATION_XLSX
    )


def test_prepare_stratifies_by_the_configured_columns(loaded: Engine, settings: Settings) -> None:
    """Strata are settings: a batch stratified by lead worker alone draws its sample so."""
    settings = settings.model_copy(
        update={"sampling": sampling.SamplingSettings(strata=("lead_worker",))}
    )
    batch.prepare(settings, loaded, WINDOW, seed="s2")
    with warehouse.batch_reader(loaded, WINDOW) as tx:
        lines = tx.lines()
        sample = tx.sample()
    frame = sampling.draw_sample(
        lines.select("family_id", "lead_worker", "manual_override"),
        "s2",
        sampling.SamplingSettings(strata=("lead_worker",)),
    )
    lead = dict(lines.select("family_id", "lead_worker").iter_rows())
    assert all(lead[f] == s for f, s in sample.select("family_id", "stratum").iter_rows())
    assert sorted(sample.get_column("family_id").to_list()) == sorted(
        frame.filter(pl.col("sampled")).get_column("family_id").to_list()
    )


def test_prepare_again_needs_replace(loaded: Engine, settings: Settings) -> None:
    batch.prepare(settings, loaded, WINDOW, seed="s1")
    with pytest.raises(warehouse.BatchError, match="already prepared"):
        batch.prepare(settings, loaded, WINDOW, seed="s2")
    again = batch.prepare(settings, loaded, WINDOW, seed="s2", replace=True)
    assert again.seed == "s2"
    assert warehouse.get_batch(loaded, WINDOW).seed == "s2"  # type: ignore[union-attr]


def test_verify_is_idempotent_and_fail_escalates(loaded: Engine, settings: Settings) -> None:
    batch.prepare(settings, loaded, WINDOW, seed="s1", rate=Decimal("0.20"))
    rows = _results_for(loaded, WINDOW)
    victim = str(rows[0]["family_id"])
    rows[0] = {**rows[0], "result": "fail", "note": "no evidence of attendance"}
    first = batch.verify(settings, loaded, WINDOW, rows)
    assert first.counts["failed"] == 1
    assert first.escalations, "a failure above tolerance 0 escalates its stratum"
    step = first.escalations[0]
    assert (step.from_rate, step.to_rate) == ("0.20", "0.50")
    again = batch.verify(settings, loaded, WINDOW, rows)
    assert again.counts["recorded"] == 0 and again.counts["unchanged"] == len(rows)
    assert again.escalations == []
    with warehouse.batch_reader(loaded, WINDOW) as tx:
        line = tx.lines().filter(pl.col("family_id") == victim).row(0, named=True)
        assert line["status"] == "failed" and "no evidence" in line["status_reason"]
        assert len(tx.escalations()) == 1
    changed = [{**rows[1], "result": "fail", "note": "changed my mind"}]
    with pytest.raises(warehouse.BatchError, match="cannot be changed"):
        batch.verify(settings, loaded, WINDOW, changed)


def test_finalise_needs_every_result_then_writes_the_claim_file(
    loaded: Engine, settings: Settings
) -> None:
    batch.prepare(settings, loaded, WINDOW, seed="s1")
    with pytest.raises(warehouse.BatchError, match="still need a result"):
        batch.finalise(settings, loaded, WINDOW)
    rows = _results_for(loaded, WINDOW)
    failed = {str(rows[0]["family_id"])}
    batch.verify(settings, loaded, WINDOW, _results_for(loaded, WINDOW, fail=failed))
    while True:  # escalation may add claims that need results too
        more = _results_for(loaded, WINDOW)
        if not more:
            break
        batch.verify(settings, loaded, WINDOW, more)
    result = batch.finalise(settings, loaded, WINDOW)
    claim_file = pl.read_csv(result.folder / batch.CLAIM_FILE, infer_schema=False)
    claimable = evaluation.evaluate(loaded, E).families  # now excludes the submitted ones
    with warehouse.batch_reader(loaded, WINDOW) as tx:
        lines = tx.lines()
    expected = set(lines.get_column("family_id").to_list()) - failed
    assert set(claim_file.get_column("family_id").to_list()) == expected
    assert (
        not claimable.filter(pl.col("family_id").is_in(list(expected)))
        .get_column("claimable")
        .any()
    )
    with pytest.raises(warehouse.BatchError, match="finalised"):
        batch.verify(settings, loaded, WINDOW, rows)
    with pytest.raises(warehouse.BatchError, match="finalised"):
        batch.prepare(settings, loaded, WINDOW, replace=True)
    # a later window never claims them again, by any route
    later = batch.prepare(settings, loaded, "2018-03", seed="s3")
    with warehouse.batch_reader(loaded, "2018-03") as tx:
        again = set(tx.lines().get_column("family_id").to_list())
    assert not (again & expected)
    assert later.counts["claimable"] == len(again)
    # withdraw keeps the family claimed
    victim = sorted(expected)[0]
    window, _ = batch.withdraw(loaded, victim, "MHCLG spot check: evidence missing")
    assert window == WINDOW
    with pytest.raises(warehouse.BatchError, match="already withdrawn"):
        batch.withdraw(loaded, victim, "again")
    assert victim in warehouse.submitted_families(loaded).to_list()
    assert victim in set(evaluation.read_sources(loaded).claimed_family_ids)


def test_database_forbids_a_double_claim(loaded: Engine, synth_folder: Path) -> None:
    history = pl.read_csv(synth_folder / "claims.csv", infer_schema=False)
    claimed = history.get_column("family_id")[0]
    with pytest.raises(IntegrityError), loaded.begin() as conn:
        conn.execute(
            insert(ClaimedFamily).values(
                family_id=claimed, source="batch", batch_id=None, claimed_on=E
            )
        )


def test_database_forbids_two_batch_claims_of_one_family(loaded: Engine) -> None:
    with loaded.begin() as conn:
        conn.execute(
            insert(ClaimedFamily).values(
                family_id="X1", source="batch", batch_id=None, claimed_on=E
            )
        )
    with pytest.raises(IntegrityError), loaded.begin() as conn:
        conn.execute(
            insert(ClaimedFamily).values(
                family_id="X1", source="batch", batch_id=None, claimed_on=dt.date(2018, 5, 31)
            )
        )


_ids = st.lists(st.text("0123456789", min_size=4, max_size=6), min_size=1, max_size=30, unique=True)


@settings_(max_examples=60, deadline=None)
@given(ids=_ids, data=st.data())
def test_reimporting_recorded_results_is_a_no_op(ids: list[str], data: st.DataObject) -> None:
    lines = pl.DataFrame({"family_id": ids})
    recorded = [
        {
            "family_id": f,
            "result": data.draw(st.sampled_from(["pass", "fail"])),
            "note": "why",
            "auditor": "A",
            "checked_on": dt.date(2018, 3, 1) + dt.timedelta(days=data.draw(st.integers(0, 30))),
        }
        for f in ids
    ]
    existing = pl.DataFrame(recorded, schema=warehouse.RESULT_COLUMNS, orient="row")
    again = data.draw(st.lists(st.sampled_from(recorded), max_size=len(recorded) * 2))
    new, unchanged = batch._check_results("2018-02", again, lines, set(ids), existing)
    assert new == []
    assert unchanged == len({r["family_id"] for r in again})


@pytest.mark.parametrize(
    "window", ["\uff12\uff10\uff11\uff18-02", "2018-02\n", "2018-2", "2018-13", "18-02"]
)
def test_parse_window_refuses_anything_but_ascii_yyyy_mm(window: str) -> None:
    with pytest.raises(warehouse.WarehouseError, match="not in the form YYYY-MM"):
        batch.parse_window(window)


def test_parse_window_reads_year_and_month() -> None:
    assert batch.parse_window("2018-02") == (2018, 2)
