"""YAML rule cases: a family, its records, E and the expected states.

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
* ``rows``: ``{<key>: [[table, row_no], ...]}``, every source row behind that result.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import FamilyResult, Plan, Result, evaluate_reference, load_plan, sources_from_records
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
    family = {"locality": "North", **case["family"]}
    records: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    records["families"] = [family]
    records["people"] = [{"family_id": family["family_id"], **p} for p in case.get("people", [])]
    for table, rows in case["records"].items():
        for row in rows:
            row = dict(row)
            repeat = int(row.pop("repeat", 1))
            records[table].extend([row] * repeat)
    for table in case.get("not_loaded", []):
        del records[table]
    return sources_from_records(records, case.get("claimed_family_ids", ()))


def _result(family: FamilyResult, key: str) -> Result:
    parts = key.split(".")
    if key in ("eligibility", "ssp", "ce"):
        return getattr(family, key)  # type: ignore[no-any-return]
    headline = family.headline(parts[0])
    if len(parts) == 1:
        return headline.identification
    if parts[1] == "outcome":
        assert headline.outcome is not None, f"{key}: headline not identified"
        return headline.outcome
    indicator = headline.indicator(parts[1])
    if len(parts) == 2:
        return indicator.identification
    assert indicator.outcome is not None, f"{key}: indicator has no outcome"
    return indicator.outcome


def check(family: FamilyResult, expect: dict[str, Any]) -> None:
    """Assert every expectation of a case against a family result."""
    states = family.states()
    for key, want in expect.items():
        if key in ("eligible", "claimable", "claimed", "basis", "insufficient_evidence"):
            assert getattr(family, key) == want, f"{key}: {getattr(family, key)!r} != {want!r}"
        elif key == "identified":
            assert list(family.identified_headlines) == want
        elif key == "people":
            for name, ids in want.items():
                headline, indicator = name.split(".")
                got = list(family.headline(headline).indicator(indicator).people)
                assert got == ids, f"people {name}: {got} != {ids}"
        elif key == "rows":
            for name, refs in want.items():
                got = [[r.table, r.row_no] for r in _result(family, name).all_rows()]
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
            assert (state, earliest) == (want_state, want_date), (
                f"{key}: got {state} {earliest}, want {want_state} {want_date}\n"
                + _result(family, key).explain()
            )


def evaluate_case(plan: Plan, case: dict[str, Any]) -> FamilyResult:
    """Evaluate the case's family with the reference evaluator."""
    as_of = case["as_of"]
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    results = evaluate_reference(plan, build_sources(case), as_of)
    assert len(results) == 1
    return results[0]


@pytest.mark.parametrize("case", _load_cases())
def test_case(case: dict[str, Any]) -> None:
    check(evaluate_case(PLAN, case), case["expect"])
