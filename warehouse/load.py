"""Loading a monthly extract folder into the warehouse.

The whole folder loads in one transaction: every table in it is replaced,
the load batch is recorded, and then it commits. A failure or a killed process
before the commit leaves the warehouse exactly as it was.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import polars as pl
from sqlalchemy import Engine, Table, delete, insert

from warehouse.bulk import replace_rows
from warehouse.contract import CONTRACT_VERSION, table
from warehouse.db import write_transaction
from warehouse.errors import WarehouseError
from warehouse.extract import RawExtract, discover, read_extract
from warehouse.faults import fault_point
from warehouse.models import EXTRACT_MODELS, LoadBatch, LoadFile, TableState
from warehouse.query import TableLoad, loaded_tables, read_column
from warehouse.registry import refresh_history_claims, submitted_families
from warehouse.safefiles import write_csv
from warehouse.validate import REJECT_COLUMNS, DateBounds, Validated, validate

Mode = Literal["all_or_nothing", "quarantine"]

REJECTS_FILE = "rejects.csv"

EXTRACT_TABLES: dict[str, Table] = {
    name: cast(Table, model.__table__) for name, model in EXTRACT_MODELS.items()
}


class Progress:
    """Receives progress of a load; the CLI draws it as a bar. Does nothing by default."""

    def stage(self, description: str, total: int) -> None:
        """A new stage of ``total`` units begins."""

    def advance(self, n: int) -> None:
        """``n`` more units of the current stage are done."""


@dataclass(frozen=True)
class LoadResult:
    """What a load did: its batch, each file, the rejects and the warnings."""

    batch_id: int
    mode: Mode
    tables: list[TableLoad]
    rejects_path: Path | None
    reject_counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        """Rows written to the warehouse."""
        return sum(t.loaded for t in self.tables)

    @property
    def rows_rejected(self) -> int:
        """Rows sent to the rejects report."""
        return sum(t.rejected for t in self.tables)


class LoadRejected(WarehouseError):
    """An all-or-nothing load found bad rows: nothing was loaded."""

    def __init__(self, rows: int, counts: dict[str, int], rejects_path: Path) -> None:
        self.rows = rows
        self.counts = counts
        self.rejects_path = rejects_path
        summary = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items()))
        super().__init__(
            f"{rows} row{'s' if rows != 1 else ''} broke the extract contract ({summary}); "
            f"nothing was loaded; see {rejects_path}"
        )


def load_folder(
    engine: Engine,
    folder: Path,
    *,
    mode: Mode = "all_or_nothing",
    bounds: DateBounds | None = None,
    progress: Progress | None = None,
    rejects_path: Path | None = None,
) -> LoadResult:
    """Validate and load every extract file in ``folder``.

    Raises ``ExtractError`` for a file that is not a well-formed extract and
    ``LoadRejected`` when ``mode`` is all-or-nothing and any row breaks the
    contract. With ``quarantine`` the valid rows load and the rest go to the
    rejects report.
    """
    progress = progress or Progress()
    started = dt.datetime.now(dt.UTC)
    files = discover(folder)
    progress.stage("reading", len(files))
    raws: dict[str, RawExtract] = {}
    for f in files:
        raws[f.table.name] = read_extract(f)
        progress.advance(1)

    warnings = [
        f"{r.file.path.name}: unknown column{'s' if len(r.extra_columns) > 1 else ''} "
        f"{', '.join(r.extra_columns)} ignored"
        for r in raws.values()
        if r.extra_columns
    ]

    already = loaded_tables(engine)
    progress.stage("validating", sum(r.frame.height for r in raws.values()))
    results: dict[str, Validated] = {}
    families = _ids(engine, raws, results, mode, already, "families", "family_id")
    for name in ("families", "people"):
        if name in raws:
            results[name] = validate(raws[name], families=families, people=None, bounds=bounds)
            progress.advance(results[name].total_rows)
            if name == "families":
                families = _ids(engine, raws, results, mode, already, "families", "family_id")
    people = _ids(engine, raws, results, mode, already, "people", "person_id")
    submitted = submitted_families(engine) if "claims" in raws else None
    for name, raw in raws.items():
        if name not in results:
            results[name] = validate(
                raw, families=families, people=people, bounds=bounds, submitted=submitted
            )
            progress.advance(results[name].total_rows)

    rejects = pl.concat([r.rejects for r in results.values()])
    counts = dict(Counter(rejects.get_column("rule").to_list()))
    target = rejects_path or folder / REJECTS_FILE
    if rejects.height:
        target = _write_rejects(rejects, target)
        if mode == "all_or_nothing":
            bad_rows = sum(r.rejects.get_column("row").n_unique() for r in results.values())
            raise LoadRejected(bad_rows, counts, target)

    tables = [
        TableLoad(
            table=name,
            file=raws[name].file.path.name,
            sha256=raws[name].sha256,
            rows=res.total_rows,
            loaded=res.valid.height,
            rejected=res.total_rows - res.valid.height,
        )
        for name, res in results.items()
    ]
    progress.stage("writing", sum(t.loaded for t in tables))
    with write_transaction(engine) as conn:
        for t in tables:
            replace_rows(conn, EXTRACT_TABLES[t.table], results[t.table].valid, progress.advance)
            if t.table == "claims":
                refresh_history_claims(conn)
            fault_point(f"load:after:{t.table}")
        finished = dt.datetime.now(dt.UTC)
        batch_id = conn.execute(
            insert(LoadBatch)
            .values(
                started_at=started,
                finished_at=finished,
                source_dir=str(folder.resolve()),
                mode=mode,
                contract_version=CONTRACT_VERSION,
                rows_loaded=sum(t.loaded for t in tables),
                rows_rejected=sum(t.rejected for t in tables),
            )
            .returning(LoadBatch.id)
        ).scalar_one()
        conn.execute(
            insert(LoadFile),
            [
                {
                    "batch_id": batch_id,
                    "table_name": t.table,
                    "file_name": t.file,
                    "sha256": t.sha256,
                    "row_count": t.rows,
                    "rows_loaded": t.loaded,
                    "rows_rejected": t.rejected,
                }
                for t in tables
            ],
        )
        conn.execute(delete(TableState).where(TableState.table_name.in_([t.table for t in tables])))
        conn.execute(
            insert(TableState),
            [
                {
                    "table_name": t.table,
                    "batch_id": batch_id,
                    "loaded_at": finished,
                    "row_count": t.loaded,
                }
                for t in tables
            ],
        )
        fault_point("load:before-commit")
    return LoadResult(
        batch_id=batch_id,
        mode=mode,
        tables=tables,
        rejects_path=target if rejects.height else None,
        reject_counts=counts,
        warnings=warnings,
    )


def _ids(
    engine: Engine,
    raws: dict[str, RawExtract],
    results: dict[str, Validated],
    mode: Mode,
    already: set[str],
    name: str,
    column: str,
) -> pl.Series:
    """The identifiers that references to ``name`` may point at after this load.

    In quarantine mode only rows that passed their own checks count, because
    only they will be loaded; all-or-nothing counts every identifier in the
    file, so one bad row is reported once and not again by every row that
    refers to it.
    """
    if name in results and mode == "quarantine":
        return results[name].valid.get_column(column)
    if name in raws:
        return raws[name].frame.get_column(column).drop_nulls()
    if name in already:
        return read_column(engine, table(name).db_table, column)
    return pl.Series(column, [], dtype=pl.String)


def _write_rejects(rejects: pl.DataFrame, target: Path) -> Path:
    """Write the rejects report (owner-only: rejected values may be personal data)."""
    try:
        write_csv(target, REJECT_COLUMNS, rejects.iter_rows(), private=True)
    except OSError:
        target = Path.cwd() / f"{target.parent.name}-{REJECTS_FILE}"
        write_csv(target, REJECT_COLUMNS, rejects.iter_rows(), private=True)
    return target
