"""The built wheel installs in a fresh virtual environment outside the checkout and runs."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_demo_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("tfclaims-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed package, not the checkout, must be the one imported.
    where = subprocess.run(
        [
            str(py),
            "-c",
            "import claims, warehouse; print(claims.__file__); "
            "from claims.resources import migrations_dir, templates_dir; "
            "print(migrations_dir()); print(templates_dir())",
        ],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert all(str(REPO) not in line for line in where), where
    assert (Path(where[1]) / "env.py").is_file()
    assert (Path(where[1]) / "versions").is_dir()
    proc = subprocess.run(
        [str(env_dir / "bin" / "tfclaims"), "demo", "--families", "200", "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["counts"]["families"] == 200
    assert (elsewhere / "tfclaims-demo" / "tfclaims.db").is_file()
