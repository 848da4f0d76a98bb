"""Invariants of the plan, checked as properties of the reference evaluator."""

from __future__ import annotations

from datetime import timedelta

from _rules_gen import Council, councils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import FamilyResult, Plan, evaluate_reference, load_plan

PLAN = load_plan()
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(council: Council, plan: Plan = PLAN, as_of: object = None) -> dict[str, FamilyResult]:
    e = council.as_of if as_of is None else as_of
    return {r.family_id: r for r in evaluate_reference(plan, council.sources(), e)}  # type: ignore[arg-type]


@SETTINGS
@given(councils())
def test_claimable_means_eligible_unclaimed_and_ssp_or_ce(council: Council) -> None:
    for r in _run(council).values():
        assert r.claimable == (
            r.eligible and r.claimed is False and (r.ssp.state == "met" or r.ce.state == "met")
        )
        assert (r.basis is not None) == r.claimable
        assert r.basis != "ce" or r.ce.state == "met"
        if not r.attached:
            assert not r.eligible and r.ce.state == "not_met" and r.ssp.state == "not_met"


@SETTINGS
@given(councils(), st.data())
def test_adding_a_benefit_spell_after_a_never_makes_a_family_meet_ce(
    council: Council, data: st.DataObject
) -> None:
    before = _run(council)
    people = [p for p in council.records["people"] if p["role"] == "adult"]
    if not people or "benefits" in council.not_loaded:
        return
    person = data.draw(st.sampled_from(people))
    family = next(f for f in council.records["families"] if f["family_id"] == person["family_id"])
    if family["attached_on"] is None:
        return
    start = family["attached_on"] + timedelta(days=data.draw(st.integers(1, 400)))
    end = data.draw(st.one_of(st.none(), st.integers(0, 60).map(lambda k: start + timedelta(k))))
    benefit = data.draw(st.sampled_from(["jsa", "esa", "income_support", "uc_not_working"]))
    council.records["benefits"].append(
        {"person_id": person["person_id"], "benefit": benefit, "started_on": start, "ended_on": end}
    )
    after = _run(council)
    for fid, r in after.items():
        if r.ce.state == "met":
            assert before[fid].ce.state == "met"


@SETTINGS
@given(councils(), st.integers(1, 200))
def test_moving_e_earlier_never_turns_a_pending_6_month_outcome_into_met(
    council: Council, days: int
) -> None:
    later = _run(council)
    earlier = _run(council, as_of=council.as_of - timedelta(days=days))
    for fid, r in later.items():
        for code in ("crime", "children_who_need_help", "domestic_abuse"):
            outcome = r.headline(code).outcome
            if outcome is not None and outcome.state == "pending":
                before = earlier[fid].headline(code).outcome
                assert before is None or before.state != "met"
        debt = r.headline("worklessness").indicator("debt").outcome
        if debt is not None and debt.state == "pending":
            before = earlier[fid].headline("worklessness").indicator("debt").outcome
            assert before is None or before.state != "met"


@SETTINGS
@given(councils(), st.data())
def test_removing_an_indicator_never_makes_an_ineligible_family_eligible(
    council: Council, data: st.DataObject
) -> None:
    h = data.draw(st.integers(0, len(PLAN.headlines) - 1))
    headline = PLAN.headlines[h]
    i = data.draw(st.integers(0, len(headline.indicators) - 1))
    indicators = headline.indicators[:i] + headline.indicators[i + 1 :]
    headlines = list(PLAN.headlines)
    if indicators:
        headlines[h] = headline.model_copy(update={"indicators": indicators})
    else:
        del headlines[h]
    smaller = PLAN.model_copy(update={"headlines": headlines})
    full, reduced = _run(council), _run(council, smaller)
    for fid, r in full.items():
        if not r.eligible:
            assert not reduced[fid].eligible


@SETTINGS
@given(councils())
def test_a_claims_row_makes_a_family_unclaimable(council: Council) -> None:
    for family in council.records["families"]:
        council.records["claims"].append(
            {
                "family_id": family["family_id"],
                "claimed_on": council.as_of,
                "claim_window": "2018-01",
                "basis": "ssp",
            }
        )
    assert not any(r.claimable for r in _run(council).values())
