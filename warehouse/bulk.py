"""Fast bulk writes: COPY on PostgreSQL, executemany on SQLite.

Everything runs inside the caller's transaction, so a write is atomic with
the rest of the step: a failure or a killed process rolls all of it back.

``replace_rows`` drops the table's indexes (and on PostgreSQL its primary key)
for the insert and rebuilds them after it, in the same transaction: building
an index once from complete data is several times faster than maintaining it
row by row. A duplicate that slipped past validation still fails the rebuild
of a unique index, and so the load.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import polars as pl
from sqlalchemy import Connection, Table

CHUNK_ROWS = 100_000

Advance = Callable[[int], None]


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as ISO text and decimals as exact text, the form both databases take."""
    return frame.with_columns(
        [pl.col(c).dt.to_string("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date]
        + [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Decimal)]
    )


def _cursor(conn: Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def _copy(
    cur: Any, table: Table, text: pl.DataFrame, advance: Advance | None, *, freeze: bool
) -> None:
    """One COPY for the whole frame, fed in chunks."""
    quoted = ", ".join(f'"{c}"' for c in text.columns)
    options = "FORMAT csv, FREEZE" if freeze else "FORMAT csv"
    with cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN ({options})') as copy:
        for offset in range(0, text.height, CHUNK_ROWS):
            chunk = text.slice(offset, CHUNK_ROWS)
            buf = io.BytesIO()
            chunk.write_csv(buf, include_header=False, null_value="")
            copy.write(buf.getvalue())
            if advance:
                advance(chunk.height)


def _executemany(cur: Any, table: Table, text: pl.DataFrame, advance: Advance | None) -> None:
    quoted = ", ".join(f'"{c}"' for c in text.columns)
    marks = ", ".join("?" for _ in text.columns)
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})'
    for offset in range(0, text.height, CHUNK_ROWS):
        chunk = text.slice(offset, CHUNK_ROWS)
        cur.executemany(sql, chunk.iter_rows())
        if advance:
            advance(chunk.height)


def append_rows(
    conn: Connection, table: Table, frame: pl.DataFrame, advance: Advance | None = None
) -> None:
    """Insert ``frame`` (columns named as in the table) into ``table``."""
    cur = _cursor(conn)
    try:
        if conn.dialect.name == "postgresql":
            _copy(cur, table, _as_text(frame), advance, freeze=False)
        else:
            _executemany(cur, table, _as_text(frame), advance)
    finally:
        cur.close()


def replace_rows(
    conn: Connection, table: Table, frame: pl.DataFrame, advance: Advance | None = None
) -> None:
    """Replace every row of ``table`` with ``frame`` (columns named as in the table)."""
    indexes = sorted(table.indexes, key=lambda ix: str(ix.name))
    for ix in indexes:
        ix.drop(conn)
    text = _as_text(frame)
    cur = _cursor(conn)
    try:
        if conn.dialect.name == "postgresql":
            pk = str(table.primary_key.name)
            pk_cols = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute(f'ALTER TABLE "{table.name}" DROP CONSTRAINT "{pk}"')
            cur.execute(f'TRUNCATE "{table.name}"')
            # FREEZE is allowed because the table was truncated in this
            # transaction, and spares the rows a later vacuum.
            _copy(cur, table, text, advance, freeze=True)
            cur.execute(f'ALTER TABLE "{table.name}" ADD CONSTRAINT "{pk}" PRIMARY KEY ({pk_cols})')
        else:
            cur.execute(f'DELETE FROM "{table.name}"')
            _executemany(cur, table, text, advance)
    finally:
        cur.close()
    for ix in indexes:
        ix.create(conn)
