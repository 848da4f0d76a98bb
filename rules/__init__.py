"""The rules engine: the Outcome Plan as data, evaluated against the source tables.

``rules`` never opens a database connection and never imports ``warehouse`` or
``claims``; it reads plan files (``load_plan``) and evaluates the lazy frames it
is given (:class:`Sources`).
"""

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
from rules.evaluator import Evaluation, evaluate
from rules.loader import (
    PlanError,
    PlanProblem,
    canonical_bytes,
    content_hash,
    default_plan_path,
    load_plan,
    parse_plan,
)
from rules.model import Plan, check_plan, describe_codes
from rules.reference import evaluate_family_reference, evaluate_reference, load_world
from rules.results import (
    Basis,
    FamilyResult,
    Figure,
    HeadlineResult,
    IndicatorResult,
    Result,
    RowRef,
)
from rules.sources import TABLES, Sources, SourceTable, check_sources, sources_from_records
from rules.states import STATES, State, combine, negate

__all__ = [
    "STATES",
    "TABLES",
    "Basis",
    "DateWindow",
    "Evaluation",
    "FamilyResult",
    "Figure",
    "HeadlineResult",
    "IndicatorResult",
    "Period",
    "Plan",
    "PlanError",
    "PlanProblem",
    "Result",
    "RowRef",
    "SourceTable",
    "Sources",
    "State",
    "add_months",
    "age_on",
    "canonical_bytes",
    "check_plan",
    "check_sources",
    "combine",
    "content_hash",
    "default_plan_path",
    "describe_codes",
    "evaluate",
    "evaluate_family_reference",
    "evaluate_reference",
    "first_day_after",
    "first_day_months_after",
    "iso_monday",
    "load_plan",
    "load_world",
    "monday_after",
    "months_before",
    "negate",
    "parse_plan",
    "sources_from_records",
    "window_before",
]
