"""Batch steps as real processes: two prepares of one window race, and steps killed
with SIGKILL at several points leave a consistent database that a rerun completes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import warehouse
from claims import batch
from claims.settings import Settings
from warehouse.models import ClaimBatch, ClaimedFamily, ClaimLine, SampleMember

WINDOW = "2018-02"


@pytest.fixture
def loaded(engine: Engine, synth_folder: Path) -> Engine:
    warehouse.load_folder(engine, synth_folder)
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFCLAIMS_")}
    env["TFCLAIMS_OUTPUT_DIR"] = str(tmp_path / "out")
    env.update(extra)
    return env


def _spawn(
    args: list[str], engine: Engine, env: dict[str, str], cwd: Path
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "claims.cli", *args, "--database", _url(engine)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def _wait_for(marker: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"process ended (exit {proc.returncode}) before its fault point: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("process did not reach its fault point")
        time.sleep(0.05)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: int(conn.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (ClaimBatch, ClaimLine, SampleMember, ClaimedFamily)
        }


def test_two_prepares_of_one_window_exactly_one_succeeds(loaded: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "first-holds-its-transaction"
    first = _spawn(
        ["claim", "prepare", "--window", WINDOW, "--seed", "one"],
        loaded,
        _env(
            tmp_path,
            TFCLAIMS_FAULT_POINT="prepare:before-commit",
            TFCLAIMS_FAULT_FILE=str(marker),
            TFCLAIMS_FAULT_SLEEP="4",
        ),
        tmp_path,
    )
    _wait_for(marker, first)
    second = _spawn(
        ["claim", "prepare", "--window", WINDOW, "--seed", "two"], loaded, _env(tmp_path), tmp_path
    )
    _out1, err1 = first.communicate(timeout=180)
    out2, err2 = second.communicate(timeout=180)
    assert first.returncode == 0, err1
    assert second.returncode == 2, (out2, err2)
    [line] = err2.strip().splitlines()
    assert line.startswith("error:") and WINDOW in line
    assert "already prepared" in line or "at the same time" in line
    b = warehouse.get_batch(loaded, WINDOW)
    assert b is not None and b.seed == "one"


@pytest.mark.parametrize(
    "point", ["prepare:after-batch-row", "prepare:after-lines", "prepare:before-commit"]
)
def test_prepare_killed_leaves_nothing_and_rerun_succeeds(
    loaded: Engine, tmp_path: Path, point: str
) -> None:
    before = _counts(loaded)
    marker = tmp_path / "marker"
    proc = _spawn(
        ["claim", "prepare", "--window", WINDOW, "--seed", "k"],
        loaded,
        _env(tmp_path, TFCLAIMS_FAULT_POINT=point, TFCLAIMS_FAULT_FILE=str(marker)),
        tmp_path,
    )
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _counts(loaded) == before
    assert warehouse.get_batch(loaded, WINDOW) is None
    assert not (tmp_path / "out" / WINDOW).exists()
    rerun = _spawn(
        ["claim", "prepare", "--window", WINDOW, "--seed", "k"], loaded, _env(tmp_path), tmp_path
    )
    _out, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err
    assert warehouse.get_batch(loaded, WINDOW) is not None
    assert (tmp_path / "out" / WINDOW / batch.MANIFEST).is_file()


def test_finalise_killed_leaves_the_batch_open_and_rerun_succeeds(
    loaded: Engine, tmp_path: Path
) -> None:
    settings = Settings(database_url=_url(loaded), output_dir=tmp_path / "out")
    batch.prepare(settings, loaded, WINDOW, seed="f")
    with warehouse.batch_reader(loaded, WINDOW) as tx:
        sampled = tx.sample().get_column("family_id").to_list()
    batch.verify(
        settings,
        loaded,
        WINDOW,
        [
            {
                "family_id": f,
                "result": "pass",
                "note": "",
                "auditor": "A",
                "checked_on": dt.date(2018, 3, 9),
            }
            for f in sampled
        ],
    )
    before = _counts(loaded)
    marker = tmp_path / "marker"
    proc = _spawn(
        ["claim", "finalise", WINDOW],
        loaded,
        _env(
            tmp_path, TFCLAIMS_FAULT_POINT="finalise:before-commit", TFCLAIMS_FAULT_FILE=str(marker)
        ),
        tmp_path,
    )
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _counts(loaded) == before
    b = warehouse.get_batch(loaded, WINDOW)
    assert b is not None and b.status == "awaiting_verification"
    assert not (tmp_path / "out" / WINDOW / batch.CLAIM_FILE).exists()
    rerun = _spawn(["claim", "finalise", WINDOW], loaded, _env(tmp_path), tmp_path)
    _out, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err
    assert warehouse.get_batch(loaded, WINDOW).status == "finalised"  # type: ignore[union-attr]
    assert (tmp_path / "out" / WINDOW / batch.CLAIM_FILE).is_file()
