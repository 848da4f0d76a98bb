"""A load killed part-way (SIGKILL) leaves the previous contents intact; the next load succeeds.

The load runs as a real ``tfclaims load`` process. A fault point
(``warehouse.faults``) makes it write a marker file and wait at a known step
inside the load's transaction; the test then kills it with SIGKILL, so nothing
in the process gets a chance to clean up.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, inspect

import warehouse
from warehouse.query import current_batches

BASE = Path(__file__).parent / "fixtures" / "base"
ALL_TABLES = [t.name for t in warehouse.TABLES]


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, pl.DataFrame]
    batches: list[int]
    state: dict[str, int]
    schema: dict[str, object]  # primary key and indexes of each extract table


def schema_of(engine: Engine) -> dict[str, object]:
    insp = inspect(engine)
    out: dict[str, object] = {}
    for t in warehouse.TABLES:
        indexes = sorted(
            (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
            for ix in insp.get_indexes(t.db_table)
        )
        out[t.db_table] = (insp.get_pk_constraint(t.db_table)["constrained_columns"], indexes)
    return out


def snapshot(engine: Engine) -> Snapshot:
    return Snapshot(
        {name: warehouse.read_table(engine, name) for name in ALL_TABLES},
        [b.id for b in warehouse.load_batches(engine)],
        current_batches(engine),
        schema_of(engine),
    )


def assert_same(got: Snapshot, want: Snapshot) -> None:
    assert got.batches == want.batches
    assert got.state == want.state
    assert got.schema == want.schema
    for name in ALL_TABLES:
        assert_frame_equal(got.tables[name], want.tables[name])


def next_month(folder: Path) -> Path:
    """A full, valid extract that differs from the base in families, people and offences."""
    shutil.copytree(BASE, folder)
    with (folder / "families.csv").open("a", encoding="utf-8") as fh:
        fh.write("0009,South,2018-02-01,,\n")
    with (folder / "people.csv").open("a", encoding="utf-8") as fh:
        fh.write("00009,0009,adult,1990-01-01,Nia,Evans\n")
    (folder / "offences.csv").write_text(
        "person_id,occurred_on,kind,reference\n00009,2018-03-01,caution,NEW\n", encoding="utf-8"
    )
    return folder


def wait_for(marker: Path, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"the load ended (exit {proc.returncode}) before its fault point: {err!r}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the load did not reach its fault point within {timeout:.0f} s")
        time.sleep(0.02)


@pytest.mark.parametrize("point", ["load:after:people", "load:before-commit"])
def test_killed_load_leaves_previous_contents(engine: Engine, tmp_path: Path, point: str) -> None:
    first = warehouse.load_folder(engine, shutil.copytree(BASE, tmp_path / "base"))
    before = snapshot(engine)
    assert before.batches == [first.batch_id]
    folder = next_month(tmp_path / "next")
    marker = tmp_path / "reached-fault-point"

    env = {k: v for k, v in os.environ.items() if not k.startswith("TFCLAIMS_")}
    env |= {"TFCLAIMS_FAULT_POINT": point, "TFCLAIMS_FAULT_FILE": str(marker)}
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "claims.cli", "load", str(folder), "--database", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for(marker, proc)
        assert marker.read_text() == point
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    assert_same(snapshot(engine), before)
    assert warehouse.table_counts(engine) == {n: f.height for n, f in before.tables.items()}
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"

    second = warehouse.load_folder(engine, folder)

    assert second.batch_id not in before.batches
    after = snapshot(engine)
    assert after.schema == before.schema
    assert after.batches == [second.batch_id, first.batch_id]
    assert after.state == dict.fromkeys(ALL_TABLES, second.batch_id)
    assert after.tables["families"].get_column("family_id").to_list() == [
        "0007",
        "0008",
        "F100",
        "0009",
    ]
    assert after.tables["people"].get_column("person_id").to_list()[-1] == "00009"
    assert after.tables["offences"].drop("row_no").rows() == [
        ("00009", dt.date(2018, 3, 1), "caution", "NEW")
    ]
    for name in set(ALL_TABLES) - {"families", "people", "offences"}:
        assert_frame_equal(after.tables[name], before.tables[name])
