"""Evaluating the Outcome Plan against the warehouse, and recording the run.

This is where the packages meet: the warehouse's snapshots become
``rules.Sources``, the vectorised evaluator judges every family at E, and the
per-family summary is recorded as an evaluation run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

import rules
import warehouse

STATUSES = (
    "not_attached",
    "not_eligible",
    "already_claimed",
    "claimable",
    "pending",
    "unknown",
    "not_met",
)
"""Every family ends an evaluation in exactly one of these."""


def software_version() -> str:
    """The installed tfclaims version ("unknown" when run from a tree that is not installed)."""
    try:
        return metadata.version("tfclaims")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_sources(engine: Engine) -> rules.Sources:
    """Every extract table ever loaded, as typed lazy frames; absent tables were never loaded.

    Families that batches of this system submitted (withdrawn ones too) are
    claimed, as the claims history extract's are.
    """
    loaded = warehouse.loaded_tables(engine)
    claimed = frozenset(warehouse.submitted_families(engine).to_list())
    tables = {
        t.name: warehouse.read_table(engine, t.name).lazy()
        for t in warehouse.TABLES
        if t.name in loaded
    }
    return rules.Sources(tables=tables, claimed_family_ids=claimed)


def load_plan(plan_path: Path | None) -> rules.Plan:
    """The plan at ``plan_path``, or the shipped default."""
    return rules.load_plan(plan_path or rules.default_plan_path())


def with_status(families: pl.DataFrame) -> pl.DataFrame:
    """Add ``status`` (one of ``STATUSES``) to an evaluation's per-family frame.

    For an eligible family that is neither claimed nor claimable, pending
    wins over unknown (it will resolve with time), and unknown over not_met,
    as the all-combination ranks them: the family is held back by the
    nearest thing that could still change. A family whose claim history is
    unknown (the claims extract never loaded) is ``unknown``, never claimable.
    """
    ssp, ce = pl.col("state:ssp"), pl.col("state:ce")
    status = (
        pl.when(~pl.col("attached"))
        .then(pl.lit("not_attached"))
        .when(~pl.col("eligible"))
        .then(pl.lit("not_eligible"))
        .when(pl.col("claimed").fill_null(False))
        .then(pl.lit("already_claimed"))
        .when(pl.col("claimable"))
        .then(pl.lit("claimable"))
        .when((ssp == "pending") | (ce == "pending"))
        .then(pl.lit("pending"))
        .when((ssp == "unknown") | (ce == "unknown") | pl.col("claimed").is_null())
        .then(pl.lit("unknown"))
        .otherwise(pl.lit("not_met"))
    )
    return families.with_columns(status.alias("status"))


def run_summary(families: pl.DataFrame) -> pl.DataFrame:
    """Counts by locality (and a total row): attached, eligible, claimable by basis, and the rest."""
    f = families
    by = (
        f.group_by("locality")
        .agg(
            pl.len().alias("families"),
            pl.col("attached").sum().alias("attached"),
            pl.col("eligible").sum().alias("eligible"),
            (pl.col("status") == "already_claimed").sum().alias("already_claimed"),
            ((pl.col("status") == "claimable") & (pl.col("basis") == "ssp"))
            .sum()
            .alias("claimable_ssp"),
            ((pl.col("status") == "claimable") & (pl.col("basis") == "ce"))
            .sum()
            .alias("claimable_ce"),
            (pl.col("status") == "pending").sum().alias("pending"),
            (pl.col("status") == "unknown").sum().alias("unknown"),
            (pl.col("status") == "not_met").sum().alias("not_met"),
        )
        .sort("locality")
    )
    total = by.select(pl.lit("All").alias("locality"), pl.exclude("locality").sum())
    return pl.concat([by, total.cast(by.schema)])


@dataclass(frozen=True)
class EvaluationOutcome:
    """An evaluation run: its record, the per-family frame and the summary by locality."""

    run: warehouse.RunInfo
    families: pl.DataFrame
    summary: pl.DataFrame
    plan: rules.Plan
    sources: rules.Sources


def evaluate(
    engine: Engine,
    as_of: dt.date,
    plan_path: Path | None = None,
    *,
    plan: rules.Plan | None = None,
) -> EvaluationOutcome:
    """Evaluate the plan at E = ``as_of`` for every family and record the run. The plan is
    ``plan`` when given (already parsed), else the file at ``plan_path`` or the default."""
    plan = plan or load_plan(plan_path)
    batches = warehouse.current_batches(engine)
    if "families" not in batches:
        raise warehouse.WarehouseError(
            "no families have been loaded: run 'tfclaims load DIR' first"
        )
    sources = read_sources(engine)
    result = rules.evaluate(plan, sources, as_of)
    families = with_status(result.families)
    recorded = families.select(
        "family_id",
        "locality",
        "attached_on",
        "eligible",
        pl.col("identified").list.join(";").alias("headlines"),
        pl.col("state:ssp").cast(pl.String).alias("ssp_state"),
        pl.col("earliest:ssp").alias("ssp_earliest"),
        pl.col("state:ce").cast(pl.String).alias("ce_state"),
        pl.col("earliest:ce").alias("ce_earliest"),
        "claimed",
        "claimable",
        "basis",
        "status",
    )
    run = warehouse.record_evaluation(
        engine,
        as_of=as_of,
        plan_name=plan.name,
        plan_hash=plan.content_hash,
        software_version=software_version(),
        load_batches=batches,
        families=recorded,
    )
    return EvaluationOutcome(run, families, run_summary(families), plan, sources)


def restrict_sources(sources: rules.Sources, family_ids: list[str]) -> rules.Sources:
    """Only the rows that belong to ``family_ids``: enough to evaluate those families."""
    ids = pl.Series(family_ids, dtype=pl.String).implode()
    people = sources.tables.get("people")
    persons = (
        people.filter(pl.col("family_id").is_in(ids)).select("person_id").collect().to_series()
        if people is not None
        else pl.Series([], dtype=pl.String)
    ).implode()
    tables: dict[str, pl.LazyFrame] = {}
    for name, frame in sources.tables.items():
        key = "family_id" if name == "people" else rules.TABLES[name].key
        tables[name] = frame.filter(pl.col(key).is_in(ids if key == "family_id" else persons))
    return rules.Sources(
        tables=tables,
        claimed_family_ids=sources.claimed_family_ids & frozenset(family_ids),
    )


def explain(
    engine: Engine, family_id: str, as_of: dt.date, plan_path: Path | None = None
) -> rules.FamilyResult:
    """Everything the plan decides about one family at E, with figures and source rows.

    Uses the reference evaluator, which carries the evidence; the differential
    tests hold it to the same states and dates as the vectorised evaluator.
    """
    plan = load_plan(plan_path)
    sources = restrict_sources(read_sources(engine), [family_id])
    results = rules.evaluate_reference(plan, sources, as_of, [family_id])
    if not results:
        raise warehouse.WarehouseError(f"family {family_id!r} is not in the families extract")
    return results[0]


def _reason(thresholds: dict[str, int]) -> pl.Expr:
    """Why a family's eligibility or claimability differs between two plans."""

    def side(tag: str) -> pl.Expr:
        return pl.format(
            "{} headline(s) ({}) of {} needed; SSP {}{}; CE {}",
            pl.col(f"identified_{tag}").list.len(),
            pl.col(f"identified_{tag}").list.join(";"),
            pl.lit(thresholds[tag]),
            pl.col(f"state:ssp_{tag}").cast(pl.String).fill_null("-"),
            pl.when(pl.col(f"earliest:ssp_{tag}").is_not_null())
            .then(pl.format(" (earliest {})", pl.col(f"earliest:ssp_{tag}")))
            .otherwise(pl.lit("")),
            pl.col(f"state:ce_{tag}").cast(pl.String).fill_null("-"),
        )

    return pl.concat_str([side("old"), side("new")], separator=" -> ")


@dataclass(frozen=True)
class PlanDiff:
    """Families whose eligibility or claimability differs between two plans at E."""

    old: rules.Plan
    new: rules.Plan
    as_of: dt.date
    changes: pl.DataFrame  # family_id, locality, eligible_old/new, claimable_old/new, reason


def plan_diff(engine: Engine, old_path: Path, new_path: Path, as_of: dt.date) -> PlanDiff:
    """Evaluate both plans at E on the same snapshots and list the families that change."""
    old, new = load_plan(old_path), load_plan(new_path)
    sources = read_sources(engine)
    a = rules.evaluate(old, sources, as_of).families
    b = rules.evaluate(new, sources, as_of).families
    keep = [
        "family_id",
        "locality",
        "eligible",
        "claimable",
        "identified",
        "state:ssp",
        "earliest:ssp",
        "state:ce",
    ]
    joined = (
        a.select(keep)
        .join(
            b.select(keep).drop("locality"),
            on="family_id",
            how="full",
            suffix="_new",
            coalesce=True,
        )
        .rename({k: f"{k}_old" for k in keep if k not in ("family_id", "locality")})
    )
    changed = joined.filter(
        (pl.col("eligible_old") != pl.col("eligible_new"))
        | (pl.col("claimable_old") != pl.col("claimable_new"))
    )
    changes = changed.select(
        "family_id",
        "locality",
        "eligible_old",
        "eligible_new",
        "claimable_old",
        "claimable_new",
        _reason({"old": old.eligibility.min_headlines, "new": new.eligibility.min_headlines}).alias(
            "reason"
        ),
    ).sort("family_id")
    return PlanDiff(old, new, as_of, changes)
