"""The application's operations as plain functions: the CLI is a thin layer over these.

Each function takes settings and arguments and returns a result object; none
prints. Tests call these directly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine

import warehouse
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
        version=metadata.version("tfclaims"),
        contract_version=warehouse.CONTRACT_VERSION,
        batch_id=result.batch_id,
        tables=result.tables,
        database_url=settings.database_url,
    )
    (workdir / "README.md").write_text(readme, encoding="utf-8")
    return DemoResult(
        workdir=workdir,
        extracts=extracts,
        database_url=settings.database_url,
        synth=summary,
        load=result,
        status=status(settings),
    )
