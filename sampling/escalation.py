"""Escalation: a stratum with too many failed verifications climbs the rate ladder,
and its sample grows by the next claims in the same hash order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import polars as pl

from sampling.draw import REASON_ESCALATION, SAMPLE_SCHEMA, stratum_size
from sampling.settings import SamplingSettings, rate_text


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One stratum moving up one ladder step.

    ``failures`` is the stratum's failure count that caused it; ``added`` lists the
    family ids that joined the sample, in hash order (claims already in the sample,
    for instance by an always-verify rule, are not repeated). ``from_k`` and
    ``to_k`` are the rank cut-offs before and after.
    """

    stratum: str
    from_rate: Decimal
    to_rate: Decimal
    failures: int
    at: datetime
    added: tuple[str, ...]
    from_k: int
    to_k: int


@dataclass(frozen=True, slots=True)
class Escalated:
    """The sample after :func:`escalate`, and the steps taken (empty when none)."""

    sample: pl.DataFrame
    log: tuple[EscalationStep, ...]


def escalate(
    sample: pl.DataFrame,
    failures: Mapping[str, int],
    settings: SamplingSettings,
    at: datetime,
) -> Escalated:
    """Escalate every stratum whose failures call for it, by one ladder step each.

    ``sample`` is the current sample frame (from ``draw_sample`` or an earlier
    ``escalate``); ``failures`` maps a stratum to the number of its claims that have
    failed verification so far (strata left out have none); ``at`` is recorded in
    the log as the time of the escalation.

    A stratum escalates when its failures exceed ``settings.tolerance`` *and* exceed
    the count that moved it to its current rate (column ``escalated_on_failures``),
    and its rate is below the top of the ladder. It then moves to the lowest ladder
    step above its current rate (one step per call, however many failures arrived
    at once), k is recomputed at that rate (never lower than before), and the claims
    ranked up to the new k that were not yet sampled join with reason
    ``escalation``. No claim ever leaves the sample and no reason changes.

    So the same failure counts never escalate twice: calling ``escalate`` again with
    the same mapping returns the sample unchanged and an empty log. Each further
    failure in an escalated stratum moves it up again. Failure counts that go down
    change nothing (the sample never shrinks).
    """
    _check_sample(sample)
    strata = sample.group_by("stratum", maintain_order=True).agg(
        pl.col("stratum_size").first(),
        pl.col("rate").first(),
        pl.col("k").first(),
        pl.col("escalated_on_failures").first(),
        pl.len().alias("_rows"),
        pl.struct("stratum_size", "rate", "k", "escalated_on_failures")
        .n_unique()
        .alias("_variants"),
        (
            (pl.col("rank").min() == 1)
            & (pl.col("rank").max() == pl.len())
            & (pl.col("rank").n_unique() == pl.len())
        ).alias("_ranked"),
    )
    _check_strata(strata)
    known = set(strata.get_column("stratum").to_list())
    unknown = sorted(set(failures) - known)
    if unknown:
        raise ValueError(f"failures name strata not in the sample: {unknown[:5]}")
    negative = sorted(s for s, f in failures.items() if f < 0)
    if negative:
        raise ValueError(f"failure counts must not be negative: {negative[:5]}")

    moves: dict[str, tuple[Decimal, Decimal, int, int, int]] = {}
    for row in strata.sort("stratum").iter_rows(named=True):
        name: str = row["stratum"]
        count = failures.get(name, 0)
        if count <= settings.tolerance or count <= row["escalated_on_failures"]:
            continue
        current = Decimal(row["rate"])
        target = settings.next_rate(current)
        if target is None:
            continue
        to_k = max(row["k"], stratum_size(row["stratum_size"], target, settings.min_per_stratum))
        moves[name] = (current, target, count, row["k"], to_k)

    if not moves:
        return Escalated(sample=sample, log=())

    updates = pl.DataFrame(
        {
            "stratum": list(moves),
            "_to_rate": [rate_text(m[1]) for m in moves.values()],
            "_to_k": [m[4] for m in moves.values()],
            "_failures": [m[2] for m in moves.values()],
        },
        schema={
            "stratum": pl.String,
            "_to_rate": pl.String,
            "_to_k": pl.Int64,
            "_failures": pl.Int64,
        },
    )
    joined = sample.join(updates, on="stratum", how="left", maintain_order="left").with_columns(
        _added=(~pl.col("sampled") & (pl.col("rank") <= pl.col("_to_k"))).fill_null(False)
    )
    added = (
        joined.filter("_added")
        .sort("stratum", "rank")
        .group_by("stratum", maintain_order=True)
        .agg(pl.col("family_id"))
    )
    added_ids: dict[str, tuple[str, ...]] = {s: tuple(ids) for s, ids in added.iter_rows()}
    out = joined.with_columns(
        sampled=pl.col("sampled") | pl.col("_added"),
        reason=pl.when("_added").then(pl.lit(REASON_ESCALATION)).otherwise(pl.col("reason")),
        rate=pl.coalesce("_to_rate", "rate"),
        k=pl.coalesce("_to_k", "k"),
        escalated_on_failures=pl.coalesce("_failures", "escalated_on_failures"),
    ).select(list(SAMPLE_SCHEMA))

    log = tuple(
        EscalationStep(
            stratum=name,
            from_rate=from_rate,
            to_rate=to_rate,
            failures=count,
            at=at,
            added=added_ids.get(name, ()),
            from_k=from_k,
            to_k=to_k,
        )
        for name, (from_rate, to_rate, count, from_k, to_k) in moves.items()
    )
    return Escalated(sample=out, log=log)


def _check_sample(sample: pl.DataFrame) -> None:
    wrong = {
        c: str(sample.schema.get(c))
        for c, dtype in SAMPLE_SCHEMA.items()
        if sample.schema.get(c) != dtype
    }
    if wrong:
        raise ValueError(f"not a sample frame: columns missing or of the wrong type: {wrong}")


def _check_strata(strata: pl.DataFrame) -> None:
    for row in strata.iter_rows(named=True):
        name = row["stratum"]
        if row["_variants"] != 1:
            raise ValueError(f"stratum {name!r} has more than one rate, k or size")
        if row["_rows"] != row["stratum_size"] or not row["_ranked"]:
            raise ValueError(f"stratum {name!r} is not a whole stratum ranked 1..n")
        try:
            rate = Decimal(row["rate"])
        except InvalidOperation as exc:
            raise ValueError(f"stratum {name!r} has an unreadable rate {row['rate']!r}") from exc
        if not rate.is_finite() or not 0 < rate <= 1:
            raise ValueError(f"stratum {name!r} has a rate out of range: {row['rate']!r}")
