"""escalate: properties over random batches and failure histories, and examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from _sampling_gen import Batch, batches, ref_k, ref_rule_reason, sampling_settings, seeds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampling import (
    SAMPLE_SCHEMA,
    Escalated,
    EscalationStep,
    SamplingSettings,
    draw_sample,
    escalate,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = datetime(2018, 4, 10, 9, 30, tzinfo=UTC)


def _strata_state(sample: pl.DataFrame) -> dict[str, tuple[Decimal, int, int, int]]:
    """stratum -> (rate, k, n, escalated_on_failures)."""
    rows = sample.group_by("stratum").agg(pl.all().first()).iter_rows(named=True)
    return {
        r["stratum"]: (Decimal(r["rate"]), r["k"], r["stratum_size"], r["escalated_on_failures"])
        for r in rows
    }


def _check_step(
    before: pl.DataFrame,
    result: Escalated,
    failures: dict[str, int],
    s: SamplingSettings,
    at: datetime,
    rows: tuple[dict[str, object], ...],
) -> None:
    after = result.sample
    assert after.schema == SAMPLE_SCHEMA
    # the same claims, in the same order, with the same hashes and ranks
    keep = ["family_id", "stratum", "hash", "rank", "stratum_size"]
    assert after.select(keep).equals(before.select(keep))

    old = {r["family_id"]: r for r in before.iter_rows(named=True)}
    new = {r["family_id"]: r for r in after.iter_rows(named=True)}
    # escalation only adds claims, and never changes why a claim is in the sample
    for fid, r in old.items():
        if r["sampled"]:
            assert new[fid]["sampled"] and new[fid]["reason"] == r["reason"]
    newly = {fid for fid in new if new[fid]["sampled"] and not old[fid]["sampled"]}
    assert all(new[fid]["reason"] == "escalation" for fid in newly)

    state_before, state_after = _strata_state(before), _strata_state(after)
    logged = {step.stratum: step for step in result.log}
    assert len(logged) == len(result.log)
    assert [step.stratum for step in result.log] == sorted(logged)
    for stratum, (rate, k, n, trigger) in state_before.items():
        new_rate, new_k, _, new_trigger = state_after[stratum]
        count = failures.get(stratum, 0)
        due = count > s.tolerance and count > trigger and s.next_rate(rate) is not None
        if not due:
            # nothing changes in a stratum that is not due, or is at the top of the ladder
            assert stratum not in logged
            assert (new_rate, new_k, new_trigger) == (rate, k, trigger)
            assert not any(new[f]["stratum"] == stratum for f in newly)
            continue
        step = logged[stratum]
        # rates only go up, one ladder step at a time
        assert new_rate == s.next_rate(rate) and new_rate in s.ladder and new_rate > rate
        assert (step.from_rate, step.to_rate) == (rate, new_rate)
        assert new_k == max(k, ref_k(n, new_rate, s.min_per_stratum)) == step.to_k
        assert step.from_k == k
        assert new_trigger == count == step.failures
        assert step.at == at
        # the added claims are exactly the next ones in hash order, not already sampled
        members = sorted(
            (r for r in before.iter_rows(named=True) if r["stratum"] == stratum),
            key=lambda r: r["hash"],
        )
        expected = tuple(r["family_id"] for r in members[k:new_k] if not r["sampled"])
        assert step.added == expected
    assert newly == {fid for step in result.log for fid in step.added}

    # the escalated sample is the draw at each stratum's current rate, plus the rules
    by_id = {r["family_id"]: r for r in rows}
    for fid, r in new.items():
        in_rule = ref_rule_reason(by_id[fid], s.always) is not None
        assert r["sampled"] == (r["rank"] <= r["k"] or in_rule)


failure_histories = st.lists(
    st.dictionaries(st.integers(0, 15), st.integers(0, 5), max_size=6), min_size=1, max_size=6
)


@PROPS
@given(batch=batches(), seed=seeds, s=sampling_settings(), history=failure_histories)
def test_escalation_only_climbs_and_extends_in_hash_order(
    batch: Batch, seed: str, s: SamplingSettings, history: list[dict[int, int]]
) -> None:
    """A history of failure counts (which may go up, stay or, wrongly, go down)."""
    sample = draw_sample(batch.frame(), seed, s)
    strata = sorted(set(sample.get_column("stratum")))
    at = T0
    for raw in history:
        failures = {strata[i % len(strata)]: c for i, c in raw.items()} if strata else {}
        result = escalate(sample, failures, s, at)
        _check_step(sample, result, failures, s, at, batch.rows)
        # the same failures again change nothing: re-importing results is a no-op
        again = escalate(result.sample, failures, s, at + timedelta(hours=1))
        assert again.log == ()
        assert again.sample.equals(result.sample)
        sample, at = result.sample, at + timedelta(days=1)


@PROPS
@given(batch=batches(min_size=1), seed=seeds, s=sampling_settings())
def test_rising_failures_climb_to_the_top_and_then_add_nothing(
    batch: Batch, seed: str, s: SamplingSettings
) -> None:
    sample = draw_sample(batch.frame(), seed, s)
    strata = sorted(set(sample.get_column("stratum")))
    count = s.tolerance
    for _ in range(len(s.ladder) + 2):
        count += 1
        sample = escalate(sample, dict.fromkeys(strata, count), s, T0).sample
    # at the top of the ladder every claim is sampled
    assert {Decimal(r) for r in sample.get_column("rate")} == {Decimal(1)}
    assert sample.get_column("sampled").all()
    top = escalate(sample, dict.fromkeys(strata, count + 1), s, T0)
    assert top.log == ()
    assert top.sample.equals(sample)


@PROPS
@given(batch=batches(min_size=1), seed=seeds, s=sampling_settings(), data=st.data())
def test_failures_within_tolerance_change_nothing(
    batch: Batch, seed: str, s: SamplingSettings, data: st.DataObject
) -> None:
    sample = draw_sample(batch.frame(), seed, s)
    strata = sorted(set(sample.get_column("stratum")))
    failures = {x: data.draw(st.integers(0, s.tolerance)) for x in strata}
    result = escalate(sample, failures, s, T0)
    assert result.log == ()
    assert result.sample.equals(sample)


# --- examples --------------------------------------------------------------------------


def _sample(n: int = 10, **kw: object) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "family_id": [f"F{i:03d}" for i in range(n)],
            "basis": ["ssp"] * n,
            "locality": ["North"] * n,
            "manual_override": [i == 7 for i in range(n)],
        }
    )
    return draw_sample(frame, "seed", SamplingSettings(**kw))  # type: ignore[arg-type]


def test_one_failure_moves_up_one_step_and_logs_it() -> None:
    sample = _sample()
    result = escalate(sample, {"ssp|North": 1}, SamplingSettings(), T0)
    (step,) = result.log
    assert step == EscalationStep(
        stratum="ssp|North",
        from_rate=Decimal("0.20"),
        to_rate=Decimal("0.50"),
        failures=1,
        at=T0,
        added=step.added,
        from_k=2,
        to_k=5,
    )
    ordered = result.sample.sort("rank")
    ranks_3_to_5 = ordered.filter(pl.col("rank").is_between(3, 5))
    expected = tuple(
        r["family_id"] for r in ranks_3_to_5.iter_rows(named=True) if r["reason"] == "escalation"
    )
    assert step.added == expected
    assert set(result.sample.get_column("rate")) == {"0.50"}
    assert set(result.sample.get_column("escalated_on_failures")) == {1}
    # a rule-sampled claim ranked inside the new k keeps its reason and is not "added"
    rule_rows = result.sample.filter(pl.col("reason") == "rule:manual_override")
    for r in rule_rows.iter_rows(named=True):
        assert r["family_id"] not in step.added


def test_the_same_failures_twice_do_not_escalate_twice_but_more_do() -> None:
    s = SamplingSettings()
    first = escalate(_sample(), {"ssp|North": 1}, s, T0)
    same = escalate(first.sample, {"ssp|North": 1}, s, T0)
    assert same.log == () and same.sample.equals(first.sample)
    more = escalate(first.sample, {"ssp|North": 2}, s, T0)
    assert [(x.from_rate, x.to_rate) for x in more.log] == [(Decimal("0.50"), Decimal("1.00"))]
    assert more.sample.get_column("sampled").all()
    # fewer failures than before (a corrected result) never shrinks the sample
    fewer = escalate(more.sample, {"ssp|North": 0}, s, T0)
    assert fewer.log == () and fewer.sample.equals(more.sample)


def test_many_failures_at_once_move_one_step() -> None:
    result = escalate(_sample(), {"ssp|North": 5}, SamplingSettings(), T0)
    assert [x.to_rate for x in result.log] == [Decimal("0.50")]


def test_tolerance_allows_failures_before_escalating() -> None:
    s = SamplingSettings(tolerance=2)
    sample = _sample(tolerance=2)
    assert escalate(sample, {"ssp|North": 2}, s, T0).log == ()
    assert len(escalate(sample, {"ssp|North": 3}, s, T0).log) == 1


def test_rate_off_the_ladder_climbs_to_the_next_step_above() -> None:
    s = SamplingSettings(rate=Decimal("0.3"))
    result = escalate(_sample(rate=Decimal("0.3")), {"ssp|North": 1}, s, T0)
    assert [(x.from_rate, x.to_rate, x.from_k, x.to_k) for x in result.log] == [
        (Decimal("0.3"), Decimal("0.50"), 3, 5)
    ]


def test_rate_of_one_has_nowhere_to_go() -> None:
    s = SamplingSettings(rate=Decimal("1"))
    sample = _sample(rate=Decimal("1"))
    result = escalate(sample, {"ssp|North": 3}, s, T0)
    assert result.log == () and result.sample.equals(sample)


def test_a_small_stratum_escalates_even_when_nothing_can_be_added() -> None:
    s = SamplingSettings()
    sample = _sample(n=1)
    result = escalate(sample, {"ssp|North": 1}, s, T0)
    (step,) = result.log
    assert step.added == () and (step.from_k, step.to_k) == (1, 1)
    assert set(result.sample.get_column("rate")) == {"0.50"}


def test_refusals() -> None:
    s = SamplingSettings()
    sample = _sample()
    with pytest.raises(ValueError, match=r"not in the sample.*ssp\|South"):
        escalate(sample, {"ssp|South": 1}, s, T0)
    with pytest.raises(ValueError, match="negative"):
        escalate(sample, {"ssp|North": -1}, s, T0)
    with pytest.raises(ValueError, match="not a sample frame"):
        escalate(sample.drop("k"), {}, s, T0)
    with pytest.raises(ValueError, match="not a whole stratum"):
        escalate(sample.head(5), {}, s, T0)
    with pytest.raises(ValueError, match="more than one rate"):
        escalate(
            sample.with_columns(
                rate=pl.when(pl.col("rank") == 1).then(pl.lit("0.5")).otherwise("rate")
            ),
            {},
            s,
            T0,
        )
    with pytest.raises(ValueError, match="unreadable rate"):
        escalate(sample.with_columns(rate=pl.lit("lots")), {}, s, T0)


def test_empty_sample_escalates_nothing() -> None:
    empty = _sample(n=0)
    result = escalate(empty, {}, SamplingSettings(), T0)
    assert result.log == () and result.sample.height == 0
