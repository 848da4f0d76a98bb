"""Property and example tests for the plan's date arithmetic (rules.dates)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.dates import (
    DateWindow,
    Period,
    add_months,
    age_on,
    first_day_after,
    first_day_months_after,
    iso_monday,
    monday_after,
    months_before,
    period_before,
    window_before,
)

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31))
months = st.integers(min_value=0, max_value=60)


@pytest.mark.parametrize(
    ("d", "n", "expected"),
    [
        (date(2019, 8, 31), 6, date(2019, 2, 28)),
        (date(2020, 8, 31), 6, date(2020, 2, 29)),
        (date(2018, 2, 28), 6, date(2017, 8, 28)),
        (date(2019, 3, 31), 1, date(2019, 2, 28)),
        (date(2019, 1, 15), 12, date(2018, 1, 15)),
        (date(2019, 5, 31), 3, date(2019, 2, 28)),
        (date(2019, 12, 31), 13, date(2018, 11, 30)),
    ],
)
def test_months_before_examples(d: date, n: int, expected: date) -> None:
    assert months_before(d, n) == expected


def test_worked_example_from_the_plan() -> None:
    a = date(2017, 8, 31)
    assert months_before(date(2018, 2, 28), 6) == date(2017, 8, 28)
    assert months_before(date(2018, 2, 28), 6) < a
    assert first_day_months_after(a, 6) == date(2018, 3, 1)
    assert first_day_after(a, Period(days=91)) == a + timedelta(days=91)


@given(dates, months)
def test_months_before_is_same_day_or_clamped(d: date, n: int) -> None:
    r = months_before(d, n)
    assert (d.year * 12 + d.month) - (r.year * 12 + r.month) == n
    last = calendar.monthrange(r.year, r.month)[1]
    assert r.day == min(d.day, last)


@given(dates, dates, months)
def test_months_before_is_monotone(d1: date, d2: date, n: int) -> None:
    lo, hi = sorted((d1, d2))
    assert months_before(lo, n) <= months_before(hi, n)


@given(dates, months)
def test_add_months_round_trips_when_no_clamping(d: date, n: int) -> None:
    if d.day <= 28:
        assert months_before(add_months(d, n), n) == d


@given(dates, st.integers(min_value=1, max_value=60))
def test_first_day_months_after_is_the_first_such_day(a: date, n: int) -> None:
    e = first_day_months_after(a, n)
    assert months_before(e, n) >= a
    assert months_before(e - timedelta(days=1), n) < a
    assert e in (add_months(a, n), add_months(a, n) + timedelta(days=1))


@given(dates, st.integers(min_value=1, max_value=400))
def test_first_day_after_days(a: date, n: int) -> None:
    e = first_day_after(a, Period(days=n))
    assert period_before(e, Period(days=n)) >= a
    assert period_before(e - timedelta(days=1), Period(days=n)) < a


@given(dates, st.integers(min_value=1, max_value=24), dates)
def test_window_is_half_open(d: date, n: int, x: date) -> None:
    w = window_before(d, Period(months=n))
    assert w == DateWindow(months_before(d, n), d)
    assert w.contains(x) == (months_before(d, n) < x <= d)
    assert w.contains(d)
    assert not w.contains(w.start)


@given(dates, st.integers(min_value=1, max_value=24), dates, st.integers(0, 400))
def test_window_overlap_matches_day_by_day(d: date, n: int, s: date, length: int) -> None:
    w = window_before(d, Period(days=n))
    e = s + timedelta(days=length)
    by_days = any(w.contains(s + timedelta(days=k)) for k in range(length + 1))
    assert w.overlaps(s, e) == by_days


def _birthday(birth: date, year: int) -> date:
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return date(year, birth.month, birth.day)


@given(dates, dates)
def test_age_counts_birthdays_reached(birth: date, d: date) -> None:
    if d < birth:
        return
    reached = sum(1 for y in range(birth.year + 1, d.year + 1) if _birthday(birth, y) <= d)
    assert age_on(birth, d) == reached


def test_29_february_birthday_is_1_march_in_common_years() -> None:
    birth = date(2000, 2, 29)
    assert age_on(birth, date(2016, 2, 28)) == 15
    assert age_on(birth, date(2016, 2, 29)) == 16
    assert age_on(birth, date(2017, 2, 28)) == 16
    assert age_on(birth, date(2018, 2, 28)) == 17
    assert age_on(birth, date(2018, 3, 1)) == 18


@given(dates)
def test_iso_weeks(d: date) -> None:
    m = iso_monday(d)
    assert m.isoweekday() == 1 and m <= d < m + timedelta(days=7)
    assert m.isocalendar()[:2] == d.isocalendar()[:2]
    nxt = monday_after(d)
    assert nxt.isoweekday() == 1 and d < nxt <= d + timedelta(days=7)


def test_period_must_be_one_positive_unit() -> None:
    with pytest.raises(ValueError):
        Period()
    with pytest.raises(ValueError):
        Period(months=1, days=1)
    with pytest.raises(ValueError):
        Period(months=-1)
