"""Differential property tests: the polars evaluator agrees with the reference evaluator."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from _rules_gen import Council, councils
from hypothesis import HealthCheck, given, settings

from rules import (
    Plan,
    default_plan_path,
    evaluate,
    evaluate_reference,
    load_plan,
)

PLAN = load_plan()
SHIPPED = {p.stem: load_plan(p) for p in sorted(default_plan_path().parent.glob("*.yaml"))}


def assert_agree(plan: Plan, council_sources: Any, as_of: date) -> None:
    """Every state, earliest date, claim field and evidence row agrees for every family."""
    reference = {r.family_id: r for r in evaluate_reference(plan, council_sources, as_of)}
    fast = evaluate(plan, council_sources, as_of)
    states = fast.states()
    assert set(states) == set(reference)
    rows = {row["family_id"]: row for row in fast.families.iter_rows(named=True)}
    for fid, ref in reference.items():
        want, got = ref.states(), states[fid]
        diffs = {
            k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)
        }
        assert not diffs, f"{fid}: (reference, polars) {diffs}\n{ref.explain()}"
        row = rows[fid]
        for name in ("eligible", "claimable", "claimed", "basis", "attached"):
            assert row[name] == getattr(ref, name), f"{fid}: {name}"
        for h in ref.headlines:
            for i in h.indicators:
                column = f"people:{h.code}.{i.code}"
                if column in row:
                    assert row[column] == list(i.people), f"{fid}: {column}"
        # evidence: exactly the rows the reference lists for each key (every key but
        # eligibility and ssp has a rows column; a key the reference has no result for
        # has null rows)
        columns = [c for c in row if c.startswith("rows:")]
        keys = {c.removeprefix("state:") for c in row if c.startswith("state:")}
        headlines = {h.code for h in plan.headlines}
        assert {c.removeprefix("rows:") for c in columns} == keys - {
            "eligibility",
            "ssp",
        } - headlines
        # a headline's identification rows are its indicators' rows
        for h in ref.headlines:
            union = sorted(
                {
                    (str(r["table"]), r["row_no"])
                    for i in h.indicators
                    for r in row[f"rows:{h.code}.{i.code}"]
                }
            )
            expected = [(r.table, r.row_no) for r in h.identification.all_rows()]
            assert union == expected, f"{fid}: {h.code} (reference, polars) {expected} {union}"
        for column in columns:
            key = column.removeprefix("rows:")
            got = row[column]
            if key not in want:
                assert got is None, f"{fid}: {column} {got}"
                continue
            expected = [(r.table, r.row_no) for r in ref.results()[key].all_rows()]
            assert got is not None, f"{fid}: {column} is null"
            found = [(str(r["table"]), r["row_no"]) for r in got]
            assert found == expected, f"{fid}: {column} (reference, polars) {expected} {found}"


@pytest.mark.parametrize("plan", list(SHIPPED.values()), ids=list(SHIPPED))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(council=councils(max_families=6))
def test_polars_evaluator_agrees_with_the_reference(plan: Plan, council: Council) -> None:
    assert_agree(plan, council.sources(), council.as_of)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(council=councils(max_families=6))
def test_large_council_path_agrees_with_the_reference(council: Council) -> None:
    """From 100,000 attached families the evaluator reads the tables with the streaming
    engine and gathers the evidence after the result; a family of more people than
    ``_MAX_PASSES`` is combined by a group_by: with both thresholds lowered, small councils
    take those paths."""
    from unittest.mock import patch

    import rules.evaluator as ev

    with patch.object(ev, "_STREAM_FROM", 0), patch.object(ev, "_MAX_PASSES", 1):
        assert_agree(PLAN, council.sources(), council.as_of)


def test_evaluation_frame_shape() -> None:
    from rules import sources_from_records

    sources = sources_from_records(
        {
            "families": [
                {"family_id": "F2", "locality": "South", "attached_on": None},
                {"family_id": "F1", "locality": "North", "attached_on": "2017-08-31"},
            ],
            "people": [{"person_id": "P1", "family_id": "F1", "role": "adult"}],
            "offences": [{"person_id": "P1", "occurred_on": "2017-06-01", "kind": "offence"}],
            "claims": [],
        }
    )
    result = evaluate(PLAN, sources, date(2018, 3, 1))
    assert result.plan_name == "phase2" and result.plan_hash == PLAN.content_hash
    frame = result.families
    assert frame["family_id"].to_list() == ["F1", "F2"]
    assert frame.columns[:10] == [
        "family_id",
        "locality",
        "attached_on",
        "attached",
        "eligible",
        "identified",
        "claimed",
        "claimable",
        "basis",
        "insufficient_evidence",
    ]
    assert frame.row(0, named=True)["people:crime.offending"] == ["P1"]
    assert frame.row(0, named=True)["state:crime.outcome"] == "met"
    assert frame.row(1, named=True)["state:crime.outcome"] is None
    assert frame.row(1, named=True)["state:crime"] == "not_met"
    # tables never loaded are unknown
    assert frame.row(0, named=True)["state:health"] == "unknown"


def test_evaluation_frees_its_data_without_the_cycle_collector() -> None:
    """The compiler holds every table read (gigabytes for a million families): it must be
    freed when the evaluation returns, by reference counting alone, not when the cycle
    collector next runs (runs one after another would otherwise add up in memory)."""
    import gc
    import weakref
    from unittest.mock import patch

    import rules.evaluator as ev
    from rules import sources_from_records

    sources = sources_from_records(
        {
            "families": [{"family_id": "F1", "locality": "North", "attached_on": "2017-08-31"}],
            "people": [{"person_id": "P1", "family_id": "F1", "role": "adult"}],
            "offences": [{"person_id": "P1", "occurred_on": "2017-06-01", "kind": "offence"}],
            "debt": [
                {"family_id": "F1", "recorded_on": "2017-07-01", "kind": "rent", "amount": "10.00"}
            ],
            "claims": [],
        }
    )
    compilers: list[weakref.ref[ev._Compiler]] = []
    init = ev._Compiler.__init__

    def tracked(self: ev._Compiler, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        compilers.append(weakref.ref(self))

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with patch.object(ev._Compiler, "__init__", tracked):
            result = evaluate(PLAN, sources, date(2018, 3, 1))
        assert result.families.height == 1
        assert compilers and all(ref() is None for ref in compilers)
    finally:
        if was_enabled:
            gc.enable()


def test_people_who_identified_are_listed_in_id_order() -> None:
    """Whatever order the people extract lists a family's members in, the people who
    identified an indicator are listed by id (as the reference lists them)."""
    from rules import sources_from_records

    ids = ["F1P2", "F1P10", "F1P0", "F1P1"]  # neither id order nor any numeric order
    sources = sources_from_records(
        {
            "families": [{"family_id": "F1", "locality": "North", "attached_on": "2017-08-31"}],
            "people": [{"person_id": p, "family_id": "F1", "role": "adult"} for p in ids],
            "offences": [
                {"person_id": p, "occurred_on": "2017-06-01", "kind": "offence"} for p in ids
            ],
            "claims": [],
        }
    )
    row = evaluate(PLAN, sources, date(2018, 3, 1)).families.row(0, named=True)
    assert row["people:crime.offending"] == sorted(ids)
    assert_agree(PLAN, sources, date(2018, 3, 1))
