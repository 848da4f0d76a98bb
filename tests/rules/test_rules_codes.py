"""The evaluator's column arithmetic on state codes and dates agrees with rules.states and
rules.dates, the plain definitions the reference evaluator uses."""

from __future__ import annotations

import polars as pl

import rules.evaluator as ev
from rules.states import STATES, negate


def test_swap_is_negate_on_every_code() -> None:
    codes = pl.Series("c", [*(ev.CODES[s] for s in STATES), None], dtype=ev.CODE)
    got = pl.DataFrame([codes]).select(ev._swap(pl.col("c"))).to_series()
    assert got.dtype == ev.CODE
    assert got.to_list() == [*(ev.CODES[negate(s)] for s in STATES), None]
