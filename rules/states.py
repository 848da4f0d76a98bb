"""The four criterion states and how they combine, with earliest dates.

* **all**: not_met if any part is not_met; otherwise pending if any part is
  pending; otherwise unknown if any part is unknown; otherwise met.
* **any**: met if any part is met; otherwise pending if any part is pending;
  otherwise unknown if any part is unknown; otherwise not_met.
* A pending combination carries the latest (all) or earliest (any) of its
  pending parts' earliest dates; a pending part with no date gives no date.
* **not** swaps met and not_met; pending (with its date) and unknown stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Literal, get_args

__all__ = ["STATES", "State", "combine", "combine_dates", "negate"]

State = Literal["met", "not_met", "pending", "unknown"]
STATES: tuple[State, ...] = get_args(State)

_ORDER: dict[str, tuple[State, ...]] = {
    "all": ("not_met", "pending", "unknown", "met"),
    "any": ("met", "pending", "unknown", "not_met"),
}


def combine_dates(how: Literal["all", "any"], dates: Iterable[date | None]) -> date | None:
    """The earliest date of a pending combination from its pending parts' dates."""
    known: list[date] = []
    for d in dates:
        if d is None:
            return None
        known.append(d)
    if not known:
        return None
    return max(known) if how == "all" else min(known)


def combine(
    how: Literal["all", "any"], parts: Iterable[tuple[State, date | None]]
) -> tuple[State, date | None]:
    """Combine (state, earliest date) pairs with ``all`` or ``any``.

    With no parts, ``all`` is met and ``any`` is not_met.
    """
    items = list(parts)
    states = {s for s, _ in items}
    first, second, third, last = _ORDER[how]
    for state in (first, second, third):
        if state in states:
            if state == "pending":
                return state, combine_dates(how, (d for s, d in items if s == "pending"))
            return state, None
    return last, None


def negate(state: State) -> State:
    """``not``: met and not_met swap; pending and unknown stay."""
    if state == "met":
        return "not_met"
    if state == "not_met":
        return "met"
    return state
