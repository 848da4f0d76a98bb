"""The warehouse: extract contract, schema, loading and typed reads as polars frames."""

from warehouse.contract import CONTRACT_VERSION, TABLES, Column, Table, table
from warehouse.db import current_revision, ensure_current, head_revision, make_engine, upgrade
from warehouse.errors import ExtractError, WarehouseError
from warehouse.load import LoadRejected, LoadResult, Progress, load_folder
from warehouse.query import (
    BatchInfo,
    TableLoad,
    current_batches,
    load_batches,
    loaded_tables,
    read_table,
    table_counts,
)
from warehouse.runs import RUN_FAMILY_COLUMNS, RunInfo, evaluation_runs, record_evaluation
from warehouse.safefiles import atomic_writer, neutralise, write_csv
from warehouse.validate import RULES, DateBounds

__all__ = [
    "CONTRACT_VERSION",
    "RULES",
    "RUN_FAMILY_COLUMNS",
    "TABLES",
    "BatchInfo",
    "Column",
    "DateBounds",
    "ExtractError",
    "LoadRejected",
    "LoadResult",
    "Progress",
    "RunInfo",
    "Table",
    "TableLoad",
    "WarehouseError",
    "atomic_writer",
    "current_batches",
    "current_revision",
    "ensure_current",
    "evaluation_runs",
    "head_revision",
    "load_batches",
    "load_folder",
    "loaded_tables",
    "make_engine",
    "neutralise",
    "read_table",
    "record_evaluation",
    "table",
    "table_counts",
    "upgrade",
    "write_csv",
]
