"""Hypothesis strategies: small councils of families with records dated near the plan's edges.

Dates are drawn relative to A and E, with a bias towards the boundaries the plan
cares about: A and E themselves, N months before or after them (month-end
clamping included) and 91 days, each give or take a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import strategies as st

from rules import Sources, add_months, sources_from_records
from rules.sources import TABLES

D = timedelta

MONTH_ENDS = [date(2017, m, 1) - D(days=1) for m in range(2, 13)] + [
    date(2016, 8, 31),
    date(2016, 2, 29),
    date(2017, 12, 31),
]


@dataclass
class Council:
    """Records of a few families, the evaluation date and what was never loaded."""

    as_of: date
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_loaded: frozenset[str] = frozenset()
    claimed_family_ids: frozenset[str] = frozenset()

    def sources(self) -> Sources:
        """The Sources these records describe."""
        tables = {t: rows for t, rows in self.records.items() if t not in self.not_loaded}
        return sources_from_records(tables, self.claimed_family_ids)


@st.composite
def runs(
    draw: st.DrawFn,
    key: str,
    columns: dict[str, tuple[pl.DataType, st.SearchStrategy[Any]]],
    *,
    max_run: int,
    max_key: int,
) -> pl.DataFrame:
    """Rows in runs of a sorted ``key`` (a few subjects, each with 1 to ``max_run`` rows), and
    one column per ``columns`` entry (dtype, values), some cells null."""
    sizes = draw(st.lists(st.integers(1, max_run), min_size=0, max_size=8))
    subjects = sorted(
        draw(
            st.lists(st.integers(0, max_key), min_size=len(sizes), max_size=len(sizes), unique=True)
        )
    )
    keys = [k for k, n in zip(subjects, sizes, strict=True) for _ in range(n)]
    data = {key: pl.Series(key, keys, dtype=pl.UInt32)}
    for name, (dtype, values) in columns.items():
        cells = draw(st.lists(st.none() | values, min_size=len(keys), max_size=len(keys)))
        data[name] = pl.Series(name, cells, dtype=dtype)
    return pl.DataFrame(data)


@st.composite
def near(draw: st.DrawFn, a: date, e: date) -> date:
    """A date near one of the plan's boundaries for A and E (or anywhere near them)."""
    anchor = draw(st.sampled_from([a, e]))
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return anchor + D(days=draw(st.integers(-420, 420)))
    delta = D(days=draw(st.integers(-1, 1)))
    if kind == 1:
        return anchor + delta
    if kind == 2:
        months = draw(st.sampled_from([-12, -6, -3, 3, 6]))
        return add_months(anchor, months) + delta
    if kind == 3:
        return anchor + D(days=draw(st.sampled_from([-91, 91, 7, -7, 111, 209]))) + delta
    return anchor + D(days=draw(st.integers(-60, 60)))


@st.composite
def councils(draw: st.DrawFn, max_families: int = 3) -> Council:
    """A few families with people and records in every table."""
    e = draw(
        st.one_of(
            st.dates(date(2017, 1, 1), date(2019, 12, 31)),
            st.sampled_from([*MONTH_ENDS, date(2018, 2, 28), date(2018, 3, 1)]),
        )
    )
    records: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    n_families = draw(st.integers(1, max_families))
    for f in range(n_families):
        fid = f"F{f}"
        attached = draw(
            st.one_of(
                st.none(),
                st.integers(-900, 30).map(lambda k: e + D(days=k)),
                st.sampled_from(MONTH_ENDS),
            )
        )
        a = attached or e
        records["families"].append({"family_id": fid, "locality": "North", "attached_on": attached})
        people = []
        # the extract lists a family's people in any order, not always by id
        numbers = draw(st.permutations(range(draw(st.integers(1, 3)))))
        for p in numbers:
            pid = f"{fid}P{p}"
            role = draw(st.sampled_from(["adult", "child"]))
            birth = draw(
                st.one_of(
                    st.none(),
                    st.sampled_from([16, 17, 24, 25, 40, 9]).map(
                        lambda y, a=a: add_months(a, -12 * y) + D(days=draw(st.integers(-1, 1)))
                    ),
                )
            )
            people.append(pid)
            records["people"].append(
                {"person_id": pid, "family_id": fid, "role": role, "birth_date": birth}
            )
        _events(draw, records, people, a, e)
        _spells(draw, records, people, a, e)
        _terms(draw, records, people, a, e)
        _debt(draw, records, fid, a, e)
        if draw(st.integers(0, 9)) == 0:
            records["claims"].append(
                {"family_id": fid, "claimed_on": e, "claim_window": "2018-01", "basis": "ssp"}
            )
    not_loaded = draw(
        st.one_of(
            st.just(frozenset()),
            st.frozensets(st.sampled_from(sorted(set(TABLES) - {"families"})), max_size=2),
        )
    )
    claimed = draw(st.frozensets(st.sampled_from([f"F{f}" for f in range(n_families)]), max_size=1))
    return Council(e, records, not_loaded, claimed)


def _events(
    draw: st.DrawFn, records: dict[str, list[Any]], people: list[str], a: date, e: date
) -> None:
    kinds = {
        "offences": (
            "kind",
            ["offence", "caution", "asb_incident", "asb_intervention"],
            "occurred_on",
        ),
        "exclusions": ("kind", ["fixed_term", "permanent"], "excluded_on"),
        "domestic_abuse": ("kind", ["incident", "crime", "marac_referral"], "occurred_on"),
    }
    for table, (column, codes, dated) in kinds.items():
        for _ in range(draw(st.integers(0, 4))):
            row = {
                "person_id": draw(st.sampled_from(people)),
                column: draw(st.sampled_from(codes)),
                dated: draw(near(a, e)),
            }
            records[table].extend([row] * draw(st.sampled_from([1, 1, 1, 2, 3])))


def _spells(
    draw: st.DrawFn, records: dict[str, list[Any]], people: list[str], a: date, e: date
) -> None:
    specs: dict[str, tuple[str | None, list[str]]] = {
        "social_care": ("episode", ["early_help", "cin", "cp", "lac"]),
        "benefits": (
            "benefit",
            ["jsa", "esa", "income_support", "incapacity_benefit", "uc_not_working"],
        ),
        "employment": (None, []),
        "neet": (None, []),
        "health": ("service", ["mental_health", "substance_misuse"]),
    }
    for table, (column, codes) in specs.items():
        for _ in range(draw(st.integers(0, 3))):
            start = draw(near(a, e))
            end = draw(
                st.one_of(
                    st.none(),
                    st.integers(0, 400).map(lambda k, s=start: s + D(days=k)),
                    # a date near a boundary, never before the start (no filtering: drawing
                    # until one fits made Hypothesis's health check fail now and then)
                    near(a, e).map(lambda d, s=start: max(d, s)),
                )
            )
            row: dict[str, Any] = {
                "person_id": draw(st.sampled_from(people)),
                "started_on": start,
                "ended_on": end,
            }
            if column:
                row[column] = draw(st.sampled_from(codes))
            if table == "health" and end is not None:
                row["end_reason"] = draw(
                    st.sampled_from(["completed", "completed", "disengaged", "other"])
                )
            records[table].append(row)


def _terms(
    draw: st.DrawFn, records: dict[str, list[Any]], people: list[str], a: date, e: date
) -> None:
    seen: set[tuple[str, date]] = set()
    for _ in range(draw(st.integers(0, 6))):
        person = draw(st.sampled_from(people))
        start = draw(near(a, e))
        if (person, start) in seen:
            continue
        seen.add((person, start))
        possible = draw(st.sampled_from([0, 10, 100, 100, 120]))
        records["attendance"].append(
            {
                "person_id": person,
                "term_start": start,
                "term_end": start + D(days=draw(st.integers(0, 120))),
                "possible_sessions": possible,
                "unauthorised_sessions": draw(st.integers(0, possible)),
            }
        )


def _debt(draw: st.DrawFn, records: dict[str, list[Any]], fid: str, a: date, e: date) -> None:
    seen: set[tuple[str, date]] = set()
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["rent_arrears", "council_tax_arrears"]))
        when = draw(near(a, e))
        if (kind, when) in seen:
            continue
        seen.add((kind, when))
        amount = draw(
            st.one_of(
                st.sampled_from(
                    ["0.00", "300.00", "500.00", "550.00", "999.99", "1000.00", "1100.00"]
                ),
                st.integers(0, 300000).map(lambda p: str(Decimal(p) / 100)),
            )
        )
        records["debt"].append(
            {"family_id": fid, "recorded_on": when, "kind": kind, "amount": amount}
        )
