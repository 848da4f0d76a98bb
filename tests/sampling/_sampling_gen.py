"""Hypothesis strategies for claim batches and sampling settings, and an independent
re-computation of the sample that uses only hashlib, fractions and plain sorting.

The reference deliberately imports nothing from ``sampling``: it is what an auditor
would write from docs/reperform-sample.md.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl
from hypothesis import strategies as st

from sampling import AlwaysRule, SamplingSettings

BASES = ["ssp", "ce"]
LOCALITIES = ["North", "South", "East", "Wëst"]
RATES = [Decimal(x) for x in ("0.01", "0.05", "0.1", "0.15", "0.2", "0.20", "0.25", "0.3")] + [
    Decimal(x)
    for x in (
        "0.33",
        "0.35",
        "0.5",
        "0.65",
        "0.7",
        "0.99",
        "1",
        "1.00",
        "0.125",
        "0.07",
        "0.28",
        "0.56",
    )
]
LADDER_STEPS = [Decimal(x) for x in ("0.1", "0.2", "0.25", "0.35", "0.5", "0.75", "0.9")]


@dataclass(frozen=True)
class Batch:
    """A claim batch as plain rows, and the same as a polars frame."""

    rows: tuple[dict[str, Any], ...]

    def frame(self) -> pl.DataFrame:
        """The claims frame draw_sample takes."""
        return pl.DataFrame(
            list(self.rows),
            schema={
                "family_id": pl.String,
                "basis": pl.String,
                "locality": pl.String,
                "manual_override": pl.Boolean,
                "extra_check": pl.String,
            },
            orient="row",
        )


family_ids = st.one_of(
    st.integers(0, 10**6).map(lambda i: f"F{i:06d}"),
    st.text(min_size=1, max_size=8),
)


@st.composite
def batches(draw: st.DrawFn, min_size: int = 0, max_size: int = 300) -> Batch:
    """0 to 300 claims with unique family ids, strata from small alphabets, rule columns."""
    ids = draw(st.lists(family_ids, min_size=min_size, max_size=max_size, unique=True))
    n = len(ids)
    bases = draw(st.lists(st.sampled_from(BASES), min_size=n, max_size=n))
    n_localities = draw(st.integers(1, len(LOCALITIES)))
    localities = draw(st.lists(st.sampled_from(LOCALITIES[:n_localities]), min_size=n, max_size=n))
    overrides = draw(
        st.lists(st.sampled_from([False, False, False, True, None]), min_size=n, max_size=n)
    )
    extra = draw(st.lists(st.sampled_from(["no", "no", "yes", None]), min_size=n, max_size=n))
    rows = tuple(
        {
            "family_id": f,
            "basis": b,
            "locality": loc,
            "manual_override": o,
            "extra_check": x,
        }
        for f, b, loc, o, x in zip(ids, bases, localities, overrides, extra, strict=True)
    )
    return Batch(rows)


seeds = st.text(min_size=1, max_size=24)


@st.composite
def sampling_settings(draw: st.DrawFn) -> SamplingSettings:
    """Random but valid settings: rate, minimum, strata, ladder, tolerance, rules."""
    steps = sorted(set(draw(st.lists(st.sampled_from(LADDER_STEPS), max_size=4))))
    ladder = (*steps, Decimal("1"))
    rate = draw(st.sampled_from([*RATES, *ladder]))
    strata = draw(st.sampled_from([("basis", "locality"), ("locality", "basis"), ("basis",), ()]))
    rules = draw(
        st.sampled_from(
            [
                (AlwaysRule(name="manual_override", column="manual_override", equals=True),),
                (),
                (
                    AlwaysRule(name="extra", column="extra_check", equals="yes"),
                    AlwaysRule(name="manual_override", column="manual_override", equals=True),
                ),
                (AlwaysRule(name="absent", column="no_such_column", equals=True),),
            ]
        )
    )
    return SamplingSettings(
        rate=rate,
        min_per_stratum=draw(st.integers(0, 4)),
        strata=strata,
        ladder=ladder,
        tolerance=draw(st.integers(0, 2)),
        always=rules,
    )


# --- the independent re-computation ------------------------------------------------


def ref_hash(seed: str, family_id: str) -> str:
    """SHA-256 of "seed:family_id" in UTF-8, lowercase hex."""
    return hashlib.sha256((seed + ":" + family_id).encode("utf-8")).hexdigest()


def ref_k(n: int, rate: Decimal | str, minimum: int) -> int:
    """k = max(minimum, ceil(rate * n)) capped at n, in exact fractions."""
    if n == 0:
        return 0
    return min(n, max(minimum, math.ceil(Fraction(str(rate)) * n)))


def ref_rule_reason(row: dict[str, Any], rules: tuple[AlwaysRule, ...]) -> str | None:
    """The first matching rule as rule:<name>; a missing column or a null never matches."""
    for rule in rules:
        value = row.get(rule.column)
        if value is not None and type(value) is type(rule.equals) and value == rule.equals:
            return "rule:" + rule.name
    return None


def reference_sample(
    rows: tuple[dict[str, Any], ...], seed: str, s: SamplingSettings
) -> list[dict[str, Any]]:
    """The sample as docs/reperform-sample.md describes it, row dicts sorted by stratum, rank."""
    strata: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        strata["|".join(str(row[c]) for c in s.strata)].append(row)
    out = []
    for stratum in sorted(strata):
        members = sorted(
            strata[stratum], key=lambda r: (ref_hash(seed, r["family_id"]), r["family_id"])
        )
        n = len(members)
        k = ref_k(n, s.rate, s.min_per_stratum)
        for rank, row in enumerate(members, start=1):
            reason = "random" if rank <= k else ref_rule_reason(row, s.always)
            out.append(
                {
                    "family_id": row["family_id"],
                    "stratum": stratum,
                    "hash": ref_hash(seed, row["family_id"]),
                    "rank": rank,
                    "stratum_size": n,
                    "k": k,
                    "sampled": reason is not None,
                    "reason": reason,
                }
            )
    return out
