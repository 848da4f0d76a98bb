"""draw_sample: properties over random batches, the independent re-computation, and
the refusals."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import polars as pl
import pytest
from _sampling_gen import (
    Batch,
    batches,
    ref_hash,
    ref_k,
    reference_sample,
    sampling_settings,
    seeds,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampling import SAMPLE_SCHEMA, AlwaysRule, SamplingSettings, draw_sample, sample_hash

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(batch=batches(), seed=seeds, s=sampling_settings())
def test_matches_an_independent_recomputation(batch: Batch, seed: str, s: SamplingSettings) -> None:
    """hashlib, exact fractions and sorted(): the engine's frame, row for row."""
    sample = draw_sample(batch.frame(), seed, s)
    assert sample.schema == SAMPLE_SCHEMA
    expected = reference_sample(batch.rows, seed, s)
    got = sample.drop("rate", "escalated_on_failures").to_dicts()
    assert got == expected
    assert set(sample.get_column("rate")) <= {format(s.rate, "f")}
    assert set(sample.get_column("escalated_on_failures")) <= {0}


@PROPS
@given(batch=batches(), seed=seeds, s=sampling_settings())
def test_sample_is_a_subset_and_sizes_follow_the_formula(
    batch: Batch, seed: str, s: SamplingSettings
) -> None:
    sample = draw_sample(batch.frame(), seed, s)
    ids = [r["family_id"] for r in batch.rows]
    # one row per claim of the batch, and the sample is among them
    assert sorted(sample.get_column("family_id")) == sorted(ids)
    sampled = sample.filter("sampled")
    assert set(sampled.get_column("family_id")) <= set(ids)

    sizes = Counter("|".join(str(r[c]) for c in s.strata) for r in batch.rows)
    for stratum, n in sizes.items():
        rows = sample.filter(pl.col("stratum") == stratum)
        k = ref_k(n, s.rate, s.min_per_stratum)
        assert rows.height == n
        assert set(rows.get_column("stratum_size")) == {n}
        assert set(rows.get_column("k")) == {k}
        # exactly k claims by rank, the first k, all with reason random
        random_ids = rows.filter(pl.col("reason") == "random")
        assert sorted(random_ids.get_column("rank")) == list(range(1, k + 1))
        # every non-empty stratum is represented when the minimum is at least 1
        if s.min_per_stratum >= 1:
            assert rows.get_column("sampled").any()
        # the rest of the sample is there by a rule
        others = rows.filter(pl.col("sampled") & (pl.col("rank") > k))
        assert all(r.startswith("rule:") for r in others.get_column("reason"))
    assert set(sample.get_column("stratum")) == set(sizes)
    # sampled exactly when there is a reason
    assert (sample.get_column("sampled") == sample.get_column("reason").is_not_null()).all()


@PROPS
@given(batch=batches(), seed=seeds, s=sampling_settings(), shuffle=st.randoms())
def test_same_seed_same_sample_whatever_the_row_order(
    batch: Batch, seed: str, s: SamplingSettings, shuffle: random.Random
) -> None:
    first = draw_sample(batch.frame(), seed, s)
    rows = list(batch.rows)
    shuffle.shuffle(rows)
    again = draw_sample(Batch(tuple(rows)).frame(), seed, s)
    assert first.equals(again)


@PROPS
@given(
    batch=batches(min_size=20, max_size=60),
    seeds_=st.lists(seeds, min_size=2, max_size=2, unique=True),
)
def test_a_different_seed_gives_a_different_order(batch: Batch, seeds_: list[str]) -> None:
    """One stratum of n >= 20 claims: two seeds give the same order with chance 1/n!."""
    s = SamplingSettings(strata=())
    a, b = (
        draw_sample(batch.frame(), seed, s).get_column("family_id").to_list() for seed in seeds_
    )
    assert a != b
    assert sorted(a) == sorted(b)


@PROPS
@given(batch=batches(), seed=seeds, s=sampling_settings())
def test_always_verify_claims_are_sampled_with_their_reason(
    batch: Batch, seed: str, s: SamplingSettings
) -> None:
    sample = draw_sample(batch.frame(), seed, s)
    by_id = {r["family_id"]: r for r in sample.iter_rows(named=True)}
    for row in batch.rows:
        got = by_id[row["family_id"]]
        matching = [
            rule
            for rule in s.always
            if row.get(rule.column) is not None
            and type(row[rule.column]) is type(rule.equals)
            and row[rule.column] == rule.equals
        ]
        if got["rank"] <= got["k"]:
            assert got["reason"] == "random"  # in both: random wins
        elif matching:
            assert got["reason"] == f"rule:{matching[0].name}"  # the first rule that matches
        else:
            assert got["reason"] is None and not got["sampled"]
        if matching:
            assert got["sampled"]


# --- examples --------------------------------------------------------------------------


def _frame(n: int, **columns: list[object]) -> pl.DataFrame:
    data: dict[str, list[object]] = {
        "family_id": [f"F{i:05d}" for i in range(n)],
        "basis": ["ssp"] * n,
        "locality": ["North"] * n,
    }
    data.update(columns)
    return pl.DataFrame(data)


def test_fifteen_claims_at_twenty_percent_sample_three() -> None:
    sample = draw_sample(_frame(15), "s", SamplingSettings(always=()))
    assert sample.get_column("sampled").sum() == 3
    assert set(sample.get_column("k")) == {3}


def test_twenty_five_claims_at_twenty_eight_percent_sample_seven_not_eight() -> None:
    sample = draw_sample(_frame(25), "s", SamplingSettings(rate=Decimal("0.28"), always=()))
    assert sample.get_column("sampled").sum() == 7


def test_output_columns_and_order() -> None:
    frame = pl.DataFrame(
        {
            "family_id": ["a", "b", "c", "d", "e"],
            "basis": ["ssp", "ce", "ssp", "ce", "ssp"],
            "locality": ["North", "North", "South", "North", "North"],
            "manual_override": [False, False, None, True, False],
            "other": [1, 2, 3, 4, 5],
        }
    )
    sample = draw_sample(frame, "seed-1", SamplingSettings())
    assert sample.columns == list(SAMPLE_SCHEMA)
    assert sample.schema == SAMPLE_SCHEMA
    assert sample.get_column("stratum").to_list() == [
        "ce|North",
        "ce|North",
        "ssp|North",
        "ssp|North",
        "ssp|South",
    ]
    assert sample.get_column("rank").to_list() == [1, 2, 1, 2, 1]
    assert sample.sort("stratum", "hash").equals(sample)
    for row in sample.iter_rows(named=True):
        assert row["hash"] == sample_hash("seed-1", row["family_id"])
    assert set(sample.get_column("rate")) == {"0.20"}
    d = {r["family_id"]: r["reason"] for r in sample.iter_rows(named=True)}
    # d is ce|North with a manual override: random if ranked first, else by the rule
    assert d["d"] in {"random", "rule:manual_override"}


def test_sample_hash_is_sha256_of_seed_colon_family() -> None:
    assert sample_hash("2018-03-7f3a9c", "F10234") == (
        "d78530fedc55d3f216073cb824bb7269c97dfc69e2dd84ef71cc841c58929990"
    )
    assert sample_hash("ü", "Ω") == ref_hash("ü", "Ω")


def test_empty_batch_gives_an_empty_sample_frame() -> None:
    typed = _frame(0).cast(pl.String)
    for frame in (typed, _frame(0)):  # the second has Null dtypes, as from an empty list
        sample = draw_sample(frame, "s", SamplingSettings())
        assert sample.height == 0
        assert sample.schema == SAMPLE_SCHEMA


def test_no_strata_makes_one_stratum() -> None:
    sample = draw_sample(_frame(10), "s", SamplingSettings(strata=(), always=()))
    assert set(sample.get_column("stratum")) == {""}
    assert sample.get_column("sampled").sum() == 2


def test_non_string_strata_are_read_as_text() -> None:
    frame = _frame(4, locality=[1, 2, 1, 2], basis=[True, True, False, False])
    sample = draw_sample(frame, "s", SamplingSettings(always=()))
    assert set(sample.get_column("stratum")) == {"true|1", "true|2", "false|1", "false|2"}


def test_missing_rule_column_matches_nothing() -> None:
    sample = draw_sample(_frame(10), "s", SamplingSettings())  # no manual_override column
    assert set(sample.get_column("reason").drop_nulls()) == {"random"}


def test_rules_compare_strictly_by_type() -> None:
    s = SamplingSettings(always=(AlwaysRule(name="flag", column="flag", equals="yes"),))
    ok = draw_sample(_frame(10, flag=["yes"] * 10), "s", s)
    assert ok.get_column("sampled").all()
    cat = _frame(10, flag=["yes"] * 10).with_columns(pl.col("flag").cast(pl.Categorical))
    assert draw_sample(cat, "s", s).get_column("sampled").all()
    with pytest.raises(ValueError, match="rule 'flag' compares column 'flag'"):
        draw_sample(_frame(10, flag=[True] * 10), "s", s)
    # an int rule on a Boolean column is refused rather than letting True == 1
    s_int = SamplingSettings(always=(AlwaysRule(name="n", column="flag", equals=1),))
    with pytest.raises(ValueError, match="rule 'n'"):
        draw_sample(_frame(3, flag=[True, False, True]), "s", s_int)
    assert (
        draw_sample(_frame(10, flag=list(range(10))), "s", s_int).get_column("sampled").sum() == 3
    )


@pytest.mark.parametrize(
    ("frame", "seed", "error", "message"),
    [
        (_frame(3).drop("locality"), "s", ValueError, "lacks column.*locality"),
        (_frame(3), "", ValueError, "seed"),
        (_frame(3).with_columns(family_id=pl.lit("x")), "s", ValueError, "unique.*'x'"),
        (
            _frame(2).with_columns(family_id=pl.Series([None, "a"], dtype=pl.String)),
            "s",
            ValueError,
            "family_id is null",
        ),
        (_frame(2).with_columns(family_id=pl.Series([1, 2])), "s", TypeError, "String"),
        (_frame(2, locality=[None, "North"]), "s", ValueError, "'locality' is null"),
        (_frame(2, locality=["a|b", "North"]), "s", ValueError, "containing '\\|'"),
    ],
)
def test_bad_input_is_refused(
    frame: pl.DataFrame, seed: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        draw_sample(frame, seed, SamplingSettings())
