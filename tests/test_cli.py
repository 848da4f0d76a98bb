"""The command line: help everywhere, one-line errors, and the demo end to end."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from claims.cli import cli, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found += _commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "tfclaims")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    assert cmd.help and len(cmd.help.strip()) > 10, f"{path} has no help text"


def test_bad_database_url_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["status", "--database", "nonsense://"])
    assert exc.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import os
    import stat

    import polars as pl

    workdir = tmp_path / "demo"
    code = 0
    try:
        main(["demo", "--dir", str(workdir), "--families", "600", "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert Path(report["extracts"]).is_dir()
    assert (workdir / "tfclaims.db").is_file()
    loaded = {t["table"]: t["loaded"] for t in report["load"]["tables"]}
    assert set(loaded) == {
        "families",
        "people",
        "offences",
        "attendance",
        "exclusions",
        "social_care",
        "benefits",
        "employment",
        "neet",
        "domestic_abuse",
        "health",
        "debt",
        "claims",
    }
    assert loaded["families"] == 600
    assert "seed 2018" in (workdir / "README.md").read_text()
    # the whole monthly batch ran: every output is there
    folder = workdir / "claims-output" / report["window"]
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "mhclg-claim-file.csv",
        "claim-summary.csv",
        "claim-summary.xlsx",
        "verification-list.xlsx",
        "verification-evidence-pack.html",
        "insufficient-evidence.csv",
        "sample-frame.csv",
        "manifest.json",
    }
    for private in (
        "verification-list.xlsx",
        "verification-evidence-pack.html",
        "insufficient-evidence.csv",
    ):
        assert stat.S_IMODE(os.stat(folder / private).st_mode) == 0o600
    prepared, *verified, finalised = report["steps"]
    assert finalised["status"] == "finalised"
    failed = verified[-1]["counts"]["failed"]
    assert failed > 0, "the demo's auditor fails a few claims so that escalation shows"
    assert any(step["escalations"] for step in verified)
    claim_file = pl.read_csv(folder / "mhclg-claim-file.csv", infer_schema=False)
    assert claim_file.height == prepared["counts"]["claimable"] - failed
    assert claim_file.height == finalised["counts"]["submitted"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["submitted"] == claim_file.height


def test_bench_evaluate_small_council(capsys: pytest.CaptureFixture[str]) -> None:
    """The evaluate benchmark runs end to end: both evaluators agree on the claimable count,
    every timed run is reported and the figure is their median."""
    import json
    import statistics

    code = 0
    try:
        main(
            [
                "bench",
                "evaluate",
                "--families",
                "60",
                "--reference-at",
                "60",
                "--repeat",
                "3",
                "--json",
            ]
        )
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["repeat"] == 3
    by = {r["evaluator"]: r for r in report["results"]}
    assert set(by) == {"polars", "reference"}
    assert by["polars"]["claimable"] == by["reference"]["claimable"]
    for r in by.values():
        assert r["families"] == 60 and len(r["runs"]) == 3
        assert r["seconds"] == pytest.approx(statistics.median(r["runs"]))
    ratio = by["reference"]["seconds"] / by["polars"]["seconds"]
    assert report["speedup"]["60"] == pytest.approx(ratio)
    worst = min(by["reference"]["runs"]) / max(by["polars"]["runs"])
    assert report["speedup_worst"]["60"] == pytest.approx(worst)
    assert report["speedup_worst"]["60"] <= report["speedup"]["60"]


@pytest.mark.parametrize("args", [["--families", "0"], ["--reference-at", "-5"], ["--repeat", "0"]])
def test_bench_evaluate_rejects_bad_sizes(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "evaluate", *args])
    assert exc.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_a_rate_too_long_to_store_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from warehouse.synth import synthesise

    synthesise(tmp_path / "x", families=30, seed=3)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    try:
        main(["load", str(tmp_path / "x"), "--database", db])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(
            ["claim", "prepare", "--window", "2018-02", "--rate", "0.3333333333", "--database", db]
        )
    assert exc.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: --rate 0.3333333333: rate is stored as written: use at most 8 characters"
    ]
