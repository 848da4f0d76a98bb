"""Aggregates of a table's rows per subject agree with polars' own ``group_by``, whether they
are taken as differences of running totals (sorted rows, integer sums) or not."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from _rules_gen import runs
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rules.evaluator as ev

VALUES: dict[str, tuple[pl.DataType, st.SearchStrategy[object]]] = {
    "flag": (pl.Boolean(), st.booleans()),
    "code": (pl.Int8(), st.integers(-128, 127)),
    "sessions": (pl.Int64(), st.integers(-(2**40), 2**40)),
    "rate": (pl.Float64(), st.floats(-1e6, 1e6, allow_nan=False)),
    "money": (pl.Decimal(12, 2), st.decimals(-10_000, 10_000, places=2)),
}


def rows() -> st.SearchStrategy[pl.DataFrame]:
    """Rows of a few subjects, sorted by subject (``_p``, flagged sorted), some values null."""
    frame = runs("_p", VALUES, max_run=5, max_key=40)
    return frame.map(lambda f: f.with_columns(pl.col("_p").set_sorted()))


def _sums(*names: str) -> dict[str, pl.Expr]:
    values = {f"sum_{n}": pl.col(n) for n in names}
    values["flag_sessions"] = pl.when(pl.col("flag")).then(pl.col("sessions"))
    return values


def _check(frame: pl.DataFrame, aggs: dict[str, pl.Expr], sums: dict[str, pl.Expr]) -> None:
    # collected as the evaluator collects it
    got = ev._aggregated(frame, "_p", aggs, sums).collect(engine=ev._ENGINE).sort("_p")
    want = frame.group_by("_p").agg(*[e.alias(n) for n, e in aggs.items()]).sort("_p")
    assert got.schema == want.schema
    # integers and decimals exactly; a float sum's last bits depend on the order polars
    # adds in, which is not the same in all its engines (the streaming one's differs).
    # Values up to 1e6, five to a subject: orders differ by far less than 1e-8
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-12, abs_tol=1e-8)


@settings(max_examples=80, deadline=None)
@given(frame=rows())
def test_integer_sums_of_sorted_rows_match_group_by(frame: pl.DataFrame) -> None:
    sums = _sums("flag", "code", "sessions")
    _check(frame, {n: e.sum() for n, e in sums.items()}, sums)


@pytest.mark.parametrize("column", ["rate", "money"])
@settings(max_examples=30, deadline=None)
@given(frame=rows())
def test_sums_that_are_not_integers_are_left_to_group_by(column: str, frame: pl.DataFrame) -> None:
    sums = _sums("sessions", column)
    _check(frame, {n: e.sum() for n, e in sums.items()}, sums)
    if frame.height and column == "money":
        got = ev._aggregated(frame, "_p", {"m": pl.col("money").sum()}, {"m": pl.col("money")})
        assert all(isinstance(v, Decimal) for v in got.collect()["m"])


@settings(max_examples=30, deadline=None)
@given(frame=rows())
def test_other_aggregates_and_unsorted_rows_are_left_to_group_by(frame: pl.DataFrame) -> None:
    sums = _sums("sessions")
    aggs = {n: e.sum() for n, e in sums.items()} | {"low": pl.col("sessions").min()}
    _check(frame, aggs, sums)
    # the same rows without the sorted flag: polars' group_by, same answer
    unsorted = frame.with_columns(pl.Series("_p", frame["_p"].to_list(), dtype=pl.UInt32))
    assert not unsorted["_p"].flags["SORTED_ASC"] or unsorted.height <= 1
    _check(unsorted, {n: e.sum() for n, e in sums.items()}, sums)
