"""Fast bulk replacement of a table's rows: COPY on PostgreSQL, executemany on SQLite.

Both run inside the caller's transaction, so a replacement is atomic with the
rest of the load.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import polars as pl
from sqlalchemy import Connection

CHUNK_ROWS = 100_000

Advance = Callable[[int], None]


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as ISO text and decimals as exact text, the form both databases take."""
    return frame.with_columns(
        [pl.col(c).dt.to_string("%Y-%m-%d") for c, t in frame.schema.items() if t == pl.Date]
        + [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Decimal)]
    )


def replace_rows(
    conn: Connection, db_table: str, frame: pl.DataFrame, advance: Advance | None = None
) -> None:
    """Delete every row of ``db_table`` and insert ``frame`` (columns named as in the table)."""
    dbapi = conn.connection.driver_connection
    columns = frame.columns
    quoted = ", ".join(f'"{c}"' for c in columns)
    cur = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(f'DELETE FROM "{db_table}"')
        text = _as_text(frame)
        if conn.dialect.name == "postgresql":
            for offset in range(0, text.height, CHUNK_ROWS):
                chunk = text.slice(offset, CHUNK_ROWS)
                buf = io.BytesIO()
                chunk.write_csv(buf, include_header=False, null_value="")
                with cur.copy(f'COPY "{db_table}" ({quoted}) FROM STDIN (FORMAT csv)') as copy:
                    copy.write(buf.getvalue())
                if advance:
                    advance(chunk.height)
        else:
            marks = ", ".join("?" for _ in columns)
            sql = f'INSERT INTO "{db_table}" ({quoted}) VALUES ({marks})'
            for offset in range(0, text.height, CHUNK_ROWS):
                chunk = text.slice(offset, CHUNK_ROWS)
                cur.executemany(sql, chunk.iter_rows())
                if advance:
                    advance(chunk.height)
    finally:
        cur.close()
