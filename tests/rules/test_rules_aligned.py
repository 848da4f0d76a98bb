"""Frames put alongside a subject frame: one row per subject key, in the subject's order."""

from __future__ import annotations

import polars as pl

import rules.evaluator as ev


def test_aligned_rows_follow_the_keys_with_null_rows_for_keys_missing() -> None:
    keys = pl.Series("_p", [3, 0, 2, 1], dtype=pl.UInt32)
    frame = pl.DataFrame(
        {"_p": pl.Series([1, 3, 9], dtype=pl.UInt32), "n": [10, 30, 90], "s": ["a", "c", "z"]}
    )
    got = ev._aligned(keys, frame, "_p").collect()
    assert got.to_dicts() == [
        {"n": 30, "s": "c"},
        {"n": None, "s": None},
        {"n": None, "s": None},
        {"n": 10, "s": "a"},
    ]
    picked = ev._aligned(keys, frame, "_p", [(pl.col("n") * 2).alias("twice")]).collect()
    assert picked.columns == ["twice"]
    assert picked.get_column("twice").to_list() == [60, None, None, 20]
