"""The reference evaluator's evidence, the state algebra and the Sources helper."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from rules import (
    STATES,
    RowRef,
    Sources,
    check_sources,
    combine,
    evaluate_reference,
    load_plan,
    negate,
    sources_from_records,
)

PLAN = load_plan()


def _family(**records: list[dict[str, object]]) -> Sources:
    tables: dict[str, list[dict[str, object]]] = {
        "families": [
            {"family_id": "F1", "locality": "North", "attached_on": "2017-08-31"},
            {"family_id": "F2", "locality": "South", "attached_on": None},
        ],
        "people": [
            {"person_id": "P1", "family_id": "F1", "role": "adult", "birth_date": "1980-01-01"},
            {"person_id": "C1", "family_id": "F1", "role": "child", "birth_date": "2008-05-05"},
        ],
        "claims": [],
    }
    tables.update(records)
    return sources_from_records(tables)


def test_reduction_evidence_names_counts_threshold_windows_and_rows() -> None:
    offences = [
        {"person_id": "P1", "occurred_on": "2017-06-01", "kind": "offence"} for _ in range(100)
    ] + [{"person_id": "C1", "occurred_on": "2017-12-01", "kind": "caution"} for _ in range(67)]
    domestic = [{"person_id": "P1", "occurred_on": "2017-06-01", "kind": "incident"}]
    (family, unattached) = evaluate_reference(
        PLAN, _family(offences=offences, domestic_abuse=domestic), date(2018, 3, 1)
    )
    outcome = family.headline("crime").outcome
    assert outcome is not None and outcome.state == "met"
    reduction = next(r for _, r in outcome.walk() if "baseline" in r.figures)
    assert reduction.figures["baseline"] == 100
    assert reduction.figures["later"] == 67
    assert reduction.figures["reduction_percent"] == Decimal("33.00")
    assert reduction.figures["required_reduction_percent"] == Decimal(33)
    assert reduction.figures["baseline_window"] == "(2017-02-28, 2017-08-31]"
    assert reduction.figures["later_window"] == "(2017-09-01, 2018-03-01]"
    assert len(reduction.rows) == 167
    assert reduction.rows[0] == RowRef("offences", 2)
    assert family.claimable and family.basis == "ssp" and family.locality == "North"
    text = family.explain()
    assert "claimable: yes (ssp)" in text
    assert "baseline=100, later=67" in text
    assert unattached.family_id == "F2" and not unattached.attached


def test_family_ids_filter_and_no_families_table() -> None:
    sources = _family()
    assert [r.family_id for r in evaluate_reference(PLAN, sources, date(2018, 1, 1), ["F2"])] == [
        "F2"
    ]
    assert evaluate_reference(PLAN, Sources(tables={}), date(2018, 1, 1)) == []


def test_explain_says_why_not_eligible() -> None:
    (family, _) = evaluate_reference(PLAN, _family(), date(2018, 3, 1))
    assert not family.eligible
    assert "identified=0" in family.explain()
    assert family.states()["eligibility"] == ("not_met", None)


# --- the state algebra, exactly as the plan words it -------------------------


def _all(states: tuple[str, ...]) -> str:
    if "not_met" in states:
        return "not_met"
    if "pending" in states:
        return "pending"
    if "unknown" in states:
        return "unknown"
    return "met"


def _any(states: tuple[str, ...]) -> str:
    if "met" in states:
        return "met"
    if "pending" in states:
        return "pending"
    if "unknown" in states:
        return "unknown"
    return "not_met"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_combination_tables(n: int) -> None:
    for states in itertools.product(STATES, repeat=n):
        parts = [(s, None) for s in states]
        assert combine("all", parts)[0] == _all(states)
        assert combine("any", parts)[0] == _any(states)


def test_combination_dates() -> None:
    d1, d2 = date(2018, 3, 1), date(2018, 4, 15)
    assert combine("all", [("pending", d1), ("pending", d2), ("met", None)]) == ("pending", d2)
    assert combine("any", [("pending", d1), ("pending", d2), ("not_met", None)]) == ("pending", d1)
    assert combine("all", [("pending", d1), ("pending", None)]) == ("pending", None)
    assert combine("any", [("pending", d1), ("pending", None)]) == ("pending", None)
    assert combine("all", [("not_met", None), ("pending", d1)]) == ("not_met", None)
    assert combine("all", []) == ("met", None)
    assert combine("any", []) == ("not_met", None)
    assert [negate(s) for s in STATES] == ["not_met", "met", "pending", "unknown"]


# --- the Sources helper --------------------------------------------------------


def test_sources_from_records_builds_contract_frames() -> None:
    sources = sources_from_records(
        {
            "debt": [
                {
                    "family_id": "F1",
                    "recorded_on": "2018-01-01",
                    "kind": "rent_arrears",
                    "amount": 5,
                },
                {
                    "family_id": "F1",
                    "recorded_on": date(2018, 2, 1),
                    "kind": "rent_arrears",
                    "amount": "12.5",
                    "row_no": 40,
                },
            ]
        }
    )
    frame = sources.tables["debt"].collect()
    assert frame.schema["amount"] == pl.Decimal(scale=2)
    assert frame.schema["recorded_on"] == pl.Date
    assert frame["row_no"].to_list() == [2, 40]
    assert frame["amount"].to_list() == [Decimal("5.00"), Decimal("12.50")]
    assert sources.loaded("debt") and not sources.loaded("people")
    check_sources(sources)


def test_sources_from_records_rejects_floats_and_unknown_columns() -> None:
    with pytest.raises(ValueError, match="float"):
        sources_from_records(
            {"debt": [{"family_id": "F", "recorded_on": "2018-01-01", "kind": "x", "amount": 1.5}]}
        )
    with pytest.raises(ValueError, match="unknown column"):
        sources_from_records({"neet": [{"person_id": "P", "started_on": "2018-01-01", "x": 1}]})
    with pytest.raises(ValueError, match="unknown source table"):
        sources_from_records({"schools": []})


def test_check_sources_rejects_a_frame_off_contract() -> None:
    frame = pl.LazyFrame({"person_id": ["P"], "started_on": ["2018-01-01"]})
    with pytest.raises(ValueError, match="neet"):
        check_sources(Sources(tables={"neet": frame}))
