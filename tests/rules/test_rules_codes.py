"""The evaluator's column arithmetic on state codes and dates agrees with rules.states and
rules.dates, the plain definitions the reference evaluator uses."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules.evaluator as ev
from rules.dates import Period, first_day_after
from rules.states import STATES, negate


def test_swap_is_negate_on_every_code() -> None:
    codes = pl.Series("c", [*(ev.CODES[s] for s in STATES), None], dtype=ev.CODE)
    got = pl.DataFrame([codes]).select(ev._swap(pl.col("c"))).to_series()
    assert got.dtype == ev.CODE
    assert got.to_list() == [*(ev.CODES[negate(s)] for s in STATES), None]


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(st.none() | st.dates(date(1990, 1, 1), date(2040, 12, 31)), max_size=40),
    period=st.builds(Period, months=st.integers(1, 60))
    | st.builds(Period, days=st.integers(1, 400)),
)
def test_first_day_after_is_the_plain_definition(days: list[date | None], period: Period) -> None:
    frame = pl.DataFrame({"x": pl.Series(days, dtype=pl.Date)})
    got = frame.select(ev._first_day_after(pl.col("x"), period)).to_series()
    assert got.dtype == pl.Date
    assert got.to_list() == [None if d is None else first_day_after(d, period) for d in days]


@pytest.mark.parametrize(
    ("x", "months", "expected"),
    [
        (date(2017, 8, 31), 6, date(2018, 3, 1)),  # Feb 28 - 6 months is Aug 28
        (date(2020, 1, 31), 1, date(2020, 3, 1)),  # Feb 29 - 1 month is Jan 29
        (date(2020, 8, 29), 6, date(2021, 3, 1)),
        (date(2019, 8, 15), 6, date(2020, 2, 15)),
        (date(2019, 12, 31), 2, date(2020, 3, 1)),
    ],
)
def test_first_day_after_at_month_ends(x: date, months: int, expected: date) -> None:
    frame = pl.DataFrame({"x": [x]})
    assert frame.select(ev._first_day_after(pl.col("x"), Period(months=months))).item() == expected
