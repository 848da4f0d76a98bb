"""The warehouse: extract contract, schema, loading and typed reads as polars frames."""

from warehouse.batches import (
    LINE_COLUMNS,
    RESULT_COLUMNS,
    SAMPLE_COLUMNS,
    BatchError,
    BatchRecord,
    BatchTx,
    EscalationRecord,
    batch_reader,
    batch_transaction,
    create_batch,
    get_batch,
    list_batches,
    submitted_lines,
    withdraw,
)
from warehouse.contract import CONTRACT_VERSION, TABLES, WINDOW_PATTERN, Column, Table, table
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
from warehouse.registry import submitted_families
from warehouse.runs import (
    RUN_FAMILY_COLUMNS,
    RunInfo,
    evaluation_run,
    evaluation_runs,
    record_evaluation,
)
from warehouse.safefiles import atomic_writer, neutralise, write_csv
from warehouse.validate import RULES, DateBounds

__all__ = [
    "CONTRACT_VERSION",
    "LINE_COLUMNS",
    "RESULT_COLUMNS",
    "RULES",
    "RUN_FAMILY_COLUMNS",
    "SAMPLE_COLUMNS",
    "TABLES",
    "WINDOW_PATTERN",
    "BatchError",
    "BatchInfo",
    "BatchRecord",
    "BatchTx",
    "Column",
    "DateBounds",
    "EscalationRecord",
    "ExtractError",
    "LoadRejected",
    "LoadResult",
    "Progress",
    "RunInfo",
    "Table",
    "TableLoad",
    "WarehouseError",
    "atomic_writer",
    "batch_reader",
    "batch_transaction",
    "create_batch",
    "current_batches",
    "current_revision",
    "ensure_current",
    "evaluation_run",
    "evaluation_runs",
    "get_batch",
    "head_revision",
    "list_batches",
    "load_batches",
    "load_folder",
    "loaded_tables",
    "make_engine",
    "neutralise",
    "read_table",
    "record_evaluation",
    "submitted_families",
    "submitted_lines",
    "table",
    "table_counts",
    "upgrade",
    "withdraw",
    "write_csv",
]
