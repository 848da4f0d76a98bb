"""YAML rule cases: a family, its records, E and the expected states.

Every case runs through both evaluators: the reference (one family at a time)
and the polars evaluator (all cases with the same E and loaded tables in one
call, each case's ids prefixed to keep families apart). Evidence rows are
checked against the reference only.

Each file in ``cases/`` holds ``defaults`` (merged into every case) and
``cases``. A case gives ``as_of`` (E), ``family``, ``people``, ``records``
(table -> rows; a row may say ``repeat: N``), ``not_loaded`` (tables never
loaded; every other table is loaded, empty unless given), optionally
``claimed_family_ids``, and ``expect``:

* ``eligibility``, ``ssp``, ``ce``, ``<headline>``, ``<headline>.outcome``,
  ``<headline>.<indicator>``, ``<headline>.<indicator>.outcome``: a state, or
  ``[pending, <earliest date or null>]``. A bare state asserts no earliest date.
* ``eligible``, ``claimable``, ``claimed``, ``basis``, ``insufficient_evidence``,
  ``identified`` (headline codes).
* ``people``: ``{<headline>.<indicator>: [person ids]}``.
* ``rows``: ``{<key>: [[table, row_no], ...]}``, every source row behind that result
  (checked against both evaluators; the polars evaluator carries no rows for
  ``eligibility`` and ``ssp``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import (
    FamilyResult,
    Plan,
    State,
    evaluate,
    evaluate_reference,
    load_plan,
    sources_from_records,
)
from rules.sources import TABLES

CASES = Path(__file__).parent / "cases"
PLAN = load_plan()


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        defaults = doc.get("defaults", {})
        for case in doc["cases"]:
            merged = {**defaults, **case}
            records: dict[str, list[Any]] = {}
            for source in (defaults.get("records", {}), case.get("records", {})):
                for table, rows in source.items():
                    records.setdefault(table, []).extend(rows)
            merged["records"] = records
            params.append(pytest.param(merged, id=f"{path.stem}: {case['name']}"))
    return params


def build_sources(case: dict[str, Any]) -> Any:
    """The Sources a case describes: every table loaded unless listed in ``not_loaded``."""
    records = build_sources_records(case)
    for table in case.get("not_loaded", []):
        del records[table]
    return sources_from_records(records, case.get("claimed_family_ids", ()))


def build_sources_records(case: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows for a case (all tables present)."""
    family = {"locality": "North", **case["family"]}
    records: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    records["families"] = [family]
    records["people"] = [{"family_id": family["family_id"], **p} for p in case.get("people", [])]
    for table, rows in case["records"].items():
        for row in rows:
            row = dict(row)
            repeat = int(row.pop("repeat", 1))
            records[table].extend([row] * repeat)
    return records


@dataclass
class PolarsFamily:
    """One family's row of the polars evaluator's frame, read like a FamilyResult."""

    row: dict[str, Any]
    state_map: dict[str, tuple[State, date | None]]

    def states(self) -> dict[str, tuple[State, date | None]]:
        return self.state_map

    @property
    def identified_headlines(self) -> list[str]:
        return list(self.row["identified"])

    def __getattr__(self, name: str) -> Any:
        return self.row[name]


def _people(family: FamilyResult | PolarsFamily, name: str) -> list[str]:
    if isinstance(family, PolarsFamily):
        return [p.split(":", 1)[1] for p in family.row.get(f"people:{name}", [])]
    headline, indicator = name.split(".")
    return list(family.headline(headline).indicator(indicator).people)


def check(family: FamilyResult | PolarsFamily, expect: dict[str, Any]) -> None:
    """Assert every expectation of a case against a family result."""
    states = family.states()
    for key, want in expect.items():
        if key in ("eligible", "claimable", "claimed", "basis", "insufficient_evidence"):
            assert getattr(family, key) == want, f"{key}: {getattr(family, key)!r} != {want!r}"
        elif key == "identified":
            assert list(family.identified_headlines) == want
        elif key == "people":
            for name, ids in want.items():
                got = _people(family, name)
                assert got == ids, f"people {name}: {got} != {ids}"
        elif key == "rows":
            for name, refs in want.items():
                if isinstance(family, PolarsFamily):
                    if name in ("eligibility", "ssp"):
                        continue  # not carried by the polars evaluator (see Evaluation)
                    got = [[str(r["table"]), r["row_no"]] for r in family.row[f"rows:{name}"]]
                else:
                    got = [[r.table, r.row_no] for r in family.results()[name].all_rows()]
                assert got == sorted(refs), f"rows {name}: {got} != {sorted(refs)}"
        else:
            assert key in states, f"{key}: no such state (have {sorted(states)})"
            state, earliest = states[key]
            if isinstance(want, list):
                want_state, want_date = want[0], want[1]
            else:
                want_state, want_date = want, None
            if isinstance(want_date, str):
                want_date = date.fromisoformat(want_date)
            why = "" if isinstance(family, PolarsFamily) else family.results()[key].explain()
            assert (state, earliest) == (want_state, want_date), (
                f"{key}: got {state} {earliest}, want {want_state} {want_date}\n{why}"
            )


def evaluate_case(plan: Plan, case: dict[str, Any]) -> FamilyResult:
    """Evaluate the case's family with the reference evaluator."""
    as_of = case["as_of"]
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    results = evaluate_reference(plan, build_sources(case), as_of)
    assert len(results) == 1
    return results[0]


def _as_of(case: dict[str, Any]) -> date:
    as_of = case["as_of"]
    return date.fromisoformat(as_of) if isinstance(as_of, str) else as_of  # type: ignore[no-any-return]


def _prefixed(case: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The case with every family and person id prefixed."""

    def rename(row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        for column in ("family_id", "person_id"):
            if row.get(column) is not None:
                row[column] = f"{prefix}:{row[column]}"
        return row

    return {
        **case,
        "family": rename(case["family"]),
        "people": [rename(p) for p in case.get("people", [])],
        "records": {t: [rename(r) for r in rows] for t, rows in case["records"].items()},
        "claimed_family_ids": [f"{prefix}:{f}" for f in case.get("claimed_family_ids", [])],
    }


@functools.cache
def polars_results() -> dict[str, PolarsFamily]:
    """Every case through the polars evaluator, batched by E and loaded tables."""
    groups: dict[tuple[date, frozenset[str]], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for n, param in enumerate(_load_cases()):
        case = param.values[0]
        key = (_as_of(case), frozenset(case.get("not_loaded", [])))
        groups[key].append((str(param.id), _prefixed(case, f"c{n}")))
    out: dict[str, PolarsFamily] = {}
    for (as_of, not_loaded), cases in groups.items():
        records: dict[str, list[Any]] = defaultdict(list)
        claimed: list[str] = []
        for _, case in cases:
            one = build_sources_records(case)
            for table, rows in one.items():
                # keep each case's own row numbers (2, 3, ...), as evidence quotes them
                records[table].extend(
                    {**row, "row_no": row.get("row_no", i + 2)} for i, row in enumerate(rows)
                )
            claimed += case["claimed_family_ids"]
        for table in TABLES:
            records.setdefault(table, [])
        for table in not_loaded:
            records.pop(table, None)
        evaluation = evaluate(PLAN, sources_from_records(records, claimed), as_of)
        states = evaluation.states()
        rows = {r["family_id"]: r for r in evaluation.families.iter_rows(named=True)}
        for case_id, case in cases:
            fid = case["family"]["family_id"]
            out[case_id] = PolarsFamily(rows[fid], states[fid])
    return out


@pytest.mark.parametrize("engine", ["reference", "polars"])
@pytest.mark.parametrize("case", _load_cases())
def test_case(case: dict[str, Any], engine: str, request: pytest.FixtureRequest) -> None:
    if engine == "reference":
        check(evaluate_case(PLAN, case), case["expect"])
    else:
        case_id = request.node.callspec.id.removesuffix("-polars")
        check(polars_results()[case_id], case["expect"])
