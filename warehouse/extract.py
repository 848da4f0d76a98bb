"""Reading extract files into raw text frames, refusing anything not well-formed.

A file that is not a well-formed extract (binary, wrong encoding, empty,
missing or renamed columns, truncated Parquet) raises ``ExtractError`` with one
line that names the file and the problem. Row-level breaches are left to
``warehouse.validate``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from warehouse.contract import TABLES, Table
from warehouse.errors import ExtractError

ROW_COLUMN = "_row"
"""Row number as a spreadsheet shows it: the header is row 1, data starts at 2."""

FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class ExtractFile:
    """One extract file found in a load folder."""

    table: Table
    path: Path


@dataclass(frozen=True)
class RawExtract:
    """An extract file read as text: every contract column as a nullable string."""

    file: ExtractFile
    frame: pl.DataFrame  # ROW_COLUMN + contract columns, all pl.String
    sha256: str
    extra_columns: tuple[str, ...]


def discover(folder: Path) -> list[ExtractFile]:
    """Find the contract's files in ``folder``, in load order.

    Raises ``ExtractError`` when the folder is missing, holds no extract file,
    or holds both a CSV and a Parquet file for one table.
    """
    if not folder.exists():
        raise ExtractError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ExtractError(f"{folder}: not a folder (give the folder that holds the extract files)")
    found: list[ExtractFile] = []
    for t in TABLES:
        candidates = [folder / f"{t.name}.{ext}" for ext in ("csv", "parquet")]
        present = [p for p in candidates if p.is_file()]
        if len(present) > 1:
            raise ExtractError(
                f"{folder}: both {t.name}.csv and {t.name}.parquet are present; keep one"
            )
        if present:
            found.append(ExtractFile(t, present[0]))
    if not found:
        names = ", ".join(f"{t.name}.csv" for t in TABLES[:3])
        raise ExtractError(f"{folder}: no extract files found (expected files such as {names})")
    return found


def read_extract(file: ExtractFile) -> RawExtract:
    """Read one extract file as text, checking that it is well-formed."""
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"{file.path.name}: cannot be read ({exc.strerror})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if file.path.suffix == ".csv":
        frame = _read_csv(file.path.name, data)
    else:
        frame = _read_parquet(file.path.name, data)
    frame, extra = _conform(file.path.name, file.table, frame)
    return RawExtract(file, frame, digest, extra)


# Openings that make polars decompress a "CSV": zlib, gzip and zstd magic bytes.
_COMPRESSED = (b"x\x01", b"x^", b"x\x9c", b"x\xda", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")


def _read_csv(name: str, data: bytes) -> pl.DataFrame:
    if not data.strip():
        raise ExtractError(f"{name}: the file is empty (a header row is required)")
    if b"\x00" in data:
        raise ExtractError(f"{name}: not a text CSV file (it contains binary data)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith(_COMPRESSED):
        raise ExtractError(f"{name}: looks compressed; extracts must be plain UTF-8 CSV")
    try:
        data.decode("utf-8")  # checked, not kept: polars reads the bytes
    except UnicodeDecodeError as exc:
        raise ExtractError(
            f"{name}: not valid UTF-8 at byte {exc.start} (save the extract as UTF-8)"
        ) from exc
    end = data.find(b"\n")
    _check_header(name, data[: end if end >= 0 else None].decode("utf-8"))
    try:
        return pl.read_csv(
            io.BytesIO(data),
            infer_schema=False,
            has_header=True,
            quote_char='"',
            raise_if_empty=True,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.PolarsError, ValueError, OSError, pl.exceptions.PanicException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExtractError(f"{name}: not a well-formed CSV file ({reason[:160]})") from exc


def _check_header(name: str, first_line: str) -> None:
    """Refuse a header that names a column twice (polars would rename the second)."""
    try:
        header = next(csv.reader([first_line]), [])
    except csv.Error:
        return  # polars reports the malformed header
    _refuse_repeats(name, header)  # names match exactly: "kind " is not "kind"


def _refuse_repeats(name: str, names: list[str]) -> None:
    repeated = sorted({h for h in names if names.count(h) > 1})
    if repeated:
        raise ExtractError(f"{name}: column {', '.join(repeated)} appears more than once")


def _read_parquet(name: str, data: bytes) -> pl.DataFrame:
    if not data:
        raise ExtractError(f"{name}: the file is empty")
    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        raise ExtractError(f"{name}: not a readable Parquet file (truncated or corrupt)")
    try:
        with _quiet_stderr():
            frame = pl.read_parquet(io.BytesIO(data))
    except (Exception, pl.exceptions.PanicException) as exc:
        # polars raises several unrelated types, and may panic, on corrupt files
        raise ExtractError(f"{name}: not a readable Parquet file (truncated or corrupt)") from exc
    try:
        return frame.select(pl.all().cast(pl.String))
    except pl.exceptions.PolarsError as exc:
        raise ExtractError(f"{name}: has a column type that cannot be read as text") from exc


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while polars reads an untrusted file.

    A panic inside polars' Rust code prints its own text straight to stderr
    before Python sees the exception; the user gets our one line instead.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _conform(name: str, table: Table, frame: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Check the header against the contract and normalise blanks to null."""
    columns = list(frame.columns)
    missing = [c for c in table.column_names if c not in columns]
    if missing:
        extra_now = [c for c in columns if c not in table.column_names]
        hint = f"; found unexpected {', '.join(extra_now[:5])}" if extra_now else ""
        raise ExtractError(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (column names must match the contract exactly{hint})"
        )
    _refuse_repeats(name, columns)  # a Parquet file can repeat a column name
    extra = tuple(c for c in columns if c not in table.column_names)
    stripped = [pl.col(c).str.strip_chars() for c in table.column_names]
    frame = frame.select(stripped).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
        for c in table.column_names
    )
    frame = frame.with_row_index(ROW_COLUMN, offset=FIRST_DATA_ROW).with_columns(
        pl.col(ROW_COLUMN).cast(pl.Int64)
    )
    return frame, extra
