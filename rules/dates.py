"""Date arithmetic of the Outcome Plan.

Everything here follows the "Date arithmetic" section of the plan exactly:

* "N months before D" is the same day of the month N calendar months earlier,
  clamped to the last day of that month (2019-08-31 minus 6 months is
  2019-02-28).
* "The N months up to D" is the half-open interval (D - N months, D].
* An outcome over a window that must lie wholly after attachment is pending
  while its start is before A; it can first be met on the first day E' with
  E' - N months >= A, which is *not* always A + N months because of clamping.
* Ages are whole years; a 29 February birthday falls on 1 March in common years.
* Weeks are ISO weeks, Monday to Sunday.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "DateWindow",
    "Period",
    "add_months",
    "age_on",
    "first_day_after",
    "first_day_months_after",
    "iso_monday",
    "monday_after",
    "months_before",
    "period_before",
    "window_before",
]

ONE_DAY = timedelta(days=1)


def add_months(d: date, n: int) -> date:
    """Return the same day of the month ``n`` calendar months later (``n`` may be negative).

    When that day does not exist in the target month, the month's last day is
    used instead.
    """
    index = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(index, 12)
    month = month0 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(d.day, last))


def months_before(d: date, n: int) -> date:
    """Return "``n`` months before ``d``", clamped to month end (2019-08-31 - 6 = 2019-02-28)."""
    return add_months(d, -n)


def first_day_months_after(a: date, n: int) -> date:
    """Return the first day E' with ``months_before(E', n) >= a``.

    Because of month-end clamping this is not always ``a + n months``: for
    a = 2017-08-31 and n = 6, 2018-02-28 - 6 months = 2017-08-28 < a, so the
    answer is 2018-03-01. ``months_before`` is non-decreasing in its first
    argument, so the first candidate that works is the answer.
    """
    candidate = add_months(a, n)
    if months_before(candidate, n) >= a:
        return candidate
    return candidate + ONE_DAY


@dataclass(frozen=True, order=True)
class Period:
    """A length of time: whole calendar months or whole days (exactly one is non-zero)."""

    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        if (self.months == 0) == (self.days == 0) or self.months < 0 or self.days < 0:
            raise ValueError("a period is a positive number of months or of days")

    def __str__(self) -> str:
        if self.months:
            return f"{self.months} month{'s' if self.months != 1 else ''}"
        return f"{self.days} day{'s' if self.days != 1 else ''}"


def period_before(d: date, period: Period) -> date:
    """Return ``d`` minus ``period`` (months clamp to month end, days are exact)."""
    if period.months:
        return months_before(d, period.months)
    return d - timedelta(days=period.days)


def first_day_after(a: date, period: Period) -> date:
    """Return the first day D with ``D - period >= a``."""
    if period.months:
        return first_day_months_after(a, period.months)
    return a + timedelta(days=period.days)


@dataclass(frozen=True)
class DateWindow:
    """The half-open date interval (start, end]: it excludes start and includes end."""

    start: date
    end: date

    def contains(self, d: date) -> bool:
        """Whether ``d`` lies in (start, end]."""
        return self.start < d <= self.end

    def overlaps(self, first: date, last: date) -> bool:
        """Whether the closed span [first, last] covers any day of (start, end]."""
        return first <= self.end and last > self.start and first <= last

    def __str__(self) -> str:
        return f"({self.start.isoformat()}, {self.end.isoformat()}]"


def window_before(d: date, period: Period) -> DateWindow:
    """Return "the ``period`` up to ``d``": (d - period, d]."""
    return DateWindow(period_before(d, period), d)


def age_on(birth_date: date, d: date) -> int:
    """Return the age in whole years on ``d``.

    A 29 February birthday is reached on 1 March in common years: on 28 February
    of a common year the month-day pair (2, 28) still sorts before (2, 29).
    """
    before_birthday = (d.month, d.day) < (birth_date.month, birth_date.day)
    return d.year - birth_date.year - (1 if before_birthday else 0)


def iso_monday(d: date) -> date:
    """Return the Monday that starts the ISO week containing ``d``."""
    return d - timedelta(days=d.weekday())


def monday_after(d: date) -> date:
    """Return the first Monday strictly later than ``d``."""
    return d + timedelta(days=7 - d.weekday())
