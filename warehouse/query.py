"""Reading the warehouse into polars frames with the contract's types.

Nothing outside ``warehouse`` sees a session or an ORM object: callers get
frames with documented columns (``row_no`` plus the contract columns) or
plain pydantic-free dataclasses.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from warehouse.contract import TABLES, Table, table
from warehouse.errors import WarehouseError
from warehouse.models import LoadBatch, TableState
from warehouse.validate import polars_dtype


def _dbapi_rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def loaded_tables(engine: Engine) -> set[str]:
    """Names of the extract tables that have ever been loaded."""
    try:
        with engine.connect() as conn:
            return set(conn.scalars(select(TableState.table_name)).all())
    except (OperationalError, ProgrammingError) as exc:
        raise WarehouseError("the warehouse has no schema: run 'tfclaims db upgrade'") from exc


def read_column(engine: Engine, db_table: str, column: str) -> pl.Series:
    """One text column of a table, as a series."""
    rows = _dbapi_rows(engine, f'SELECT "{column}" FROM "{db_table}"')
    return pl.Series(column, [r[0] for r in rows], dtype=pl.String)


def read_table(engine: Engine, name: str) -> pl.DataFrame:
    """The current snapshot of extract table ``name``: ``row_no`` + typed contract columns,
    each one contiguous chunk (an evaluation reads them many times, and polars gathers and
    joins chunked columns more slowly)."""
    t = table(name)
    cols = ["row_no", *t.column_names]
    quoted = ", ".join(f'"{c}"' for c in cols)
    sql = f'SELECT {quoted} FROM "{t.db_table}" ORDER BY row_no'
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            buf = io.BytesIO()
            with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
                for block in copy:
                    buf.write(block)
        raw = (
            pl.read_csv(
                buf.getvalue() or b"",
                has_header=False,
                new_columns=cols,
                schema={c: pl.String for c in cols},
            )
            if buf.tell()
            else pl.DataFrame(schema={c: pl.String for c in cols})
        )
    else:
        # SQLite hands back ints for integer columns and text for the rest
        # (dates and exact decimals are stored as text).
        schema = {
            c: pl.Int64 if c == "row_no" or t.column(c).type == "int" else pl.String for c in cols
        }
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            rows = cur.execute(sql).fetchall()
            cur.close()
        raw = pl.DataFrame(rows or None, schema=schema, orient="row")
    return _typed(t, raw).rechunk()


def _typed(t: Table, raw: pl.DataFrame) -> pl.DataFrame:
    exprs = [pl.col("row_no").cast(pl.Int64)]
    for c in t.columns:
        if c.type == "date":
            exprs.append(pl.col(c.name).str.to_date("%Y-%m-%d"))
        else:
            exprs.append(pl.col(c.name).cast(polars_dtype(c)))
    return raw.select(exprs)


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every extract table (0 for one never loaded)."""
    with engine.connect() as conn:
        return {
            t.name: int(conn.exec_driver_sql(f'SELECT count(*) FROM "{t.db_table}"').scalar_one())
            for t in TABLES
        }


@dataclass(frozen=True)
class TableLoad:
    """One file of a load batch: its table, hash and row counts."""

    table: str
    file: str
    sha256: str
    rows: int
    loaded: int
    rejected: int


@dataclass(frozen=True)
class BatchInfo:
    """A recorded load batch."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    source_dir: str
    mode: str
    rows_loaded: int
    rows_rejected: int
    files: list[TableLoad]


def load_batches(engine: Engine, ids: list[int] | None = None) -> list[BatchInfo]:
    """Recorded load batches, newest first (all of them, or those in ``ids``)."""
    with Session(engine) as session:
        q = select(LoadBatch).order_by(LoadBatch.id.desc())
        if ids is not None:
            q = q.where(LoadBatch.id.in_(ids))
        return [
            BatchInfo(
                b.id,
                b.started_at,
                b.finished_at,
                b.source_dir,
                b.mode,
                b.rows_loaded,
                b.rows_rejected,
                [
                    TableLoad(
                        f.table_name,
                        f.file_name,
                        f.sha256,
                        f.row_count,
                        f.rows_loaded,
                        f.rows_rejected,
                    )
                    for f in b.files
                ],
            )
            for b in session.scalars(q).all()
        ]


def current_batches(engine: Engine) -> dict[str, int]:
    """For each loaded extract table, the load batch its snapshot came from."""
    with engine.connect() as conn:
        return {r.table_name: r.batch_id for r in conn.execute(select(TableState)).all()}
