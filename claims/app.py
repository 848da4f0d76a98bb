"""The application's operations as plain functions: the CLI is a thin layer over these.

Each function takes settings and arguments and returns a result object; none
prints. Tests call these directly.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

import warehouse
from claims import evaluation
from claims.render import render
from claims.resources import migrations_dir
from claims.settings import Settings
from warehouse.synth import SynthSummary, synthesise


def open_warehouse(settings: Settings) -> Engine:
    """Open the warehouse; a new SQLite file is brought to the current schema first."""
    engine = warehouse.make_engine(settings.database_url)
    warehouse.ensure_current(engine, migrations_dir())
    return engine


@dataclass(frozen=True)
class UpgradeResult:
    """The schema revision before and after ``db upgrade``."""

    before: str | None
    after: str | None
    head: str | None


def db_upgrade(settings: Settings) -> UpgradeResult:
    """Bring the warehouse schema to the newest revision."""
    engine = warehouse.make_engine(settings.database_url)
    try:
        before = warehouse.current_revision(engine)
        after = warehouse.upgrade(engine, migrations_dir())
        return UpgradeResult(before, after, warehouse.head_revision(migrations_dir()))
    finally:
        engine.dispose()


def load(
    settings: Settings,
    folder: Path,
    *,
    mode: Literal["all_or_nothing", "quarantine"] = "all_or_nothing",
    progress: warehouse.Progress | None = None,
    rejects_path: Path | None = None,
) -> warehouse.LoadResult:
    """Load an extract folder into the configured warehouse."""
    engine = open_warehouse(settings)
    try:
        return warehouse.load_folder(
            engine, folder, mode=mode, progress=progress, rejects_path=rejects_path
        )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class WarehouseStatus:
    """What the warehouse holds now."""

    database: str
    revision: str | None
    counts: dict[str, int]
    loaded: set[str]
    batches: list[warehouse.BatchInfo]


def status(settings: Settings, *, engine: Engine | None = None) -> WarehouseStatus:
    """Row counts per table, which tables were ever loaded, and the load batches."""
    own = engine is None
    engine = engine or open_warehouse(settings)
    try:
        return WarehouseStatus(
            database=engine.url.render_as_string(hide_password=True),
            revision=warehouse.current_revision(engine),
            counts=warehouse.table_counts(engine),
            loaded=warehouse.loaded_tables(engine),
            batches=warehouse.load_batches(engine),
        )
    finally:
        if own:
            engine.dispose()


def synth(
    folder: Path,
    *,
    families: int,
    seed: int,
    fmt: Literal["csv", "parquet"] = "csv",
    progress: warehouse.Progress | None = None,
) -> SynthSummary:
    """Write a synthetic council's extracts into ``folder``."""
    if families < 1:
        raise warehouse.WarehouseError("--families must be at least 1")
    p = progress or warehouse.Progress()
    p.stage("synthesising families", families)
    return synthesise(folder, families=families, seed=seed, fmt=fmt, progress=p.advance)


@dataclass(frozen=True)
class DemoResult:
    """What ``tfclaims demo`` made."""

    workdir: Path
    extracts: Path
    database_url: str
    synth: SynthSummary
    load: warehouse.LoadResult
    status: WarehouseStatus
    window: str
    steps: list[Any]  # the batch steps (claims.batch.StepResult), in order
    outputs: Path
    projection: Any = None  # claims.projection.ProjectionRun at the window's E


DEMO_WINDOW = "2018-02"
DEMO_SEED = "demo-2018-02"


def simulate_auditor(listing: Path, completed: Path, *, failures: int, checked_on: dt.date) -> int:
    """Fill in a verification list as an auditor would (openpyxl on the real file).

    Every row without a result passes, except the first ``failures`` rows of the
    largest stratum, which fail with a note. Returns the number of rows filled.
    """
    import openpyxl

    book = openpyxl.load_workbook(listing)
    sheet = book["verification"]
    header = [str(c.value).strip().lower() if c.value else "" for c in sheet[1]]
    col = {
        name: header.index(name) + 1
        for name in ("result", "note", "auditor", "checked_on", "stratum")
    }
    rows = [r for r in range(2, sheet.max_row + 1) if not sheet.cell(r, col["result"]).value]
    strata: dict[str, list[int]] = {}
    for r in rows:
        strata.setdefault(str(sheet.cell(r, col["stratum"]).value), []).append(r)
    failing = set(max(strata.values(), key=len)[:failures]) if strata else set()
    for r in rows:
        failed = r in failing
        sheet.cell(r, col["result"]).value = "fail" if failed else "pass"
        sheet.cell(r, col["note"]).value = (
            "school attendance evidence does not match the claim" if failed else "evidence seen"
        )
        sheet.cell(r, col["auditor"]).value = "Demo Auditor"
        sheet.cell(r, col["checked_on"]).value = checked_on
    book.save(completed)
    os.chmod(completed, 0o600)
    return len(rows)


def demo(
    workdir: Path,
    *,
    families: int = 3000,
    seed: int = 2018,
    progress: warehouse.Progress | None = None,
) -> DemoResult:
    """Synthesise a council into ``workdir``, load it into a fresh SQLite warehouse."""
    extracts = workdir / "extracts"
    db_file = workdir / "tfclaims.db"
    workdir.mkdir(parents=True, exist_ok=True)
    if extracts.exists():
        shutil.rmtree(extracts)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    summary = synth(extracts, families=families, seed=seed, progress=progress)
    settings = Settings(database_url=f"sqlite:///{db_file.resolve()}")
    result = load(settings, extracts, progress=progress)
    readme = render(
        "demo_readme.md.j2",
        families=families,
        seed=seed,
        version=evaluation.software_version(),
        contract_version=warehouse.CONTRACT_VERSION,
        batch_id=result.batch_id,
        tables=result.tables,
        database_url=settings.database_url,
    )
    (workdir / "README.md").write_text(readme, encoding="utf-8")

    # The monthly batch: prepare, an auditor's completed list (with failures, so
    # the sample escalates), the escalated claims checked too, then finalise.
    from claims import batch, outputs

    outputs_dir = workdir / "claims-output"
    if outputs_dir.exists():
        shutil.rmtree(outputs_dir)
    settings = settings.model_copy(update={"output_dir": outputs_dir})
    engine = open_warehouse(settings)
    steps: list[Any] = []
    try:
        p = progress or warehouse.Progress()
        p.stage(f"claim batch {DEMO_WINDOW}", 4)
        steps.append(batch.prepare(settings, engine, DEMO_WINDOW, seed=DEMO_SEED))
        p.advance(1)
        for round_no, fails in enumerate((2, 0, 0, 0), start=1):
            listing = outputs_dir / DEMO_WINDOW / batch.VERIFICATION_XLSX
            completed = workdir / f"completed-verification-list-{round_no}.xlsx"
            filled = simulate_auditor(
                listing, completed, failures=fails, checked_on=dt.date(2018, 3, 5 + round_no)
            )
            if filled == 0:
                break
            steps.append(
                batch.verify(settings, engine, DEMO_WINDOW, outputs.read_completed_list(completed))
            )
        p.advance(2)
        steps.append(batch.finalise(settings, engine, DEMO_WINDOW))
        p.advance(1)
        # the managers' view: claims against the quota, projected from the window's E
        from claims import projection

        p.stage("quota projection", 1)
        projected = projection.run_projection(settings, engine, as_of=steps[-1].as_of)
        p.advance(1)
    finally:
        engine.dispose()
    return DemoResult(
        workdir=workdir,
        extracts=extracts,
        database_url=settings.database_url,
        synth=summary,
        load=result,
        status=status(settings),
        window=DEMO_WINDOW,
        steps=steps,
        outputs=outputs_dir / DEMO_WINDOW,
        projection=projected,
    )
