"""The rules engine: the Outcome Plan as data, evaluated against the source tables."""

from rules.dates import (
    DateWindow,
    Period,
    add_months,
    age_on,
    first_day_after,
    first_day_months_after,
    iso_monday,
    monday_after,
    months_before,
    window_before,
)
from rules.sources import TABLES, Sources, SourceTable, check_sources, sources_from_records

__all__ = [
    "TABLES",
    "DateWindow",
    "Period",
    "SourceTable",
    "Sources",
    "add_months",
    "age_on",
    "check_sources",
    "first_day_after",
    "first_day_months_after",
    "iso_monday",
    "monday_after",
    "months_before",
    "sources_from_records",
    "window_before",
]
