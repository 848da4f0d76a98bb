"""Projecting results claims against the quota: run rate and pipeline conversion, side by side.

The model is a set of pure functions over polars frames (no database, no
files), so each can be checked on a hand-built history:

* :func:`run_rate`: the mean monthly claims over the last N months before E,
  carried forward to the programme end.
* :func:`lag_hazard` and :func:`pipeline_expectation`: the empirical
  distribution of months from attachment to claim, as a discrete-time life
  table (each month since attachment, the share of the families still
  unclaimed then that were claimed that month, from every attached family
  whose exposure reaches that month), applied to each unclaimed, attached,
  eligible family conditionally on it being unclaimed so far and, for a
  pending family, on no claim before its earliest possible date. Families
  claimable at E count in the month after E.
* :func:`build_projection`: the monthly table, the headline figures and the
  pipeline by locality. With fewer than ``min_history`` claimed families with
  a known attachment date, the pipeline method falls back to the run rate and
  says so.

:func:`gather_inputs` reads what the model needs from the warehouse (and
evaluates the Outcome Plan at E); :func:`write_projection` writes the table
(CSV, XLSX), the chart (PNG, SVG), the pipeline by locality (CSV), the
one-page HTML report and a JSON manifest; :func:`run_projection` does all
three for the CLI.

Conventions: months are computed as dates (or month numbers, ``year * 12 +
month - 1``) and shown as ``YYYY-MM``. E's month is an actual month (it holds
the claims made up to E); projections start in the month after E. Claims are
placed in the month of their claim window. Counts are ints: a projected
cumulative count is the expected value rounded half up, and a projected
monthly count is the difference of consecutive cumulative counts, so the
months add up to the total. Money is Decimal.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from sqlalchemy import Engine

import warehouse
from claims import evaluation
from claims.outputs import Formats, WrittenFile, csv_text, money_value, write_bytes
from claims.render import render
from claims.settings import Settings

__all__ = [
    "CLAIM_COLUMNS",
    "DEFAULT_LOOKBACK_MONTHS",
    "DEFAULT_MIN_HISTORY",
    "FAMILY_COLUMNS",
    "LOCALITY_COLUMNS",
    "PIPELINE_STATUSES",
    "TABLE_COLUMNS",
    "MethodResult",
    "Projection",
    "ProjectionInputs",
    "ProjectionRun",
    "RunRate",
    "build_projection",
    "chart_bytes",
    "cumulative_path",
    "default_as_of",
    "earliest_possible",
    "gather_inputs",
    "lag_hazard",
    "month_end",
    "month_index",
    "month_label",
    "month_start",
    "pipeline_expectation",
    "run_projection",
    "run_rate",
    "write_projection",
]

SCHEMA_VERSION = "1"
DEFAULT_LOOKBACK_MONTHS: int = Settings.model_fields["run_rate_months"].default
"""Months of claims the run rate averages (the setting ``run_rate_months``)."""
DEFAULT_MIN_HISTORY: int = Settings.model_fields["min_history"].default
"""Fewer claimed families than this with a known attachment date: the pipeline falls back
(the setting ``min_history``)."""

PIPELINE_STATUSES = ("claimable", "pending", "unknown", "not_met")
"""Evaluation statuses of attached, eligible families not yet claimed: the live pipeline."""
_IN_PIPELINE = (
    pl.col("attached")
    & pl.col("eligible")
    & pl.col("status").is_in(PIPELINE_STATUSES)
    & pl.col("attached_on").is_not_null()
)
"""The families the pipeline projects: in the pipeline, attached on a known date."""

CLAIM_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "month": pl.Date(),  # the first day of the claim window's month
    "attached_on": pl.Date(),  # null when unknown
    "locality": pl.String(),
    "source": pl.String(),  # history (the claims extract) or batch (this system)
    "withdrawn": pl.Boolean(),
}
"""Claims made up to E, one row per family (see :func:`gather_inputs`)."""

FAMILY_COLUMNS: dict[str, pl.DataType] = {
    "family_id": pl.String(),
    "locality": pl.String(),
    "attached_on": pl.Date(),
    "attached": pl.Boolean(),
    "eligible": pl.Boolean(),
    "status": pl.String(),  # claims.evaluation.STATUSES
    "earliest": pl.Date(),  # pending families: the earliest date an outcome could be met
}
"""Every family's evaluation at E (see :func:`earliest_possible`)."""

TABLE_COLUMNS = (
    "month",
    "actual_claims",
    "actual_cumulative",
    "withdrawn_claims",
    "run_rate_claims",
    "run_rate_cumulative",
    "pipeline_claims",
    "pipeline_cumulative",
    "quota",
)
"""The monthly table's columns as written (``month`` as ``YYYY-MM``)."""

LOCALITY_COLUMNS = (
    "locality",
    "attached",
    "eligible",
    "already_claimed",
    "claimable",
    "pending",
    "unknown",
    "not_met",
    "expected_claims_by_programme_end",
)
"""The pipeline by locality as written (``unknown``: blocked by unknown evidence)."""

METHOD_NAMES = {"run_rate": "Run rate", "pipeline": "Pipeline conversion"}

TABLE_CSV = "projection-table.csv"
TABLE_XLSX = "projection-table.xlsx"
CHART_PNG = "projection-chart.png"
CHART_SVG = "projection-chart.svg"
REPORT_HTML = "projection-report.html"
LOCALITY_CSV = "pipeline-by-locality.csv"
MANIFEST_JSON = "projection.json"
REPORT_TEMPLATE = "projection.html.j2"

# ---------------------------------------------------------------------------
# months


def month_index(day: dt.date) -> int:
    """The month holding ``day`` as a number: ``year * 12 + month - 1``."""
    return day.year * 12 + day.month - 1


def month_start(index: int) -> dt.date:
    """The first day of month ``index``."""
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> dt.date:
    """The last day of month ``index``."""
    return month_start(index + 1) - dt.timedelta(days=1)


def month_label(index: int) -> str:
    """Month ``index`` as ``YYYY-MM``."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month_name(index: int) -> str:
    return month_start(index).strftime("%b %Y")


def _is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def _round_half_up(value: Fraction | float) -> int:
    return (
        math.floor(value + Fraction(1, 2))
        if isinstance(value, Fraction)
        else math.floor(value + 0.5)
    )


# ---------------------------------------------------------------------------
# the run rate


@dataclass(frozen=True)
class RunRate:
    """The mean monthly claims (withdrawn ones excluded) over the look-back months."""

    per_month: Fraction
    first_month: int
    last_month: int
    claims: int

    @property
    def months(self) -> int:
        """Months averaged over."""
        return max(0, self.last_month - self.first_month + 1)

    @property
    def period(self) -> str:
        """The look-back months in words, e.g. ``Sep 2017 to Feb 2018``."""
        if self.months == 0:
            return "no whole month before E"
        if self.months == 1:
            return _month_name(self.first_month)
        return f"{_month_name(self.first_month)} to {_month_name(self.last_month)}"


def run_rate(claims: pl.DataFrame, as_of: dt.date, lookback_months: int) -> RunRate:
    """The mean monthly claims over the last ``lookback_months`` months before E.

    The look-back ends with E's month when E is that month's last day (a claim
    window's E), else with the month before. It starts no earlier than the
    month of the first claim, so a programme younger than the look-back is not
    diluted by months before it began. Withdrawn claims do not count.
    ``claims`` has at least ``month`` and ``withdrawn`` (:data:`CLAIM_COLUMNS`).
    """
    if lookback_months < 1:
        raise warehouse.WarehouseError("the run-rate look-back must be at least 1 month")
    last = month_index(as_of) if _is_month_end(as_of) else month_index(as_of) - 1
    first = last - lookback_months + 1
    counted = claims.filter(~pl.col("withdrawn"))
    months = [month_index(d) for d in counted.get_column("month").to_list()]
    if months:
        first = max(first, min(months))
    n = last - first + 1
    in_window = sum(1 for m in months if first <= m <= last)
    return RunRate(Fraction(in_window, n) if n > 0 else Fraction(0), first, last, in_window)


# ---------------------------------------------------------------------------
# the pipeline


def earliest_possible() -> pl.Expr:
    """The earliest date a pending family's outcome could be met (null when not known).

    From an evaluation's ``state:ssp``, ``earliest:ssp``, ``state:ce`` and
    ``earliest:ce``: a family is claimed on whichever route comes first, so
    it is the earlier date of its pending routes; a pending route with no date
    makes it unknown (the rules engine's ``any``). Null for families not pending.
    """
    ssp_p = pl.col("state:ssp").cast(pl.String) == "pending"
    ce_p = pl.col("state:ce").cast(pl.String) == "pending"
    ssp_d, ce_d = pl.col("earliest:ssp"), pl.col("earliest:ce")
    return (
        pl.when(ssp_p & ce_p)
        .then(
            pl.when(ssp_d.is_not_null() & ce_d.is_not_null())
            .then(pl.min_horizontal(ssp_d, ce_d))
            .otherwise(pl.lit(None, pl.Date))
        )
        .when(ssp_p)
        .then(ssp_d)
        .when(ce_p)
        .then(ce_d)
        .otherwise(pl.lit(None, pl.Date))
        .alias("earliest")
    )


def _events_and_exposures(
    claims: pl.DataFrame, families: pl.DataFrame, as_of: dt.date
) -> tuple[list[int], list[int]]:
    """Lags (months from A to claim) of claimed families, and months since A of the pipeline."""
    e = month_index(as_of)
    lags = [
        max(0, month_index(m) - month_index(a))
        for m, a in claims.select("month", "attached_on").iter_rows()
        if a is not None
    ]
    open_ = families.filter(_IN_PIPELINE)
    exposures = [max(0, e - month_index(a)) for a in open_.get_column("attached_on").to_list()]
    return lags, exposures


def lag_hazard(claims: pl.DataFrame, families: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """The life table of months from attachment to claim, estimated at E.

    For each lag k (months from the attachment month to the claim month):
    ``at_risk`` is the number of families still unclaimed at the start of lag
    k whose history reaches k (claimed families with a lag of at least k, and
    unclaimed attached eligible families attached at least k months before E's
    month); ``claims`` is the number claimed at lag k; ``hazard`` is
    claims / at_risk, the chance of a claim at lag k for a family unclaimed
    until then. Withdrawn claims were claims, so they count as claimed here;
    claims with no known attachment date are left out. Columns: lag,
    at_risk, claims, hazard.
    """
    lags, exposures = _events_and_exposures(claims, families, as_of)
    top = max([*lags, *exposures], default=-1)
    events = [0] * (top + 2)
    ended = [0] * (top + 2)  # families whose history stops at lag k (claimed or censored)
    for k in lags:
        events[k] += 1
        ended[k] += 1
    for m in exposures:
        ended[m] += 1
    rows: list[tuple[int, int, int, float]] = []
    at_risk = len(lags) + len(exposures)
    for k in range(top + 1):
        rows.append((k, at_risk, events[k], events[k] / at_risk if at_risk else 0.0))
        at_risk -= ended[k]
    return pl.DataFrame(
        rows,
        schema={"lag": pl.Int64, "at_risk": pl.Int64, "claims": pl.Int64, "hazard": pl.Float64},
        orient="row",
    )


def pipeline_expectation(
    families: pl.DataFrame, hazard: pl.DataFrame, as_of: dt.date, end_month: int
) -> pl.DataFrame:
    """Expected claims from the live pipeline, by locality and month, up to ``end_month``.

    Each attached, eligible, unclaimed family (:data:`PIPELINE_STATUSES`) m
    months after its attachment month at E: claimable families are claimed in
    the month after E; the others at lag k > m with probability
    ``hazard[k] * prod(1 - hazard[j] for j in k0..k-1)``, where k0 is m + 1,
    or later when a pending family's earliest possible date falls in a later
    month (no claim before it). Families attached on an unknown date are left
    out. Columns: locality, month (Date), expected (Float64).
    """
    e = month_index(as_of)
    h = hazard.sort("lag").get_column("hazard").to_list()
    pipe = families.filter(_IN_PIPELINE)
    # families sharing attachment month, status and first possible month share a distribution
    groups = (
        pipe.with_columns(
            pl.col("attached_on").dt.truncate("1mo").alias("_a"),
            pl.when(pl.col("status") == "pending")
            .then(pl.col("earliest").dt.truncate("1mo"))
            .alias("_first"),
            (pl.col("status") == "claimable").alias("_now"),
        )
        .group_by("locality", "_a", "_first", "_now")
        .agg(pl.len().alias("n"))
    )
    out: dict[tuple[str, int], float] = {}
    for locality, a_day, first_day, now, n in groups.iter_rows():
        a = month_index(a_day)
        if now:
            if e + 1 <= end_month:
                out[(locality, e + 1)] = out.get((locality, e + 1), 0.0) + n
            continue
        k0 = max(e + 1, month_index(first_day) if first_day is not None else e + 1, a) - a
        surviving = 1.0
        for k in range(k0, len(h)):
            if a + k > end_month:
                break
            p = surviving * h[k]
            if p:
                out[(locality, a + k)] = out.get((locality, a + k), 0.0) + n * p
            surviving *= 1.0 - h[k]
    rows = [(loc, month_start(m), v) for (loc, m), v in sorted(out.items())]
    return pl.DataFrame(
        rows,
        schema={"locality": pl.String, "month": pl.Date, "expected": pl.Float64},
        orient="row",
    )


def cumulative_path(
    to_date: int, expected: Mapping[int, Fraction | float], first: int, last: int
) -> list[tuple[int, int, int]]:
    """(month, claims, cumulative) for months ``first``..``last`` from ``to_date`` claims.

    The cumulative count is ``to_date`` plus the expected claims so far,
    rounded half up; a month's claims are the difference from the month
    before, so the months add up to the cumulative count.
    """
    rows = []
    running: Fraction | float = Fraction(0)
    previous = to_date
    for m in range(first, last + 1):
        running = running + expected.get(m, 0)
        cumulative = to_date + _round_half_up(running)
        rows.append((m, cumulative - previous, cumulative))
        previous = cumulative
    return rows


# ---------------------------------------------------------------------------
# the projection


@dataclass(frozen=True)
class ProjectionInputs:
    """What the model needs: claims to E (:data:`CLAIM_COLUMNS`) and families at E
    (:data:`FAMILY_COLUMNS`), and where they came from."""

    as_of: dt.date
    claims: pl.DataFrame
    families: pl.DataFrame
    plan_name: str = ""
    plan_hash: str = ""
    evaluation_run_id: int | None = None
    load_batches: Mapping[str, int] | None = None


@dataclass(frozen=True)
class MethodResult:
    """One method's projection: the total at the programme end, the gap, when the quota is met."""

    key: str  # run_rate | pipeline
    name: str
    total: int
    projected_claims: int  # claims after E, to the programme end
    gap: int  # quota - total: positive is a shortfall, negative a surplus
    quota_month: dt.date | None  # the first day of the month the quota is reached
    fallback: bool
    note: str
    payment: Decimal  # results payments for projected_claims

    @property
    def quota_reached(self) -> str:
        """``YYYY-MM`` of the month the quota is reached, or ``not reached``."""
        return month_label(month_index(self.quota_month)) if self.quota_month else "not reached"

    @property
    def gap_text(self) -> str:
        """The gap in words."""
        if self.gap > 0:
            return f"{self.gap:,} short"
        if self.gap < 0:
            return f"{-self.gap:,} over"
        return "on the quota exactly"


@dataclass(frozen=True)
class Projection:
    """Claims to date and both methods' projections to the programme end."""

    as_of: dt.date
    quota: int
    programme_end: dt.date
    lookback_months: int
    min_history: int
    payment_per_claim: Decimal
    claims_to_date: int
    withdrawn: int
    history_claims: int  # from the claims extract
    batch_claims: int  # submitted by this system (withdrawn ones not counted)
    months_left: int
    still_to_claim: int
    needed_per_month: int | None  # None when no month is left
    run_rate: RunRate
    history_families: int  # claimed families with a known attachment date
    methods: tuple[MethodResult, ...]
    table: pl.DataFrame  # month (Date) and TABLE_COLUMNS[1:]
    hazard: pl.DataFrame
    by_locality: pl.DataFrame
    pending_by_month: pl.DataFrame  # locality, month (Date, null = not known), families
    notes: tuple[str, ...]
    plan_name: str = ""
    plan_hash: str = ""
    evaluation_run_id: int | None = None
    load_batches: Mapping[str, int] | None = None

    @property
    def fallback(self) -> bool:
        """Whether the pipeline method fell back to the run rate (thin history)."""
        return any(m.fallback for m in self.methods)

    def method(self, key: str) -> MethodResult:
        """The result of method ``key`` (``run_rate`` or ``pipeline``)."""
        return next(m for m in self.methods if m.key == key)

    @property
    def payment_to_date(self) -> Decimal:
        """Results payments for the claims to date."""
        return money_value(self.payment_per_claim * self.claims_to_date)

    @property
    def needed_text(self) -> str:
        """The monthly claims needed to meet the quota, in words."""
        if self.still_to_claim == 0:
            return "none: the quota is met"
        if self.needed_per_month is None:
            return "the programme has ended"
        return f"{self.needed_per_month:,} a month for {self.months_left} months"

    def headline_items(self) -> list[tuple[str, str]]:
        """The headline figures as (label, value) text, in reading order."""
        rr = self.run_rate
        items = [
            ("E (projection date)", self.as_of.isoformat()),
            ("Claims to date", f"{self.claims_to_date:,}"),
            ("Withdrawn claims (not counted)", f"{self.withdrawn:,}"),
            ("Quota", f"{self.quota:,} by {self.programme_end.isoformat()}"),
            ("Still to claim", f"{self.still_to_claim:,}"),
            ("Monthly claims needed", self.needed_text),
            (
                "Run rate",
                f"{_rate_text(rr.per_month)} a month ({rr.claims:,} claims, {rr.period})",
            ),
        ]
        for m in self.methods:
            label = m.name + (" (fell back to run rate)" if m.fallback else "")
            items.append((f"{label}: total at programme end", f"{m.total:,}"))
            items.append((f"{label}: gap to quota", m.gap_text))
            items.append((f"{label}: quota reached", m.quota_reached))
        return items

    def document(self) -> dict[str, Any]:
        """The headline figures and their provenance as a JSON-ready dict."""
        rr = self.run_rate
        return {
            "schema_version": SCHEMA_VERSION,
            "as_of": self.as_of.isoformat(),
            "quota": self.quota,
            "programme_end": self.programme_end.isoformat(),
            "claims_to_date": self.claims_to_date,
            "claims_from_history": self.history_claims,
            "claims_from_batches": self.batch_claims,
            "withdrawn_claims": self.withdrawn,
            "still_to_claim": self.still_to_claim,
            "months_left": self.months_left,
            "needed_per_month": self.needed_per_month,
            "payment_per_claim": format(money_value(self.payment_per_claim), "f"),
            "payment_to_date": format(self.payment_to_date, "f"),
            "run_rate": {
                "per_month": _rate_text(rr.per_month),
                "claims": rr.claims,
                "from": month_label(rr.first_month),
                "to": month_label(rr.last_month),
                "lookback_months": self.lookback_months,
            },
            "history_families": self.history_families,
            "min_history": self.min_history,
            "methods": {
                m.key: {
                    "name": m.name,
                    "total_at_programme_end": m.total,
                    "projected_claims": m.projected_claims,
                    "gap": m.gap,
                    "quota_reached": m.quota_reached,
                    "quota_reached_month_end": month_end(month_index(m.quota_month)).isoformat()
                    if m.quota_month
                    else None,
                    "fallback": m.fallback,
                    "note": m.note,
                    "projected_payment": format(m.payment, "f"),
                }
                for m in self.methods
            },
            "notes": list(self.notes),
            "plan": {"name": self.plan_name, "hash": self.plan_hash},
            "evaluation_run_id": self.evaluation_run_id,
            "load_batches": dict(self.load_batches or {}),
            "software_version": evaluation.software_version(),
        }


def _rate_text(rate: Fraction) -> str:
    """A rate to one decimal place, half up (89.5, 12.3)."""
    tenths = _round_half_up(rate * 10)
    return f"{tenths // 10:,}.{tenths % 10}"


def _quota_month(cumulative: Iterable[tuple[int, int]], quota: int) -> dt.date | None:
    for m, c in cumulative:
        if c >= quota:
            return month_start(m)
    return None


def build_projection(
    inputs: ProjectionInputs,
    *,
    quota: int,
    programme_end: dt.date,
    lookback_months: int = DEFAULT_LOOKBACK_MONTHS,
    min_history: int = DEFAULT_MIN_HISTORY,
    payment_per_claim: Decimal = Settings.model_fields["payment_per_claim"].default,
) -> Projection:
    """Both projections, the monthly table, the headline figures and the pipeline by locality.

    ``inputs.claims`` must hold only claims made up to E. The table runs from
    the first claim's month (or E's, with no claims) to the programme end's
    month; projections start in the month after E.
    """
    if quota < 1:
        raise warehouse.WarehouseError("the quota must be at least 1")
    if min_history < 0:
        raise warehouse.WarehouseError("the thin-history threshold cannot be negative")
    as_of, claims, families = inputs.as_of, inputs.claims, inputs.families
    e, end = month_index(as_of), month_index(programme_end)

    counting = claims.filter(~pl.col("withdrawn"))
    withdrawn = claims.height - counting.height
    to_date = counting.height
    actual: dict[int, int] = {}
    pulled: dict[int, int] = {}
    for month, gone in claims.select("month", "withdrawn").iter_rows():
        target = pulled if gone else actual
        target[month_index(month)] = target.get(month_index(month), 0) + 1
    first = min([*actual, *pulled, e])
    last = max(end, e)

    rr = run_rate(claims, as_of, lookback_months)
    run_path = cumulative_path(
        to_date, dict.fromkeys(range(e + 1, end + 1), rr.per_month), e + 1, end
    )

    hazard = lag_hazard(claims, families, as_of)
    # claimed families with a known attachment date: the lags the hazard is estimated from
    history_families = int(claims.get_column("attached_on").is_not_null().sum())
    fallback = history_families < min_history
    expected = None
    if fallback:
        pipe_path = run_path
        pipe_note = (
            f"Only {history_families:,} claimed families have a known attachment date, fewer "
            f"than {min_history:,}: too few to estimate the months from attachment to claim, "
            "so this method falls back to the run rate."
        )
    else:
        expected = pipeline_expectation(families, hazard, as_of, end)
        by_month = expected.group_by("month").agg(pl.col("expected").sum())
        pipe_path = cumulative_path(
            to_date,
            {month_index(m): v for m, v in by_month.iter_rows()},
            e + 1,
            end,
        )
        pipe_note = (
            f"Months from attachment to claim estimated from {history_families:,} claimed "
            "families, applied to each attached, eligible family not yet claimed; "
            "families claimable at E count in the next window."
        )
    run_note = (
        f"{_rate_text(rr.per_month)} claims a month (the mean of {rr.period}) "
        "carried forward to the programme end."
    )

    actual_cum: list[tuple[int, int]] = []
    running = 0
    for m in range(first, e + 1):
        running += actual.get(m, 0)
        actual_cum.append((m, running))

    methods = []
    for key, path, note, fell_back in (
        ("run_rate", run_path, run_note, False),
        ("pipeline", pipe_path, pipe_note, fallback),
    ):
        total = path[-1][2] if path else to_date
        projected = total - to_date
        methods.append(
            MethodResult(
                key=key,
                name=METHOD_NAMES[key],
                total=total,
                projected_claims=projected,
                gap=quota - total,
                quota_month=_quota_month([*actual_cum, *((m, c) for m, _, c in path)], quota),
                fallback=fell_back,
                note=note,
                payment=money_value(payment_per_claim * projected),
            )
        )

    months_left = max(0, end - e)
    still = max(0, quota - to_date)
    needed = (-(-still // months_left) if months_left else None) if still else 0

    table = _table(first, last, e, actual_cum, actual, pulled, run_path, pipe_path, quota)
    by_locality, pending = _pipeline_view(families, expected, as_of)
    notes = [pipe_note] if fallback else []
    notes.append(
        "Withdrawn claims are shown separately and do not count towards the quota."
        if withdrawn
        else "No claims have been withdrawn."
    )
    notes.append(
        "The pipeline holds only families attached by E; families attached later are not in it."
    )
    return Projection(
        as_of=as_of,
        quota=quota,
        programme_end=programme_end,
        lookback_months=lookback_months,
        min_history=min_history,
        payment_per_claim=payment_per_claim,
        claims_to_date=to_date,
        withdrawn=withdrawn,
        history_claims=counting.filter(pl.col("source") == "history").height,
        batch_claims=counting.filter(pl.col("source") == "batch").height,
        months_left=months_left,
        still_to_claim=still,
        needed_per_month=needed,
        run_rate=rr,
        history_families=history_families,
        methods=tuple(methods),
        table=table,
        hazard=hazard,
        by_locality=by_locality,
        pending_by_month=pending,
        notes=tuple(notes),
        plan_name=inputs.plan_name,
        plan_hash=inputs.plan_hash,
        evaluation_run_id=inputs.evaluation_run_id,
        load_batches=inputs.load_batches,
    )


def _table(
    first: int,
    last: int,
    e: int,
    actual_cum: list[tuple[int, int]],
    actual: Mapping[int, int],
    pulled: Mapping[int, int],
    run_path: Sequence[tuple[int, int, int]],
    pipe_path: Sequence[tuple[int, int, int]],
    quota: int,
) -> pl.DataFrame:
    cum = dict(actual_cum)
    run = {m: (c, t) for m, c, t in run_path}
    pipe = {m: (c, t) for m, c, t in pipe_path}
    rows = []
    for m in range(first, last + 1):
        past = m <= e
        rows.append(
            (
                month_start(m),
                actual.get(m, 0) if past else None,
                cum[m] if past else None,
                pulled.get(m, 0) if past else None,
                run[m][0] if m in run else None,
                run[m][1] if m in run else None,
                pipe[m][0] if m in pipe else None,
                pipe[m][1] if m in pipe else None,
                quota,
            )
        )
    schema: dict[str, Any] = {"month": pl.Date}
    schema.update({c: pl.Int64 for c in TABLE_COLUMNS[1:]})
    return pl.DataFrame(rows, schema=schema, orient="row")


def _pipeline_view(
    families: pl.DataFrame, expected: pl.DataFrame | None, as_of: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The managers' view by locality (and an ``All`` row), and pending families by month."""
    f = families.filter(pl.col("attached"))
    status = pl.col("status")
    by = (
        f.group_by("locality")
        .agg(
            pl.len().alias("attached"),
            pl.col("eligible").sum().alias("eligible"),
            (status == "already_claimed").sum().alias("already_claimed"),
            (status == "claimable").sum().alias("claimable"),
            (status == "pending").sum().alias("pending"),
            (status == "unknown").sum().alias("unknown"),
            (status == "not_met").sum().alias("not_met"),
        )
        .with_columns(pl.exclude("locality").cast(pl.Int64))
    )
    total = by.select(pl.lit("All").alias("locality"), pl.exclude("locality").sum())
    if expected is not None:
        exp = expected.group_by("locality").agg(pl.col("expected").sum())
        by = by.join(exp, on="locality", how="left").with_columns(pl.col("expected").fill_null(0.0))
        total = total.with_columns(
            pl.lit(float(expected.get_column("expected").sum())).alias("expected")
        )
    else:
        by = by.with_columns(pl.lit(None, pl.Float64).alias("expected"))
        total = total.with_columns(pl.lit(None, pl.Float64).alias("expected"))
    by = pl.concat([by.sort("locality"), total.cast(by.schema)])

    next_month = month_start(month_index(as_of) + 1)
    pending = (
        f.filter(status == "pending")
        .with_columns(
            pl.when(pl.col("earliest").is_null())
            .then(pl.lit(None, pl.Date))
            .otherwise(pl.max_horizontal(pl.col("earliest").dt.truncate("1mo"), pl.lit(next_month)))
            .alias("month")
        )
        .group_by("locality", "month")
        .agg(pl.len().cast(pl.Int64).alias("families"))
        .sort("locality", "month", nulls_last=True)
    )
    return by, pending


# ---------------------------------------------------------------------------
# gathering the inputs from the warehouse


def default_as_of(engine: Engine, today: dt.date | None = None) -> dt.date:
    """E when none is given: the latest finalised claim batch's E, else today."""
    finalised = [b for b in warehouse.list_batches(engine) if b.finalised]
    if finalised:
        return max(b.as_of for b in finalised)
    return today or dt.date.today()


def gather_inputs(
    engine: Engine, as_of: dt.date, plan_path: Path | None = None
) -> ProjectionInputs:
    """Claims made up to E and every family's state at E, from the warehouse.

    Claims: the ``claims`` history extract (claimed on or before E; attachment
    date and locality from the families extract) and every line this system
    submitted in a batch with E on or before ``as_of`` (withdrawn lines
    flagged: they are shown but do not count). Families: the Outcome Plan
    evaluated at E (the run is recorded, as every evaluation is).
    """
    outcome = evaluation.evaluate(engine, as_of, plan_path)
    ev = outcome.families
    families = ev.select(
        "family_id",
        "locality",
        "attached_on",
        pl.col("attached").fill_null(False),
        pl.col("eligible").fill_null(False),
        "status",
        earliest_possible(),
    ).cast(FAMILY_COLUMNS)  # type: ignore[arg-type]

    parts: list[pl.DataFrame] = []
    tables = outcome.sources.tables  # as the evaluation read them (families always is)
    if "claims" in tables:
        history = tables["claims"].filter(pl.col("claimed_on") <= as_of).collect()
        fam = tables["families"].select("family_id", "locality", "attached_on").collect()
        parts.append(
            history.join(fam, on="family_id", how="left").select(
                "family_id",
                (pl.col("claim_window") + "-01").str.to_date("%Y-%m-%d").alias("month"),
                "attached_on",
                "locality",
                pl.lit("history").alias("source"),
                pl.lit(False).alias("withdrawn"),
            )
        )
    lines = warehouse.submitted_lines(engine).filter(pl.col("as_of") <= as_of)
    parts.append(
        lines.select(
            "family_id",
            (pl.col("window") + "-01").str.to_date("%Y-%m-%d").alias("month"),
            "attached_on",
            "locality",
            pl.lit("batch").alias("source"),
            (pl.col("status") == "withdrawn").alias("withdrawn"),
        )
    )
    claims = (
        pl.concat([p.cast(CLAIM_COLUMNS) for p in parts])  # type: ignore[arg-type]
        .unique("family_id", keep="first", maintain_order=True)
        .filter(pl.col("month") <= as_of)
    )
    run = outcome.run
    return ProjectionInputs(
        as_of=as_of,
        claims=claims,
        families=families,
        plan_name=run.plan_name,
        plan_hash=run.plan_hash,
        evaluation_run_id=run.id,
        load_batches=dict(run.load_batches),
    )


# ---------------------------------------------------------------------------
# the chart


def _chart_figure(p: Projection) -> Any:
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(11, 6.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax: Any = fig.add_subplot()  # matplotlib's stubs want floats where it takes dates
    t = p.table
    e = month_index(p.as_of)
    months = [month_index(d) for d in t.get_column("month").to_list()]
    # a month's cumulative count is plotted at the month's end
    x = [month_end(m) for m in months]
    actual = [
        (xi, c)
        for xi, m, c in zip(x, months, t.get_column("actual_cumulative"), strict=True)
        if m <= e
    ]
    if actual:
        ax.plot(
            [a for a, _ in actual],
            [c for _, c in actual],
            color="#1b1f24",
            linewidth=2.4,
            marker="o",
            markersize=3,
            label=f"Actual claims ({p.claims_to_date:,} to {p.as_of:%d %b %Y})",
            zorder=4,
        )
    start = (p.as_of, p.claims_to_date)
    styles = {
        "run_rate": {"color": "#1f6fb4", "linestyle": (0, (6, 3))},
        "pipeline": {"color": "#d9730d", "linestyle": (0, (2, 2))},
    }
    for m in p.methods:
        if m.key == "pipeline" and m.fallback:
            continue  # the same line as the run rate: said in the legend instead
        column = t.get_column(f"{m.key}_cumulative")
        points = [start] + [(xi, c) for xi, mi, c in zip(x, months, column, strict=True) if mi > e]
        if len(points) == 1:
            continue  # E is at or after the programme end: nothing projected
        label = f"Projected: {m.name.lower()} ({m.total:,} by {p.programme_end:%b %Y})"
        if m.key == "run_rate" and p.fallback:
            label += "; pipeline falls back to this (history too thin)"
        ax.plot(
            [a for a, _ in points],
            [c for _, c in points],
            linewidth=2.2,
            label=label,
            zorder=3,
            **styles[m.key],
        )
        if len(points) > 1:
            ax.annotate(
                f"{m.total:,}",
                points[-1],
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=10,
                color=styles[m.key]["color"],
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            )
    if p.needed_per_month and p.months_left:
        ax.plot(
            [p.as_of, month_end(e + p.months_left)],
            [p.claims_to_date, p.claims_to_date + p.needed_per_month * p.months_left],
            color="#7a7f87",
            linestyle=":",
            linewidth=1.6,
            label=f"Needed to meet the quota: {p.needed_per_month:,} a month",
            zorder=2,
        )
    ax.axhline(
        p.quota,
        color="#c0262d",
        linewidth=1.8,
        label=f"Quota: {p.quota:,} families by {p.programme_end:%d %b %Y}",
        zorder=2,
    )
    left, right = x[0] - dt.timedelta(days=20), max(x[-1], p.programme_end) + dt.timedelta(days=85)
    if p.as_of < right:
        ax.axvspan(p.as_of, right, color="#eef2f7", zorder=0)
    ax.axvline(p.as_of, color="#5b6470", linewidth=1.2, linestyle="-", zorder=1)
    if p.programme_end > p.as_of:
        ax.axvline(p.programme_end, color="#c0262d", linewidth=1.0, linestyle="--", zorder=1)
        ax.annotate(
            f"programme end\n{p.programme_end:%d %b %Y}",
            (p.programme_end, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(-4, 6),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
            color="#c0262d",
        )
    ax.annotate(
        f"E = {p.as_of:%d %b %Y}\nactual ◀  ▶ projected",
        (p.as_of, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(0, -6),
        textcoords="offset points",
        ha="center",
        va="top",
        fontsize=9,
        color="#3a414a",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#c9d1db"},
    )
    ax.set_xlim(left, right)
    needed_end = p.claims_to_date + (p.needed_per_month or 0) * p.months_left
    top = max([p.quota, p.claims_to_date, needed_end, *(m.total for m in p.methods)])
    ax.set_ylim(0, top * 1.12 + 1)
    ax.set_title(
        f"Cumulative results claims against the quota (projection at E = {p.as_of.isoformat()})",
        fontsize=13,
        loc="left",
    )
    ax.set_xlabel("Claim month (cumulative claims at the end of each month)")
    ax.set_ylabel("Families claimed (cumulative)")
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10)))  # type: ignore[no-untyped-call]
    ax.xaxis.set_minor_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.grid(True, axis="y", color="#dde3ea", linewidth=0.8)
    ax.grid(True, axis="x", which="major", color="#eef1f5", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9.5)
    return fig


def chart_bytes(p: Projection) -> tuple[bytes, bytes]:
    """The chart as PNG and SVG: fixed size, with no timestamp or software metadata and a
    fixed SVG id salt, so the same projection gives the same bytes."""
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.hashsalt": "tfclaims-projection",
            "svg.fonttype": "path",
            "font.family": "DejaVu Sans",
        }
    ):
        fig = _chart_figure(p)
        png_buf, svg_buf = io.BytesIO(), io.BytesIO()
        fig.savefig(png_buf, format="png", dpi=120, metadata={"Software": None})
        fig.savefig(svg_buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None})
    return png_buf.getvalue(), svg_buf.getvalue()


# ---------------------------------------------------------------------------
# the files


def _table_rows(p: Projection) -> list[list[Any]]:
    return [[month_label(month_index(row[0])), *row[1:]] for row in p.table.iter_rows()]


def _locality_rows(p: Projection) -> list[list[Any]]:
    rows = []
    for r in p.by_locality.iter_rows(named=True):
        exp = r["expected"]
        rows.append(
            [
                r["locality"],
                r["attached"],
                r["eligible"],
                r["already_claimed"],
                r["claimable"],
                r["pending"],
                r["unknown"],
                r["not_met"],
                None if exp is None else _round_half_up(exp),
            ]
        )
    return rows


def _pending_grid(p: Projection) -> tuple[list[str], list[tuple[str, list[int], int]]]:
    """Pending families: month columns (``YYYY-MM`` and ``date not known``) and rows by locality."""
    pend = p.pending_by_month
    months = sorted({d for d in pend.get_column("month").to_list() if d is not None})
    has_unknown = pend.get_column("month").null_count() > 0
    keys: list[dt.date | None] = [*months, *([None] if has_unknown else [])]
    labels = [month_label(month_index(d)) if d else "date not known" for d in keys]
    counts: dict[tuple[str, dt.date | None], int] = {(loc, m): n for loc, m, n in pend.iter_rows()}
    localities = p.by_locality.get_column("locality").to_list()[:-1]  # "All" is last
    rows = []
    for loc in [*localities, "All"]:
        values = [
            sum(n for (l2, m2), n in counts.items() if m2 == k and (loc == "All" or l2 == loc))
            for k in keys
        ]
        rows.append((loc, values, sum(values)))
    return labels, rows


def _write_xlsx(
    path: Path,
    p: Projection,
    locality_rows: list[list[Any]],
    pending: tuple[list[str], list[tuple[str, list[int], int]]],
) -> WrittenFile:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    wb.set_properties(
        {
            "title": f"claims projection at {p.as_of.isoformat()}",
            "author": "tfclaims",
            "created": dt.datetime.combine(p.as_of, dt.time()),
        }
    )
    f = Formats(wb)
    month_fmt = wb.add_format({"valign": "top", "num_format": "yyyy-mm"})
    ws = wb.add_worksheet("projection")
    ws.freeze_panes(1, 1)
    for col, name in enumerate(TABLE_COLUMNS):
        ws.write_string(0, col, name, f.header)
        ws.set_column(col, col, 10 if col == 0 else 14)
    for i, row in enumerate(p.table.iter_rows(), start=1):
        ws.write_datetime(i, 0, dt.datetime.combine(row[0], dt.time()), month_fmt)
        for col, value in enumerate(row[1:], start=1):
            if value is None:
                ws.write_blank(i, col, None, f.integer)
            else:
                ws.write_number(i, col, value, f.integer)

    hs = wb.add_worksheet("headline")
    hs.write_string(0, 0, "item", f.header)
    hs.write_string(0, 1, "value", f.header)
    hs.set_column(0, 0, 48)
    hs.set_column(1, 1, 60)
    headline = p.headline_items()
    for i, (label, value) in enumerate(headline, start=1):
        hs.write_string(i, 0, warehouse.neutralise(label), f.text)
        hs.write_string(i, 1, warehouse.neutralise(value), f.text)
    r = len(headline) + 1
    hs.write_string(r, 0, "Results payments to date", f.text)
    hs.write_number(r, 1, float(p.payment_to_date), f.money)
    for m in p.methods:
        r += 1
        hs.write_string(r, 0, f"{m.name}: projected further results payments", f.text)
        hs.write_number(r, 1, float(m.payment), f.money)
    for note in p.notes:
        r += 1
        hs.write_string(r, 0, "note", f.text)
        hs.write_string(r, 1, warehouse.neutralise(note), f.wrap)

    ls = wb.add_worksheet("pipeline by locality")
    columns = LOCALITY_COLUMNS
    for col, name in enumerate(columns):
        ls.write_string(0, col, name, f.header)
        ls.set_column(col, col, 16)
    for i, values in enumerate(locality_rows, start=1):
        ls.write_string(i, 0, warehouse.neutralise(str(values[0])), f.text)
        for col, value in enumerate(values[1:], start=1):
            if value is None:
                ls.write_blank(i, col, None, f.integer)
            else:
                ls.write_number(i, col, value, f.integer)
    labels, grid = pending
    top = len(locality_rows) + 3
    ls.write_string(
        top - 1, 0, "pending families by the month their outcomes could be met", f.title
    )
    ls.write_string(top, 0, "locality", f.header)
    for col, label in enumerate([*labels, "total"], start=1):
        ls.write_string(top, col, label, f.header)
    for i, (loc, values, total) in enumerate(grid, start=top + 1):
        ls.write_string(i, 0, warehouse.neutralise(loc), f.text)
        for col, value in enumerate([*values, total], start=1):
            ls.write_number(i, col, value, f.integer)
    wb.close()
    return write_bytes(path, buffer.getvalue(), private=False)


def _report_html(
    p: Projection,
    svg: bytes,
    locality_rows: list[list[Any]],
    pending: tuple[list[str], list[tuple[str, list[int], int]]],
    override_dir: Path | None,
) -> str:
    labels, grid = pending
    run, pipe = p.method("run_rate"), p.method("pipeline")
    return render(
        REPORT_TEMPLATE,
        override_dir,
        p=p,
        run=run,
        pipe=pipe,
        methods=p.methods,
        headline=p.headline_items(),
        rate=_rate_text(p.run_rate.per_month),
        chart_src="data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"),
        locality_columns=LOCALITY_COLUMNS,
        locality_rows=locality_rows,
        pending_labels=labels,
        pending_rows=grid,
        payment_to_date=p.payment_to_date,
        software_version=evaluation.software_version(),
        month_name=lambda day: day.strftime("%B %Y") if day else "",
        e_label=p.as_of.strftime("%d %B %Y").lstrip("0"),
        end_label=p.programme_end.strftime("%d %B %Y").lstrip("0"),
    )


def write_projection(
    p: Projection, folder: Path, override_dir: Path | None = None
) -> dict[str, WrittenFile]:
    """Write the projection's files into ``folder``; returns them by name (manifest last).

    The monthly table (CSV, XLSX with the headline and pipeline sheets too),
    the chart (PNG, SVG), the pipeline by locality (CSV), the one-page HTML
    report (template ``projection.html.j2``, the SVG chart embedded) and
    ``projection.json`` (the headline figures, provenance and the other
    files' SHA-256). No personal data: mode 0644.
    """
    files: dict[str, WrittenFile] = {}
    files[TABLE_CSV] = write_bytes(
        folder / TABLE_CSV, csv_text(TABLE_COLUMNS, _table_rows(p)).encode("utf-8"), private=False
    )
    locality_rows, pending = _locality_rows(p), _pending_grid(p)
    files[TABLE_XLSX] = _write_xlsx(folder / TABLE_XLSX, p, locality_rows, pending)
    png, svg = chart_bytes(p)
    files[CHART_PNG] = write_bytes(folder / CHART_PNG, png, private=False)
    files[CHART_SVG] = write_bytes(folder / CHART_SVG, svg, private=False)
    files[LOCALITY_CSV] = write_bytes(
        folder / LOCALITY_CSV,
        csv_text(LOCALITY_COLUMNS, locality_rows).encode("utf-8"),
        private=False,
    )
    html = _report_html(p, svg, locality_rows, pending, override_dir)
    files[REPORT_HTML] = write_bytes(folder / REPORT_HTML, html.encode("utf-8"), private=False)
    doc = p.document() | {"files": {name: w.sha256 for name, w in sorted(files.items())}}
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    files[MANIFEST_JSON] = write_bytes(folder / MANIFEST_JSON, text.encode("utf-8"), private=False)
    return files


# ---------------------------------------------------------------------------
# the whole job


@dataclass(frozen=True)
class ProjectionRun:
    """What ``tfclaims project`` made: the projection, its folder and files."""

    projection: Projection
    folder: Path
    files: dict[str, WrittenFile]

    @property
    def report(self) -> Path:
        """The one-page HTML report."""
        return self.files[REPORT_HTML].path


def run_projection(
    settings: Settings,
    engine: Engine,
    *,
    as_of: dt.date | None = None,
    quota: int | None = None,
    programme_end: dt.date | None = None,
    lookback_months: int | None = None,
    min_history: int | None = None,
    out_dir: Path | None = None,
    plan_path: Path | None = None,
) -> ProjectionRun:
    """Gather, project and write: into ``out_dir`` or ``<output_dir>/projection-<E>/``.

    E defaults to the latest finalised claim batch's E, else today; the quota,
    the programme end, the run-rate months and the thin-history threshold
    default to the settings.
    """
    e = as_of or default_as_of(engine)
    inputs = gather_inputs(engine, e, plan_path)
    projection = build_projection(
        inputs,
        quota=settings.quota if quota is None else quota,
        programme_end=programme_end or settings.programme_end,
        lookback_months=settings.run_rate_months if lookback_months is None else lookback_months,
        min_history=settings.min_history if min_history is None else min_history,
        payment_per_claim=settings.payment_per_claim,
    )
    folder = out_dir or settings.output_dir / f"projection-{e.isoformat()}"
    files = write_projection(projection, folder, settings.templates_dir)
    return ProjectionRun(projection, folder, files)
