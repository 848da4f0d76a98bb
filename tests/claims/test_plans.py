"""Plans as data: plan show reads the file, a second plan runs with no code change,
and plan diff lists exactly the families that change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

import rules
import warehouse
from claims import evaluation
from claims.plan_text import plan_text

E = dt.date(2018, 2, 28)
PLANS = Path(rules.default_plan_path()).parent
SF = PLANS / "supporting-families-2022.yaml"


def test_plan_show_names_every_reference() -> None:
    plan = rules.load_plan(rules.default_plan_path())
    text = plan_text(plan)
    dumped = plan.model_dump(mode="json", by_alias=True)
    refs = [dumped["eligibility"]["reference"], dumped["continuous_employment"]["reference"]]
    for h in dumped["headlines"]:
        for ind in h["indicators"]:
            refs.append(ind["reference"])
            if ind.get("outcome"):
                refs.append(ind["outcome"]["reference"])
        if h.get("outcome"):
            refs.append(h["outcome"]["reference"])
    for ref in refs:
        assert ref in text


def test_plan_show_follows_the_file(tmp_path: Path) -> None:
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        rules.default_plan_path()
        .read_text()
        .replace("at_least_percent: 33", "at_least_percent: 40")
        .replace("min_headlines: 2", "min_headlines: 3")
    )
    text = plan_text(rules.load_plan(edited))
    assert "at least 40% fewer" in text and "at least 33% fewer" not in text
    assert "at least 3 of the 6 headlines" in text


def test_successor_plan_loads_with_no_ce_and_three_headlines() -> None:
    plan = rules.load_plan(SF)
    assert plan.continuous_employment is None
    assert plan.eligibility.min_headlines == 3
    assert len(plan.headlines) == 7
    assert "no such route" in plan_text(plan)


@pytest.fixture
def loaded(sqlite_engine: Engine, synth_folder: Path) -> Engine:
    warehouse.load_folder(sqlite_engine, synth_folder)
    return sqlite_engine


def test_successor_plan_runs(loaded: Engine) -> None:
    f = evaluation.evaluate(loaded, E, SF).families
    eligible = f.filter(pl.col("eligible"))
    assert eligible.height > 0
    assert (eligible.get_column("identified").list.len() >= 3).all()
    assert (f.get_column("state:ce") == "not_met").all()
    claimable = f.filter(pl.col("claimable"))
    assert (claimable.get_column("basis") == "ssp").all()


def test_plan_diff_lists_exactly_the_changed_families(loaded: Engine, tmp_path: Path) -> None:
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(
        rules.default_plan_path().read_text().replace("min_headlines: 2", "min_headlines: 3")
    )
    diff = evaluation.plan_diff(loaded, rules.default_plan_path(), stricter, E)
    base = evaluation.evaluate(loaded, E).families
    expected = base.filter(pl.col("eligible") & (pl.col("identified").list.len() == 2)).get_column(
        "family_id"
    )
    assert sorted(diff.changes.get_column("family_id").to_list()) == sorted(expected.to_list())
    assert not diff.changes.get_column("eligible_new").any()
    assert diff.changes.get_column("reason").str.contains("of 3 needed").all()
    lost_claims = diff.changes.filter(pl.col("claimable_old")).height
    assert (
        lost_claims
        == base.filter(pl.col("claimable") & (pl.col("identified").list.len() == 2)).height
    )
