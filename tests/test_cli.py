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
    workdir = tmp_path / "demo"
    code = 0
    try:
        main(["demo", "--dir", str(workdir), "--families", "300", "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, capsys.readouterr().err
    import json

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
    assert loaded["families"] == 300
    assert report["counts"] == loaded
    assert "seed 2018" in (workdir / "README.md").read_text()
