"""The rules engine's view of the source tables (rules.TABLES) is the extract contract's.

``rules`` may not import ``warehouse``, so it restates the table shapes; this
test keeps the two from drifting apart.
"""

from __future__ import annotations

import polars as pl
import pytest

import rules
import warehouse
from warehouse.validate import polars_dtype


@pytest.mark.parametrize("table", warehouse.TABLES, ids=lambda t: t.name)
def test_rules_sees_the_contract(table: warehouse.Table) -> None:
    view = rules.TABLES[table.name]
    assert list(view.columns) == list(table.column_names)
    for col in table.columns:
        want = polars_dtype(col)
        got = view.columns[col.name]
        if isinstance(want, pl.Decimal):
            assert isinstance(got, pl.Decimal) and got.scale == want.scale, col.name
        else:
            assert got == want, col.name
        if col.choices is not None and col.name in view.codes:
            assert tuple(view.codes[col.name]) == col.choices, col.name


def test_same_tables() -> None:
    assert set(rules.TABLES) == {t.name for t in warehouse.TABLES}
