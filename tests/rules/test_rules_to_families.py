"""The roll-up of per-person columns into families agrees with polars' own aggregation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

import polars as pl
from _rules_gen import runs
from hypothesis import given, settings
from hypothesis import strategies as st

import rules.evaluator as ev

How = Literal["max", "min", "any"]
COLUMNS: dict[str, tuple[pl.DataType, st.SearchStrategy[object]]] = {
    "code": (pl.Int8(), st.integers(0, 3)),
    "count": (pl.UInt32(), st.integers(0, 2**32 - 1)),
    "days": (pl.Date(), st.dates(date(1990, 1, 1), date(2030, 12, 31))),
    "rate": (pl.Float64(), st.floats(-1e6, 1e6, allow_nan=False)),
    "flag": (pl.Boolean(), st.booleans()),
    "money": (pl.Decimal(12, 2), st.decimals(-10_000, 10_000, places=2)),
}


def _expected(frame: pl.DataFrame, p2f: dict[str, tuple[str, How]]) -> pl.DataFrame:
    return (
        frame.group_by("_f", maintain_order=True)
        .agg(*[getattr(pl.col(c), how)().alias(n) for n, (c, how) in p2f.items()])
        .sort("_f")
    )


@settings(max_examples=120, deadline=None)
@given(frame=runs("_f", COLUMNS, max_run=6, max_key=50))
def test_to_families_matches_polars_aggregation(frame: pl.DataFrame) -> None:
    """By gathers: families of 1 to 6 people."""
    p2f: dict[str, tuple[str, How]] = {}
    for column in COLUMNS:
        p2f[f"{column}_max"] = (column, "max")
        p2f[f"{column}_min"] = (column, "min")
    p2f["flag_any"] = ("flag", "any")
    got = ev._to_families(frame, p2f)
    want = _expected(frame, p2f)
    assert got.schema == want.schema
    assert got.equals(want), (got, want)
    # money stays exact
    assert got.schema["money_max"] == pl.Decimal(12, 2)
    if frame.height:
        assert all(v is None or isinstance(v, Decimal) for v in got["money_max"])


def test_to_families_of_a_large_family() -> None:
    """More people in a family than gathers allowed (polars' group_by): the same answers."""
    people = ev._MAX_PASSES + 3
    frame = pl.DataFrame(
        {
            "_f": pl.Series([0] * people + [1], dtype=pl.UInt32),
            "code": pl.Series([None, *range(people - 2), 0, 2], dtype=pl.Int64),
            "flag": [None] * (people - 1) + [True, None],
        }
    )
    p2f: dict[str, tuple[str, How]] = {
        "top": ("code", "max"),
        "low": ("code", "min"),
        "some": ("flag", "any"),
    }
    got = ev._to_families(frame, p2f)
    assert got.to_dicts() == [
        {"_f": 0, "top": people - 3, "low": 0, "some": True},
        {"_f": 1, "top": 2, "low": 2, "some": False},
    ]
