"""The input interface of the rules engine: one lazy frame per extract table.

The warehouse produces a :class:`Sources`; the rules engine never reads files or
databases itself. Each frame carries exactly the extract contract's columns
plus ``row_no`` (the source file's 1-based row number, header = row 1), which
is the row key quoted in evidence.

The table shapes below restate, for the rules engine, what the extract contract
says about each table (which column dates an event, which columns bound a
spell, which columns hold codes). ``rules`` may not import ``warehouse``, so
this is the engine's own, read-only view of the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import polars as pl

__all__ = [
    "FAMILY_KEYED",
    "MONEY",
    "PERSON_KEYED",
    "TABLES",
    "Shape",
    "SourceTable",
    "Sources",
    "check_sources",
    "sources_from_records",
]

MONEY = pl.Decimal(scale=2)

Shape = Literal["family", "person", "event", "spell", "term", "snapshot", "claim"]


@dataclass(frozen=True)
class SourceTable:
    """What the rules engine knows about one extract table."""

    name: str
    shape: Shape
    columns: Mapping[str, pl.DataType]
    key: Literal["person_id", "family_id"]
    codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date: str | None = None  # event date, spell start, term end or snapshot date
    end: str | None = None  # spell end (null = open)
    start: str | None = None  # term start

    @property
    def schema(self) -> dict[str, pl.DataType]:
        """The frame schema: contract columns plus ``row_no``."""
        return {**self.columns, "row_no": pl.Int64()}


def _t(
    name: str,
    shape: Shape,
    columns: Mapping[str, pl.DataType],
    key: Literal["person_id", "family_id"] = "person_id",
    **kw: Any,
) -> SourceTable:
    return SourceTable(name, shape, columns, key, **kw)


S, D, I = pl.String(), pl.Date(), pl.Int64()  # noqa: E741

TABLES: dict[str, SourceTable] = {
    t.name: t
    for t in (
        _t(
            "families",
            "family",
            {"family_id": S, "locality": S, "attached_on": D, "lead_worker": S, "closed_on": D},
            key="family_id",
        ),
        _t(
            "people",
            "person",
            {
                "person_id": S,
                "family_id": S,
                "role": S,
                "birth_date": D,
                "given_name": S,
                "family_name": S,
            },
            codes={"role": ("adult", "child")},
        ),
        _t(
            "offences",
            "event",
            {"person_id": S, "occurred_on": D, "kind": S, "reference": S},
            codes={"kind": ("offence", "caution", "asb_incident", "asb_intervention")},
            date="occurred_on",
        ),
        _t(
            "attendance",
            "term",
            {
                "person_id": S,
                "term_start": D,
                "term_end": D,
                "possible_sessions": I,
                "unauthorised_sessions": I,
            },
            start="term_start",
            date="term_end",
        ),
        _t(
            "exclusions",
            "event",
            {"person_id": S, "excluded_on": D, "kind": S},
            codes={"kind": ("fixed_term", "permanent")},
            date="excluded_on",
        ),
        _t(
            "social_care",
            "spell",
            {"person_id": S, "episode": S, "started_on": D, "ended_on": D},
            codes={"episode": ("early_help", "cin", "cp", "lac")},
            date="started_on",
            end="ended_on",
        ),
        _t(
            "benefits",
            "spell",
            {"person_id": S, "benefit": S, "started_on": D, "ended_on": D},
            codes={
                "benefit": ("jsa", "esa", "income_support", "incapacity_benefit", "uc_not_working")
            },
            date="started_on",
            end="ended_on",
        ),
        _t(
            "employment",
            "spell",
            {"person_id": S, "started_on": D, "ended_on": D, "hours_per_week": MONEY},
            date="started_on",
            end="ended_on",
        ),
        _t(
            "neet",
            "spell",
            {"person_id": S, "started_on": D, "ended_on": D},
            date="started_on",
            end="ended_on",
        ),
        _t(
            "domestic_abuse",
            "event",
            {"person_id": S, "occurred_on": D, "kind": S, "role": S},
            codes={
                "kind": ("incident", "crime", "marac_referral"),
                "role": ("victim", "perpetrator", "other"),
            },
            date="occurred_on",
        ),
        _t(
            "health",
            "spell",
            {"person_id": S, "service": S, "started_on": D, "ended_on": D, "end_reason": S},
            codes={
                "service": ("mental_health", "substance_misuse"),
                "end_reason": ("completed", "disengaged", "transferred", "other"),
            },
            date="started_on",
            end="ended_on",
        ),
        _t(
            "debt",
            "snapshot",
            {"family_id": S, "recorded_on": D, "kind": S, "amount": MONEY},
            key="family_id",
            codes={"kind": ("rent_arrears", "council_tax_arrears")},
            date="recorded_on",
        ),
        _t(
            "claims",
            "claim",
            {"family_id": S, "claimed_on": D, "claim_window": S, "basis": S},
            key="family_id",
            codes={"basis": ("ssp", "ce")},
            date="claimed_on",
        ),
    )
}

PERSON_KEYED = frozenset(n for n, t in TABLES.items() if t.key == "person_id" and n != "people")
FAMILY_KEYED = frozenset(n for n, t in TABLES.items() if t.key == "family_id" and n != "families")


@dataclass(frozen=True)
class Sources:
    """The source tables the rules engine evaluates.

    ``tables`` maps an extract table name to its lazy frame. Only tables that
    have ever been loaded are present: an absent table means "never loaded",
    and every rule that needs it is ``unknown``. ``claimed_family_ids`` holds
    the families claimed by batches this system submitted (the ``claims``
    history table, when loaded, is in ``tables`` too).
    """

    tables: dict[str, pl.LazyFrame]
    claimed_family_ids: frozenset[str] = frozenset()

    def loaded(self, name: str) -> bool:
        """Whether table ``name`` has ever been loaded."""
        return name in self.tables


def check_sources(sources: Sources) -> None:
    """Raise ``ValueError`` unless every frame has the contract columns, dtypes and ``row_no``."""
    for name, frame in sources.tables.items():
        if name not in TABLES:
            raise ValueError(f"unknown source table {name!r}")
        have = frame.collect_schema()
        for column, dtype in TABLES[name].schema.items():
            if column not in have:
                raise ValueError(f"source table {name!r} has no column {column!r}")
            if have[column] != dtype and not (
                isinstance(dtype, pl.Decimal) and isinstance(have[column], pl.Decimal)
            ):
                raise ValueError(
                    f"source table {name!r} column {column!r} is {have[column]}, expected {dtype}"
                )


def _coerce(table: str, column: str, dtype: pl.DataType, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(dtype, pl.Date):
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value))
    if isinstance(dtype, pl.Decimal):
        if isinstance(value, float):
            raise ValueError(f"{table}.{column}: money must not be a float ({value!r})")
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if isinstance(dtype, pl.Int64):
        return int(value)
    return str(value)


def sources_from_records(
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    claimed_family_ids: Iterable[str] = (),
) -> Sources:
    """Build :class:`Sources` from plain Python rows (for tests and examples).

    ``records`` maps a table name to its rows; every table named is "loaded",
    even with no rows. Missing columns are null. Dates may be ISO strings,
    money may be a string, int or ``Decimal`` (never a float). A row may give
    its own ``row_no``; otherwise rows are numbered 2, 3, ... as in a CSV file
    whose header is row 1.
    """
    tables: dict[str, pl.LazyFrame] = {}
    for name, rows in records.items():
        if name not in TABLES:
            raise ValueError(f"unknown source table {name!r}")
        schema = TABLES[name].schema
        data: dict[str, list[Any]] = {c: [] for c in schema}
        for i, row in enumerate(rows):
            unknown = set(row) - set(schema)
            if unknown:
                raise ValueError(f"{name} row {i}: unknown column(s) {sorted(unknown)}")
            for column, dtype in schema.items():
                if column == "row_no":
                    data[column].append(int(row.get("row_no", i + 2)))
                else:
                    data[column].append(_coerce(name, column, dtype, row.get(column)))
        tables[name] = pl.DataFrame(data, schema=schema).lazy()
    return Sources(tables=tables, claimed_family_ids=frozenset(claimed_family_ids))
