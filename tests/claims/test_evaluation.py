"""Evaluating the warehouse: the run is recorded, statuses partition the families,
the summary adds up, and explain agrees with the vectorised evaluator."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

import warehouse
from claims import evaluation
from claims.cli import main

E = dt.date(2018, 2, 28)


@pytest.fixture
def loaded(engine: Engine, synth_folder: Path) -> Engine:
    warehouse.load_folder(engine, synth_folder)
    return engine


def test_evaluate_records_the_run(loaded: Engine, synth_folder: Path) -> None:
    result = evaluation.evaluate(loaded, E)
    families = pl.read_csv(synth_folder / "families.csv", infer_schema=False)
    assert result.families.height == families.height
    assert set(result.families.get_column("status").unique()) <= set(evaluation.STATUSES)
    assert result.run.families == families.height
    assert result.run.load_batches == {t: 1 for t in warehouse.loaded_tables(loaded)}
    [listed] = warehouse.evaluation_runs(loaded)
    assert listed.plan_name == "phase2" and listed.plan_hash == result.run.plan_hash
    claimable = result.families.filter(pl.col("claimable"))
    assert result.run.claimable == claimable.height > 0
    assert (claimable.get_column("status") == "claimable").all()
    assert claimable.get_column("basis").is_in(["ssp", "ce"]).all()
    # never claim a family claimed before
    history = pl.read_csv(synth_folder / "claims.csv", infer_schema=False)
    assert (
        not claimable.get_column("family_id").is_in(history.get_column("family_id").implode()).any()
    )


def test_summary_adds_up(loaded: Engine) -> None:
    result = evaluation.evaluate(loaded, E)
    s = result.summary
    total = s.filter(pl.col("locality") == "All")
    parts = s.filter(pl.col("locality") != "All").drop("locality").sum()
    assert total.drop("locality").rows() == parts.rows()
    row = total.to_dicts()[0]
    held = ("already_claimed", "claimable_ssp", "claimable_ce", "pending", "unknown", "not_met")
    assert row["eligible"] == sum(row[k] for k in held)
    assert row["attached"] <= row["families"]


def test_unattached_and_ineligible_are_never_claimable(loaded: Engine) -> None:
    f = evaluation.evaluate(loaded, E).families
    assert not f.filter(~pl.col("attached") | ~pl.col("eligible")).get_column("claimable").any()


def test_explain_agrees_with_the_vectorised_evaluator(loaded: Engine) -> None:
    f = evaluation.evaluate(loaded, E).families
    sample = pl.concat(
        [f.filter(pl.col("status") == s).head(2) for s in ("claimable", "pending", "not_met")]
    )
    assert sample.height >= 4
    for row in sample.iter_rows(named=True):
        r = evaluation.explain(loaded, row["family_id"], E)
        assert r.claimable == row["claimable"]
        assert r.ssp.state == row["state:ssp"]
        assert r.ce.state == row["state:ce"]
        assert r.ssp.earliest == row["earliest:ssp"]


def test_explain_unknown_family(loaded: Engine) -> None:
    with pytest.raises(warehouse.WarehouseError, match="not in the families extract"):
        evaluation.explain(loaded, "no-such-family", E)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_evaluate_and_explain(
    sqlite_engine: Engine, synth_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse.load_folder(sqlite_engine, synth_folder)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    code, out, err = _run(
        ["evaluate", "--as-of", "2018-02-28", "--database", url, "--json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["run"]["as_of"] == "2018-02-28"
    assert report["by_locality"][-1]["locality"] == "All"
    family = (
        report
        and evaluation.evaluate(sqlite_engine, E)
        .families.filter(pl.col("claimable"))
        .get_column("family_id")[0]
    )
    code, out, err = _run(["explain", family, "--as-of", "2018-02-28", "--database", url], capsys)
    assert code == 0, err
    assert f"family {family}" in out and "claimable: yes" in out


def test_cli_plan_check(capsys: pytest.CaptureFixture[str]) -> None:
    import rules

    code, out, _ = _run(["plan", "check", str(rules.default_plan_path())], capsys)
    assert code == 0 and "ok" in out
    bad = Path(__file__).resolve().parents[1] / "rules" / "bad_plans" / "bad_anchor.yaml"
    code, _, err = _run(["plan", "check", str(bad)], capsys)
    assert code == 2
    [line] = err.strip().splitlines()
    assert "bad_anchor.yaml" in line and "anchor" in line
