"""The vectorised evaluator: a plan compiled to polars lazy frames, every family at E at once.

Each criterion of the plan language compiles to a lazy frame with one row per
*subject* (a family, or a person in a family) holding ``state`` (a small
integer code) and ``earliest`` (the earliest date of a pending state). Combining
states is arithmetic on the codes:

* codes are ordered as the ``all`` combination ranks them: met 0, unknown 1,
  pending 2, not_met 3, so ``all`` is the maximum;
* swapping met and not_met (codes 0 and 3) turns that order into the ``any``
  order, so ``any`` is the swap of the maximum of the swaps, and ``not`` is the
  swap itself.

The meaning is the reference evaluator's (``rules.reference``); the two are
checked against each other by differential property tests.

Status: states, earliest dates, identified people, eligibility, SSP, CE,
claimability and basis are produced. The figures compared and the evidence row
keys are not yet produced here; ``rules.reference`` gives them per family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel

from rules.dates import Period, period_before
from rules.model import (
    Age,
    AllNode,
    AnyNode,
    Count,
    EachPersonNode,
    Eligibility,
    Headline,
    Indicator,
    InTerms,
    NeedsStep,
    NotNode,
    Outcome,
    PeopleScope,
    Plan,
    Reduction,
    Rule,
    SinceAttachment,
    SnapshotDatedBefore,
    SnapshotKindsMissing,
    SnapshotTotal,
    SnapshotVsBaseline,
    Spell,
    SpellCompleted,
    SpellOpen,
    TermRate,
    TermSelection,
    TermsRecorded,
    WaitStep,
    WeeksInWork,
    Window,
    node_spec,
    tables_read,
)
from rules.sources import TABLES, Sources, check_sources
from rules.states import State

__all__ = ["Evaluation", "evaluate"]

MET, UNKNOWN, PENDING, NOT_MET = 0, 1, 2, 3
CODES: dict[State, int] = {"met": MET, "unknown": UNKNOWN, "pending": PENDING, "not_met": NOT_MET}
NAMES: tuple[State, ...] = ("met", "unknown", "pending", "not_met")
STATE_ENUM = pl.Enum(["met", "not_met", "pending", "unknown"])
CODE = pl.Int8
S, D, F = "state", "earliest", "flips"
# Families and people are keyed by integers inside the evaluator (joins on strings are
# slow at millions of rows); family_id and person_id come back at the end.
FAM = ["_f"]
PER = ["_f", "_p"]


def _swap(e: pl.Expr) -> pl.Expr:
    """Swap met and not_met: the ``not`` of a state, and the bridge between all and any."""
    return pl.when(e == MET).then(NOT_MET).when(e == NOT_MET).then(MET).otherwise(e).cast(CODE)


def _lit_state(code: int) -> pl.Expr:
    return pl.lit(code, CODE)


def _no_date() -> pl.Expr:
    return pl.lit(None, pl.Date)


def _first_day_after(x: pl.Expr, period: Period) -> pl.Expr:
    """The first day D with D - period >= x, as an expression (see rules.dates)."""
    if period.days:
        return x + pl.duration(days=period.days)
    candidate = x.dt.offset_by(f"{period.months}mo")
    return (
        pl.when(candidate.dt.offset_by(f"-{period.months}mo") >= x)
        .then(candidate)
        .otherwise(candidate + pl.duration(days=1))
    )


def _period_before(x: pl.Expr, period: Period) -> pl.Expr:
    if period.days:
        return x - pl.duration(days=period.days)
    return x.dt.offset_by(f"-{period.months}mo")


@dataclass(frozen=True)
class Scope:
    """The subjects a criterion is evaluated for: families, or people in families.

    ``frame`` has the key columns, ``A`` and, for people, ``role`` and ``birth_date``.
    """

    frame: pl.LazyFrame
    person: bool

    @property
    def keys(self) -> list[str]:
        """The key columns."""
        return PER if self.person else FAM


def _result(scope: Scope, state: pl.Expr, earliest: pl.Expr | None = None) -> pl.LazyFrame:
    return scope.frame.select(
        *scope.keys,
        state.cast(CODE).alias(S),
        (earliest if earliest is not None else _no_date()).alias(D),
        _no_date().alias(F),
    )


def _attach(scope: Scope, found: pl.LazyFrame, fill: dict[str, Any]) -> pl.LazyFrame:
    """Every subject of the scope, with the aggregated columns of ``found`` (or ``fill``)."""
    joined = scope.frame.select(*scope.keys, "A").join(found, on=scope.keys, how="left")
    return joined.with_columns(
        [pl.col(c).fill_null(pl.lit(v)) for c, v in fill.items() if v is not None]
    )


class _Compiler:
    """Compiles plan rules to lazy frames for one set of sources and one E."""

    def __init__(self, sources: Sources, as_of: date) -> None:
        check_sources(sources)
        self.e = as_of
        self.loaded = frozenset(sources.tables)
        families = sources.tables.get("families")
        if families is None:
            families = pl.LazyFrame(schema=TABLES["families"].schema)
        self.families = _materialise(
            families.select(
                "family_id", "locality", pl.col("attached_on").alias("A")
            ).with_row_index("_f")
        )
        attached = self.families.filter(pl.col("A").is_not_null() & (pl.col("A") <= as_of))
        self.family_scope = Scope(_materialise(attached.select("_f", "A")), person=False)
        people = sources.tables.get("people")
        if people is None:
            people = pl.LazyFrame(schema=TABLES["people"].schema)
        self.people = _materialise(
            people.select("person_id", "family_id", "role", "birth_date", "row_no")
            .join(attached.select("family_id", "_f", "A"), on="family_id", how="inner")
            .with_row_index("_p")
        )
        self.tables: dict[str, pl.LazyFrame] = {}
        for name, frame in sources.tables.items():
            if name in ("families", "people", "claims"):
                continue
            self.tables[name] = _materialise(self._as_of(name, frame))
        claims = sources.tables.get("claims")
        self.claims = claims.select("family_id").unique() if claims is not None else None
        self.claimed_ids = sorted(sources.claimed_family_ids)

    def _as_of(self, name: str, frame: pl.LazyFrame) -> pl.LazyFrame:
        """A table in the world as of E, each row carrying its family (and person) number."""
        t = TABLES[name]
        e = pl.lit(self.e)
        if t.shape in ("event", "snapshot"):
            frame = frame.filter(pl.col(t.date or "") <= e)
        elif t.shape == "spell":
            end = pl.col(t.end or "")
            frame = frame.filter(pl.col(t.date or "") <= e).with_columns(
                pl.when(end.is_null() | (end > e)).then(e).otherwise(end).alias("_end")
            )
        elif t.shape == "term":
            frame = frame.filter((pl.col("term_end") <= e) & (pl.col("possible_sessions") > 0))
        if t.key == "person_id":
            frame = frame.join(
                self.people.select("person_id", *PER), on="person_id", how="inner"
            ).drop("person_id")
        else:
            frame = frame.join(
                self.families.select("family_id", "_f"), on="family_id", how="inner"
            ).drop("family_id")
        return frame

    # -- helpers --------------------------------------------------------------

    def anchor(self, name: str) -> pl.Expr:
        """A or E as an expression."""
        return pl.col("A") if name == "A" else pl.lit(self.e)

    def bounds(self, window: Window) -> tuple[pl.Expr, pl.Expr]:
        """(start, end] of a window, as expressions over the subject's A."""
        if window.anchor == "E":
            return pl.lit(period_before(self.e, window.period)), pl.lit(self.e)
        return _period_before(pl.col("A"), window.period), pl.col("A")

    def rows(
        self, scope: Scope, table: str, where: dict[str, list[str]] | None = None
    ) -> pl.LazyFrame:
        """The rows of ``table`` for each subject: its own rows, or all its family's rows."""
        frame = self.tables[table]
        for column, codes in (where or {}).items():
            frame = frame.filter(pl.col(column).is_in(codes))
        on = PER if scope.person and TABLES[table].key == "person_id" else FAM
        if not scope.person and TABLES[table].key == "person_id":
            frame = frame.drop("_p")
        return scope.frame.select(*scope.keys, "A").join(frame, on=on, how="inner")

    def unknown(self, scope: Scope) -> pl.LazyFrame:
        """Every subject unknown."""
        return _result(scope, _lit_state(UNKNOWN))

    def missing(self, *tables: str) -> bool:
        """Whether any of the tables was never loaded."""
        return any(t not in self.loaded for t in tables)

    # -- combinators --------------------------------------------------------------

    def combine(
        self, how: Literal["all", "any"], parts: Sequence[pl.LazyFrame], keys: list[str]
    ) -> pl.LazyFrame:
        """Combine frames of the same subjects with all or any."""
        joined = parts[0].select(*keys, pl.col(S).alias("s0"), pl.col(D).alias("d0"))
        for i, part in enumerate(parts[1:], 1):
            joined = joined.join(
                part.select(*keys, pl.col(S).alias(f"s{i}"), pl.col(D).alias(f"d{i}")),
                on=keys,
                how="left",
            )
        states = [pl.col(f"s{i}") for i in range(len(parts))]
        dates = [pl.col(f"d{i}") for i in range(len(parts))]
        if how == "all":
            state = pl.max_horizontal(states)
            latest = pl.max_horizontal(
                [pl.when(s == PENDING).then(d) for s, d in zip(states, dates, strict=True)]
            )
        else:
            state = _swap(pl.max_horizontal([_swap(s) for s in states]))
            latest = pl.min_horizontal(
                [pl.when(s == PENDING).then(d) for s, d in zip(states, dates, strict=True)]
            )
        undated = pl.any_horizontal(
            [(s == PENDING) & d.is_null() for s, d in zip(states, dates, strict=True)]
        )
        return joined.select(
            *keys,
            state.cast(CODE).alias(S),
            pl.when((state == PENDING) & ~undated).then(latest).alias(D),
            _no_date().alias(F),
        )

    def group(self, how: Literal["all", "any"], frame: pl.LazyFrame, onto: Scope) -> pl.LazyFrame:
        """Combine per-person results into one result per family of ``onto``."""
        s, d = pl.col(S), pl.col(D)
        pending = s == PENDING
        if how == "all":
            state = s.max()
            date_ = d.filter(pending).max()
            empty = MET
        else:
            state = _swap(_swap(s).max())
            date_ = d.filter(pending).min()
            empty = NOT_MET
        grouped = frame.group_by(FAM).agg(
            state.cast(CODE).alias(S),
            date_.alias("_d"),
            (pending & d.is_null()).any().alias("_undated"),
        )
        return (
            onto.frame.select(FAM)
            .join(grouped, on=FAM, how="left")
            .select(
                *FAM,
                pl.col(S).fill_null(empty).cast(CODE).alias(S),
                pl.when((pl.col(S) == PENDING) & ~pl.col("_undated")).then(pl.col("_d")).alias(D),
                _no_date().alias(F),
            )
        )

    def persons(self, role: str, family: Scope) -> Scope:
        """Every family member with ``role`` (``member``: everyone)."""
        people = self.people if role == "member" else self.people.filter(pl.col("role") == role)
        frame = people.join(family.frame.select(FAM), on=FAM, how="inner")
        return Scope(frame.select(*PER, "A", "role", "birth_date"), person=True)

    # -- criteria -------------------------------------------------------------

    def criterion(self, node: BaseModel, scope: Scope) -> pl.LazyFrame:
        """Compile one criterion node for the subjects of ``scope``."""
        spec = node_spec(node)
        if isinstance(node, AllNode):
            return self.combine("all", [self.criterion(n, scope) for n in spec], scope.keys)
        if isinstance(node, AnyNode):
            return self.combine("any", [self.criterion(n, scope) for n in spec], scope.keys)
        if isinstance(node, NotNode):
            inner = self.criterion(spec, scope)
            return inner.with_columns(_swap(pl.col(S)).alias(S), _no_date().alias(F))
        if isinstance(node, EachPersonNode):
            persons = self.persons(spec.role, scope)
            return self.group(spec.combine, self.criterion(spec.test, persons), scope)
        result: pl.LazyFrame = _LEAVES[type(spec)](self, spec, scope)
        return result

    def count(self, spec: Count, scope: Scope) -> pl.LazyFrame:
        """``count`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        dated = pl.col(TABLES[spec.table].date or "")
        rows = self.rows(scope, spec.table, spec.where)
        if isinstance(spec.window, InTerms):
            if self.missing("attendance"):
                return self.unknown(scope)
            terms = self.terms(scope, spec.window.in_terms).select(
                *scope.keys, "term_start", "term_end"
            )
            inside = (
                rows.join(terms, on=scope.keys, how="inner")
                .filter((pl.col("term_start") <= dated) & (dated <= pl.col("term_end")))
                .unique([*scope.keys, "row_no"])
            )
        else:
            if isinstance(spec.window, SinceAttachment):
                lo, hi = pl.col("A"), pl.lit(self.e)
            else:
                lo, hi = self.bounds(spec.window)
            inside = rows.filter((dated > lo) & (dated <= hi))
        counted = _attach(scope, inside.group_by(scope.keys).agg(pl.len().alias("n")), {"n": 0})
        n = pl.col("n")
        # counts are whole numbers: compare with the threshold rounded the safe way
        if spec.at_least is not None:
            ok = n >= math.ceil(spec.at_least)
        elif spec.at_most is not None:
            ok = n <= math.floor(spec.at_most)
        else:
            assert spec.fewer_than is not None
            ok = n < math.ceil(spec.fewer_than)
        return _result(Scope(counted, scope.person), pl.when(ok).then(MET).otherwise(NOT_MET))

    def reduction(self, spec: Reduction, scope: Scope) -> pl.LazyFrame:
        """``reduction`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        dated = pl.col(TABLES[spec.table].date or "")
        rows = self.rows(scope, spec.table, spec.where)
        (blo, bhi), (llo, lhi) = self.bounds(spec.baseline), self.bounds(spec.later)
        counts = rows.group_by(scope.keys).agg(
            ((dated > blo) & (dated <= bhi)).sum().alias("b"),
            ((dated > llo) & (dated <= lhi)).sum().alias("l"),
        )
        counted = _attach(scope, counts, {"b": 0, "l": 0})
        num, den = spec.at_least_percent.as_integer_ratio()
        # 100 * later <= (100 - p) * baseline, in integers
        ok = pl.col("l").cast(pl.Int64) * (100 * den) <= pl.col("b").cast(pl.Int64) * (
            100 * den - num
        )
        return _result(Scope(counted, scope.person), pl.when(ok).then(MET).otherwise(NOT_MET))

    def spell(self, spec: Spell, scope: Scope) -> pl.LazyFrame:
        """``spell`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        start, end = pl.col(TABLES[spec.table].date or ""), pl.col("_end")
        rows = self.rows(scope, spec.table, spec.where)
        if spec.covers is not None:
            x = self.anchor(spec.covers)
            hit = (start <= x) & (x <= end)
        else:
            assert spec.overlaps is not None
            lo, hi = self.bounds(spec.overlaps)
            hit = (start <= hi) & (end > lo)
        hits = rows.filter(hit).group_by(scope.keys).agg(pl.len().alias("n"))
        counted = _attach(scope, hits, {"n": 0})
        return _result(
            Scope(counted, scope.person), pl.when(pl.col("n") > 0).then(MET).otherwise(NOT_MET)
        )

    def spell_open(self, spec: SpellOpen, scope: Scope) -> pl.LazyFrame:
        """``spell_open`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        t = TABLES[spec.table]
        start, raw_end = pl.col(t.date or ""), pl.col(t.end or "")
        since = spec.since.period
        cutoff = pl.lit(period_before(self.e, since))
        open_ = self.rows(scope, spec.table, spec.where).filter(
            raw_end.is_null() | (raw_end >= pl.lit(self.e))
        )
        agg = open_.group_by(scope.keys).agg(
            (start <= cutoff).any().alias("long"),
            _first_day_after(start, since).min().alias("d"),
        )
        found = _attach(scope, agg, {"long": False})
        state = (
            pl.when(pl.col("long"))
            .then(MET)
            .when(pl.col("d").is_not_null())
            .then(PENDING)
            .otherwise(NOT_MET)
        )
        return _result(
            Scope(found, scope.person), state, pl.when(state == PENDING).then(pl.col("d"))
        )

    def spell_completed(self, spec: SpellCompleted, scope: Scope) -> pl.LazyFrame:
        """``spell_completed`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        t = TABLES[spec.table]
        start, end = t.date or "", t.end or ""
        since = spec.since.period
        rows = self.rows(scope, spec.table, spec.where)
        ended = rows.filter(
            pl.col(end).is_not_null()
            & (pl.col(end) > pl.col("A"))
            & (pl.col(end) <= pl.lit(self.e))
        )
        for column, codes in spec.ended_with.items():
            ended = ended.filter(pl.col(column).is_in(codes))
        later = (
            ended.select(*scope.keys, "row_no", pl.col(end).alias("_x"))
            .join(
                rows.select(*scope.keys, pl.col("row_no").alias("_o"), pl.col(start).alias("_s")),
                on=scope.keys,
            )
            .filter((pl.col("_o") != pl.col("row_no")) & (pl.col("_s") >= pl.col("_x")))
            .select(*scope.keys, "row_no")
            .unique()
        )
        candidates = ended.join(later, on=[*scope.keys, "row_no"], how="anti")
        cutoff = pl.lit(period_before(self.e, since))
        agg = candidates.group_by(scope.keys).agg(
            (pl.col(end) <= cutoff).any().alias("done"),
            _first_day_after(pl.col(end), since).min().alias("d"),
        )
        found = _attach(scope, agg, {"done": False})
        state = (
            pl.when(pl.col("done"))
            .then(MET)
            .when(pl.col("d").is_not_null())
            .then(PENDING)
            .otherwise(NOT_MET)
        )
        return _result(
            Scope(found, scope.person), state, pl.when(state == PENDING).then(pl.col("d"))
        )

    def terms(self, scope: Scope, sel: TermSelection) -> pl.LazyFrame:
        """The selected terms of each subject, most recent first, at most ``last``."""
        rows = self.rows(scope, "attendance")
        if sel.window is not None:
            lo, hi = self.bounds(sel.window)
            rows = rows.filter((pl.col("term_end") > lo) & (pl.col("term_end") <= hi))
        if sel.start_on_or_after is not None:
            rows = rows.filter(pl.col("term_start") >= pl.col("A"))
        if sel.last:
            # most recent by term_end, then term_start; (person, term_start) is unique
            recency = pl.col("term_end").cast(pl.Int32).cast(pl.Int64) * (1 << 32) + pl.col(
                "term_start"
            ).cast(pl.Int32).cast(pl.Int64)
            rows = rows.filter(
                recency.rank("ordinal", descending=True).over(scope.keys) <= sel.last
            )
        return rows

    def term_rate(self, spec: TermRate, scope: Scope) -> pl.LazyFrame:
        """``term_rate`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        agg = (
            self.terms(scope, spec.terms)
            .group_by(scope.keys)
            .agg(
                pl.col("unauthorised_sessions").sum().alias("u"),
                pl.col("possible_sessions").sum().alias("p"),
            )
        )
        found = _attach(scope, agg, {})
        u, p = pl.col("u").cast(pl.Int64), pl.col("p").cast(pl.Int64)
        if spec.at_least_percent is not None:
            pct, cmp = spec.at_least_percent, "ge"
        else:
            assert spec.below_percent is not None
            pct, cmp = spec.below_percent, "lt"
        num, den = pct.as_integer_ratio()
        left, right = u * (100 * den), p * num
        ok = left >= right if cmp == "ge" else left < right
        state = pl.when(p.is_null()).then(UNKNOWN).when(ok).then(MET).otherwise(NOT_MET)
        return _result(Scope(found, scope.person), state)

    def terms_recorded(self, spec: TermsRecorded, scope: Scope) -> pl.LazyFrame:
        """``terms_recorded`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        agg = self.terms(scope, spec.terms).group_by(scope.keys).agg(pl.len().alias("n"))
        found = _attach(scope, agg, {"n": 0})
        return _result(
            Scope(found, scope.person),
            pl.when(pl.col("n") >= spec.at_least).then(MET).otherwise(NOT_MET),
        )

    def age(self, spec: Age, scope: Scope) -> pl.LazyFrame:
        """``age`` for every subject."""
        at, birth = self.anchor(spec.at), pl.col("birth_date")
        before = (at.dt.month().cast(pl.Int32) * 100 + at.dt.day().cast(pl.Int32)) < (
            birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day().cast(pl.Int32)
        )
        years = at.dt.year().cast(pl.Int32) - birth.dt.year().cast(pl.Int32) - before.cast(pl.Int32)
        ok = pl.lit(True)
        if spec.at_least is not None:
            ok = ok & (years >= spec.at_least)
        if spec.at_most is not None:
            ok = ok & (years <= spec.at_most)
        return _result(
            scope, pl.when(birth.is_null()).then(UNKNOWN).when(ok).then(MET).otherwise(NOT_MET)
        )

    def latest(self, scope: Scope, table: str, window: Window) -> pl.LazyFrame:
        """The latest snapshot of each kind in the window, per subject."""
        dated = pl.col(TABLES[table].date or "")
        lo, hi = self.bounds(window)
        return (
            self.rows(scope, table)
            .filter((dated > lo) & (dated <= hi))
            .group_by([*scope.keys, "kind"])
            .agg(pl.col("amount").sort_by(dated).last(), dated.max().alias("_on"))
        )

    def total(self, scope: Scope, table: str, window: Window, name: str) -> pl.LazyFrame:
        """The sum over kinds of the latest snapshots, per subject (0 when none)."""
        agg = (
            self.latest(scope, table, window)
            .group_by(scope.keys)
            .agg(pl.col("amount").sum().alias(name))
        )
        return agg

    def snapshot_total(self, spec: SnapshotTotal, scope: Scope) -> pl.LazyFrame:
        """``snapshot_total`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        found = _attach(scope, self.total(scope, spec.table, spec.window, "t"), {})
        ok = pl.col("t").fill_null(0) >= pl.lit(spec.at_least, pl.Decimal(scale=2))
        return _result(Scope(found, scope.person), pl.when(ok).then(MET).otherwise(NOT_MET))

    def snapshot_vs_baseline(self, spec: SnapshotVsBaseline, scope: Scope) -> pl.LazyFrame:
        """``snapshot_vs_baseline`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        base = self.total(scope, spec.table, spec.baseline, "b")
        now = self.total(scope, spec.table, spec.current, "c")
        found = _attach(scope, base, {}).join(now, on=scope.keys, how="left")
        zero = pl.lit(0, pl.Decimal(scale=2))
        b, c = pl.col("b").fill_null(zero), pl.col("c").fill_null(zero)
        num, den = spec.at_most_percent.as_integer_ratio()
        ok = c * (100 * den) <= b * num
        return _result(Scope(found, scope.person), pl.when(ok).then(MET).otherwise(NOT_MET))

    def snapshot_kinds_missing(self, spec: SnapshotKindsMissing, scope: Scope) -> pl.LazyFrame:
        """``snapshot_kinds_missing`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        dated = pl.col(TABLES[spec.table].date or "")
        rows = self.rows(scope, spec.table)
        blo, bhi = self.bounds(spec.baseline)
        clo, chi = self.bounds(spec.current)
        in_base = (
            rows.filter((dated > blo) & (dated <= bhi) & (pl.col("amount") > 0))
            .select(*scope.keys, "kind")
            .unique()
        )
        now = rows.filter((dated > clo) & (dated <= chi)).select(*scope.keys, "kind").unique()
        missing = (
            in_base.join(now, on=[*scope.keys, "kind"], how="anti")
            .group_by(scope.keys)
            .agg(pl.len().alias("n"))
        )
        found = _attach(scope, missing, {"n": 0})
        return _result(
            Scope(found, scope.person), pl.when(pl.col("n") > 0).then(MET).otherwise(NOT_MET)
        )

    def snapshot_dated_before(self, spec: SnapshotDatedBefore, scope: Scope) -> pl.LazyFrame:
        """``snapshot_dated_before`` for every subject."""
        if self.missing(spec.table):
            return self.unknown(scope)
        sustained = _first_day_after(pl.col("A"), spec.sustain.period)
        latest = self.latest(scope, spec.table, spec.window).join(
            scope.frame.select(*scope.keys, "A"), on=scope.keys
        )
        early = (
            latest.filter(pl.col("_on") < sustained).group_by(scope.keys).agg(pl.len().alias("n"))
        )
        found = _attach(scope, early, {"n": 0})
        return found.select(
            *scope.keys,
            pl.when(pl.col("n") > 0).then(MET).otherwise(NOT_MET).cast(CODE).alias(S),
            _no_date().alias(D),
            sustained.alias(F),
        )

    def weeks_in_work(self, spec: WeeksInWork, scope: Scope) -> pl.LazyFrame:
        """``weeks_in_work`` for every subject."""
        oow, emp = spec.out_of_work, spec.employment
        if self.missing(oow.table, emp.table):
            return self.unknown(scope)
        tb = TABLES[oow.table]
        benefits = self.rows(scope, oow.table, oow.where)
        start = pl.col(tb.date or "")
        at_a = benefits.filter((start <= pl.col("A")) & (pl.col("A") <= pl.col("_end")))
        key = pl.lit(None, pl.Int64)
        for req in sorted(spec.requirements, key=lambda r: (r.weeks, r.out_of)):
            match = pl.lit(True)
            for column, codes in req.when.items():
                match = match & pl.col(column).is_in(codes)
            key = pl.when(match).then(pl.lit(req.weeks * 100_000 + req.out_of)).otherwise(key)
        required = at_a.group_by(scope.keys).agg(key.max().alias("req"))
        base = _attach(scope, required, {}).with_columns(
            (pl.col("req") // 100_000).alias("k"),
            (pl.col("req") % 100_000).alias("m"),
            (_week(pl.col("A")) + 1).alias("first"),
            pl.lit(_last_week(self.e), pl.Int64).alias("last"),
        )
        qualifying = _materialise(base).filter(
            pl.col("req").is_not_null() & (pl.col("first") + pl.col("m") - 1 <= pl.col("last"))
        )
        bounds = qualifying.select(*scope.keys, "first", "last")
        # Weeks in work come in runs: the full weeks inside merged employment, minus every
        # week that an out-of-work spell touches. Work with runs (intervals of week numbers),
        # never with single weeks, so the cost follows the number of spells, not of weeks.
        work = _materialise(
            _merge(self.rows(scope, emp.table, emp.where), scope.keys, TABLES[emp.table].date or "")
            .join(bounds, on=scope.keys)
            .select(
                *scope.keys,
                pl.max_horizontal(_ceil_week(pl.col("_s")), pl.col("first")).alias("_ws"),
                pl.min_horizontal(_floor_week_end(pl.col("_e")), pl.col("last")).alias("_we"),
            )
            .filter(pl.col("_ws") <= pl.col("_we"))
        )
        touched = _materialise(
            _merge(benefits, scope.keys, tb.date or "")
            .join(bounds, on=scope.keys)
            .select(
                *scope.keys,
                "first",
                "last",
                _week(pl.col("_s")).alias("_bs"),
                _week(pl.col("_e")).alias("_be"),
            )
            .sort([*scope.keys, "_bs"])
            .with_columns(pl.col("_be").cum_max().over(scope.keys).alias("_reach"))
        )
        # the weeks between out-of-work spells (and after the last one) are free of them
        gaps = pl.concat(
            [
                touched.select(
                    *scope.keys,
                    (pl.col("_reach").shift(1).over(scope.keys) + 1)
                    .fill_null(pl.col("first"))
                    .alias("_fs"),
                    (pl.col("_bs") - 1).alias("_fe"),
                ),
                touched.group_by(scope.keys).agg(
                    (pl.col("_reach").max() + 1).alias("_fs"), pl.col("last").first().alias("_fe")
                ),
                bounds.join(touched.select(scope.keys).unique(), on=scope.keys, how="anti").select(
                    *scope.keys, pl.col("first").alias("_fs"), pl.col("last").alias("_fe")
                ),
            ],
            how="diagonal_relaxed",
        ).filter(pl.col("_fs") <= pl.col("_fe"))
        runs = _materialise(
            work.join(gaps, on=scope.keys)
            .select(
                *scope.keys,
                pl.max_horizontal("_ws", "_fs").alias("_rs"),
                pl.min_horizontal("_we", "_fe").alias("_re"),
            )
            .filter(pl.col("_rs") <= pl.col("_re"))
        )
        # the best window starts at the first week or a run's start, or ends at a run's end
        span = qualifying.select(*scope.keys, "first", "last", "m")
        candidates = pl.concat(
            [
                span.select(*scope.keys, pl.col("first").alias("_c")),
                runs.join(span, on=scope.keys).select(*scope.keys, pl.col("_rs").alias("_c")),
                runs.join(span, on=scope.keys).select(
                    *scope.keys, (pl.col("_re") - pl.col("m") + 1).alias("_c")
                ),
            ]
        )
        counted = (
            candidates.join(span, on=scope.keys)
            .select(
                *scope.keys,
                "m",
                pl.min_horizontal(
                    pl.max_horizontal("_c", "first"), pl.col("last") - pl.col("m") + 1
                ).alias("_c"),
            )
            .unique()
            .join(runs, on=scope.keys)
            .with_columns(
                (
                    pl.min_horizontal("_re", pl.col("_c") + pl.col("m") - 1)
                    - pl.max_horizontal("_rs", "_c")
                    + 1
                )
                .clip(lower_bound=0)
                .alias("_n")
            )
            .group_by([*scope.keys, "_c"])
            .agg(pl.col("_n").sum())
            .group_by(scope.keys)
            .agg(pl.col("_n").max().alias("_best"))
        )
        found = base.join(counted, on=scope.keys, how="left")
        n = pl.col("_best").fill_null(0)
        fits = pl.col("first") + pl.col("m") - 1 <= pl.col("last")
        state = (
            pl.when(pl.col("req").is_null())
            .then(NOT_MET)
            .when(~fits)
            .then(PENDING)
            .when(n >= pl.col("k"))
            .then(MET)
            .otherwise(NOT_MET)
        )
        earliest = pl.when(pl.col("req").is_not_null() & ~fits).then(
            _sunday(pl.col("first") + pl.col("m") - 1)
        )
        return _result(Scope(found, scope.person), state, earliest)

    # -- rules ------------------------------------------------------------------

    def rule(self, rule: Rule, scope: Scope) -> pl.LazyFrame:
        """Steps in order (leading waits, evidence test, the rest), then the test."""
        layers: list[tuple[pl.LazyFrame | None, pl.Expr, pl.Expr]] = []
        steps = list(rule.steps)
        i = 0
        while i < len(steps) and isinstance(steps[i], WaitStep):
            layers.append(self.wait(steps[i]))  # type: ignore[arg-type]
            i += 1
        explicit = {t for s in steps if isinstance(s, NeedsStep) for t in s.needs}
        final: pl.LazyFrame | None = None
        if self.missing(*(tables_read(rule) - explicit)):
            final = self.unknown(scope)
        else:
            for step in steps[i:]:
                if isinstance(step, WaitStep):
                    layers.append(self.wait(step))
                elif isinstance(step, NeedsStep):
                    if self.missing(*step.needs):
                        final = self.unknown(scope)
                        break
                else:
                    node = step.if_ if step.if_ is not None else step.unless
                    assert node is not None
                    c = self.criterion(node, scope)
                    s = pl.col(S)
                    undecided = (s == PENDING) | (s == UNKNOWN)
                    fires = (s == MET) if step.if_ is not None else (s == NOT_MET)
                    then = CODES[step.then]
                    when_pending = pl.col(F) if step.then == "pending" else _no_date()
                    layers.append(
                        (
                            c,
                            pl.when(undecided).then(s).when(fires).then(then),
                            pl.when(undecided).then(pl.col(D)).when(fires).then(when_pending),
                        )
                    )
            if final is None:
                final = self.criterion(rule.test, scope)
        frame = scope.frame.select(*scope.keys, "A")
        state_parts: list[pl.Expr] = []
        date_parts: list[tuple[pl.Expr, pl.Expr]] = []
        for n, (source, state, earliest) in enumerate(layers):
            if source is not None:
                frame = frame.join(
                    source.select(*scope.keys, S, D, F)
                    .with_columns(state.cast(CODE).alias(f"_s{n}"), earliest.alias(f"_d{n}"))
                    .select(*scope.keys, f"_s{n}", f"_d{n}"),
                    on=scope.keys,
                    how="left",
                )
            else:
                frame = frame.with_columns(
                    state.cast(CODE).alias(f"_s{n}"), earliest.alias(f"_d{n}")
                )
            state_parts.append(pl.col(f"_s{n}"))
            date_parts.append((pl.col(f"_s{n}"), pl.col(f"_d{n}")))
        frame = frame.join(
            final.select(*scope.keys, pl.col(S).alias("_st"), pl.col(D).alias("_dt")),
            on=scope.keys,
            how="left",
        )
        state_expr = pl.coalesce([*state_parts, pl.col("_st")])
        date_expr: pl.Expr = pl.col("_dt")
        for s_n, d_n in reversed(date_parts):
            date_expr = pl.when(s_n.is_not_null()).then(d_n).otherwise(date_expr)
        # Materialise each rule: the query plans stay small, each rule is one vectorised pass.
        return _materialise(
            frame.select(
                *scope.keys, state_expr.cast(CODE).alias(S), date_expr.alias(D), _no_date().alias(F)
            )
        )

    def wait(self, step: WaitStep) -> tuple[None, pl.Expr, pl.Expr]:
        """``wait``: pending while E - period < A, earliest the first D with D - period >= A."""
        period = step.wait.period
        waiting = pl.lit(period_before(self.e, period)) < pl.col("A")
        return (
            None,
            pl.when(waiting).then(PENDING),
            pl.when(waiting).then(_first_day_after(pl.col("A"), period)),
        )

    def scoped(
        self, rule: Rule, family: Scope, identified: pl.LazyFrame | None = None
    ) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
        """A rule for its scope, as one result per family (and per person, when for people)."""
        scope = rule.for_
        if scope == "family":
            return self.rule(rule, family), None
        if "people" not in self.loaded:
            return self.unknown(family), None
        if scope == "identified_people":
            assert identified is not None
            persons = Scope(
                self.persons("member", family).frame.join(identified, on=PER, how="semi"),
                person=True,
            )
            how: Literal["all", "any"] = "all"
        else:
            assert isinstance(scope, PeopleScope)
            persons = self.persons(scope.people, family)
            how = scope.combine
        per_person = self.rule(rule, persons)
        return self.group(how, per_person, family), per_person


def _materialise(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Compute a frame now, so that later plans read it instead of recomputing it."""
    return frame.collect().lazy()


def _week(d: pl.Expr) -> pl.Expr:
    """ISO week number counted from the week of 1970-01-01 (weeks start on Monday)."""
    return (d.cast(pl.Int32).cast(pl.Int64) + 3) // 7


def _ceil_week(d: pl.Expr) -> pl.Expr:
    """The first week whose Monday is on or after ``d``."""
    return (d.cast(pl.Int32).cast(pl.Int64) + 9) // 7


def _floor_week_end(d: pl.Expr) -> pl.Expr:
    """The last week whose Sunday is on or before ``d``."""
    return (d.cast(pl.Int32).cast(pl.Int64) - 3) // 7


def _last_week(e: date) -> int:
    return ((e - date(1970, 1, 1)).days - 3) // 7


def _sunday(w: pl.Expr) -> pl.Expr:
    return (w * 7 + 3).cast(pl.Int32).cast(pl.Date)


def _merge(rows: pl.LazyFrame, keys: list[str], start: str) -> pl.LazyFrame:
    """Merge each subject's spells that overlap or touch into disjoint spans (_s, _e).

    One global pass: after sorting, each subject's days are shifted into its own
    range (subject number * 2**32), so a running maximum never crosses subjects.
    """
    ordered = rows.select(
        *keys,
        pl.col(start).cast(pl.Int32).cast(pl.Int64).alias("_s"),
        pl.col("_end").cast(pl.Int32).cast(pl.Int64).alias("_e"),
    ).sort([*keys, "_s"])
    subject = pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in keys]).fill_null(True)
    offset = subject.cum_sum() * (1 << 32)
    reach = (pl.col("_e") + offset).cum_max().shift(1)
    run = (reach.is_null() | (pl.col("_s") + offset > reach + 1)).cum_sum()
    return (
        ordered.with_columns(run.alias("_run"))
        .group_by("_run")
        .agg(*[pl.col(k).first() for k in keys], pl.col("_s").min(), pl.col("_e").max())
        .select(
            *keys,
            pl.col("_s").cast(pl.Int32).cast(pl.Date),
            pl.col("_e").cast(pl.Int32).cast(pl.Date),
        )
    )


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating a plan at E: one row per family.

    ``families`` has family_id, locality, attached_on, attached, eligible,
    identified (headline codes), claimed (null = unknown), claimable, basis,
    insufficient_evidence, and for every state key of
    :meth:`rules.results.FamilyResult.states` a ``state:<key>`` column (Enum) and
    an ``earliest:<key>`` column (Date). Outcome keys are null for headlines
    that were not identified. ``people:<headline>.<indicator>`` lists the people
    who identified each person-scoped indicator.
    """

    plan_name: str
    plan_hash: str
    as_of: date
    families: pl.DataFrame

    def states(self) -> dict[str, dict[str, tuple[State, date | None]]]:
        """Per family, every state and earliest date, keyed as FamilyResult.states()."""
        out: dict[str, dict[str, tuple[State, date | None]]] = {}
        keys = [c.removeprefix("state:") for c in self.families.columns if c.startswith("state:")]
        for row in self.families.iter_rows(named=True):
            out[row["family_id"]] = {
                k: (row[f"state:{k}"], row[f"earliest:{k}"])
                for k in keys
                if row[f"state:{k}"] is not None
            }
        return out


def _in_effect_at_a(rule: Indicator | Eligibility) -> pl.Expr:
    ok = pl.col("A") >= rule.effective_from
    if rule.effective_to is not None:
        ok = ok & (pl.col("A") <= rule.effective_to)
    return ok


def _neutral(fam: Scope, frame: pl.LazyFrame) -> pl.LazyFrame:
    """Every family, with families missing from ``frame`` met: neutral for ``all``."""
    return (
        fam.frame.select(FAM)
        .join(frame.select(*FAM, S, D), on=FAM, how="left")
        .with_columns(pl.col(S).fill_null(MET).cast(CODE), _no_date().alias(F))
    )


@dataclass
class _Columns:
    """The per-family result frames, keyed as FamilyResult.states() keys them."""

    states: dict[str, pl.LazyFrame]
    people: dict[str, pl.LazyFrame]


def _indicator(
    c: _Compiler, key: str, ind: Indicator, out: _Columns
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """An indicator at A: its per-family state, and the people who identified it."""
    fam = c.family_scope
    in_effect = _in_effect_at_a(ind)
    family_result, person_result = c.scoped(ind, fam)
    state = _materialise(
        family_result.join(fam.frame, on=FAM).select(
            *FAM,
            pl.when(in_effect).then(pl.col(S)).otherwise(NOT_MET).cast(CODE).alias(S),
            pl.when(in_effect & (pl.col(S) == PENDING)).then(pl.col(D)).alias(D),
            _no_date().alias(F),
        )
    )
    out.states[key] = state
    if person_result is None:
        return state, pl.LazyFrame(schema={"_f": pl.UInt32, "_p": pl.UInt32})
    who = _materialise(
        person_result.join(fam.frame, on=FAM).filter((pl.col(S) == MET) & in_effect).select(PER)
    )
    out.people[key] = (
        who.join(c.people.select(*PER, "person_id"), on=PER)
        .group_by(FAM)
        .agg(pl.col("person_id").sort().alias("people"))
    )
    return state, who


def _headline(c: _Compiler, h: Headline, out: _Columns) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """A headline: identified families (any over indicators) and the outcome (all families,
    neutral where the headline was not identified)."""
    fam = c.family_scope
    indicators = [_indicator(c, f"{h.code}.{i.code}", i, out) for i in h.indicators]
    identification = _materialise(c.combine("any", [s for s, _ in indicators], FAM))
    out.states[h.code] = identification
    identified = identification.filter(pl.col(S) == MET).select(FAM)
    if h.outcome is not None:
        everyone = pl.concat([who for _, who in indicators]).unique()
        outcome = _outcome(c, h.outcome, fam, everyone).join(identified, on=FAM, how="semi")
    else:
        parts = []
        for (state, who), ind in zip(indicators, h.indicators, strict=True):
            assert ind.outcome is not None
            mine = state.filter(pl.col(S) == MET).select(FAM)
            o = _materialise(_outcome(c, ind.outcome, fam, who).join(mine, on=FAM, how="semi"))
            out.states[f"{h.code}.{ind.code}.outcome"] = o
            parts.append(_neutral(fam, o))
        outcome = c.combine("all", parts, FAM).join(identified, on=FAM, how="semi")
    shown = _materialise(outcome)
    out.states[f"{h.code}.outcome"] = shown
    return identified, _neutral(fam, shown)


def evaluate(plan: Plan, sources: Sources, as_of: date) -> Evaluation:
    """Evaluate every family at E = ``as_of`` with polars; see :class:`Evaluation`."""
    c = _Compiler(sources, as_of)
    fam = c.family_scope
    out = _Columns({}, {})
    headlines = [_headline(c, h, out) for h in plan.headlines]
    # eligibility: attached, in effect at A, at least min_headlines identified
    counts = pl.concat([identified for identified, _ in headlines]).group_by(FAM).len("n")
    eligible = _materialise(
        fam.frame.join(counts, on=FAM, how="left").select(
            *FAM,
            (
                _in_effect_at_a(plan.eligibility)
                & (pl.col("n").fill_null(0) >= plan.eligibility.min_headlines)
            ).alias("eligible"),
        )
    )
    out.states["eligibility"] = eligible.select(
        *FAM,
        pl.when(pl.col("eligible")).then(MET).otherwise(NOT_MET).cast(CODE).alias(S),
        _no_date().alias(D),
    )
    # SSP: all over identified headlines' outcomes, for eligible families
    out.states["ssp"] = _materialise(
        c.combine("all", [outcome for _, outcome in headlines], FAM)
        .join(eligible, on=FAM)
        .select(
            *FAM,
            pl.when(pl.col("eligible")).then(pl.col(S)).otherwise(NOT_MET).cast(CODE).alias(S),
            pl.when(pl.col("eligible")).then(pl.col(D)).alias(D),
        )
    )
    ce_rule = plan.continuous_employment
    if ce_rule is None or not ce_rule.in_effect(as_of):
        out.states["ce"] = _const(fam, NOT_MET)
    else:
        out.states["ce"] = c.scoped(ce_rule, fam)[0]
    return Evaluation(plan.name, plan.content_hash, as_of, _wide(c, plan, out, eligible))


def _state_keys(plan: Plan) -> list[str]:
    keys = ["eligibility", "ssp", "ce"]
    for h in plan.headlines:
        keys += [h.code, f"{h.code}.outcome"]
        for ind in h.indicators:
            keys.append(f"{h.code}.{ind.code}")
            if ind.outcome is not None:
                keys.append(f"{h.code}.{ind.code}.outcome")
    return keys


def _wide(c: _Compiler, plan: Plan, out: _Columns, eligible: pl.LazyFrame) -> pl.DataFrame:
    """One row per family: attachment, claim fields, every state and date, identified people."""
    base = c.families.select(
        "_f", "family_id", "locality", pl.col("A").alias("attached_on")
    ).collect()
    n = base.height

    def spread(got: pl.DataFrame, column: str, fill: Any = None) -> pl.Series:
        # _f numbers the families 0..n-1: put each value in its family's row
        full = pl.repeat(fill, n, dtype=got.schema[column], eager=True).alias(column)
        return full.scatter(got["_f"], got[column]) if got.height else full

    attached_rows = c.family_scope.frame.select("_f", pl.lit(True).alias("attached")).collect()
    columns: list[pl.Series] = [
        spread(attached_rows, "attached", False),
        spread(eligible.collect(), "eligible", False),
    ]
    for k in _state_keys(plan):
        got = out.states[k].select("_f", S, D).collect()
        fill = None if k.endswith(".outcome") else NOT_MET  # not attached: nothing identified
        named = spread(got, S, fill).replace_strict(
            list(range(4)), list(NAMES), return_dtype=pl.String
        )
        columns.append(named.cast(STATE_ENUM).alias(f"state:{k}"))
        columns.append(spread(got, D).alias(f"earliest:{k}"))
    frame = base.with_columns(columns).lazy()
    for key, lists in out.people.items():
        frame = frame.join(
            lists.rename({"people": f"people:{key}"}), on="_f", how="left"
        ).with_columns(pl.col(f"people:{key}").fill_null([]))
    # claimed before: the claims extract or a batch this system submitted; unknown without either
    submitted = pl.col("family_id").is_in(c.claimed_ids)
    if c.claims is not None:
        frame = frame.join(
            c.claims.with_columns(pl.lit(True).alias("_claimed")), on="family_id", how="left"
        )
        claimed = submitted | pl.col("_claimed").fill_null(False)
    else:
        frame = frame.with_columns(pl.lit(None, pl.Boolean).alias("_claimed"))
        claimed = pl.when(submitted).then(True).otherwise(None)
    frame = frame.with_columns(claimed.cast(pl.Boolean).alias("claimed")).drop("_claimed")
    ce_met = pl.col("state:ce") == "met"
    claimable = (
        pl.col("eligible") & pl.col("claimed").not_() & ((pl.col("state:ssp") == "met") | ce_met)
    ).fill_null(False)
    frame = frame.with_columns(claimable.alias("claimable")).with_columns(
        pl.when(pl.col("claimable"))
        .then(pl.when(ce_met).then(pl.lit("ce")).otherwise(pl.lit("ssp")))
        .alias("basis")
    )
    held_back = pl.col("eligible") & pl.col("claimed").fill_null(False).not_()
    frame = frame.with_columns(
        (held_back & pl.col("claimable").not_() & (pl.col("state:ssp") == "unknown")).alias(
            "insufficient_evidence"
        ),
        pl.concat_list(
            [
                pl.when(pl.col(f"state:{h.code}") == "met").then(pl.lit(h.code))
                for h in plan.headlines
            ]
        )
        .list.drop_nulls()
        .alias("identified"),
    )
    front = [
        "family_id",
        "locality",
        "attached_on",
        "attached",
        "eligible",
        "identified",
        "claimed",
        "claimable",
        "basis",
        "insufficient_evidence",
    ]
    rest = [n for n in frame.collect_schema().names() if n not in front]
    rest = [n for n in rest if n != "_f"]
    return frame.select(*front, *rest).sort("family_id").collect()


_LEAVES: dict[type[BaseModel], Any] = {
    Count: _Compiler.count,
    Reduction: _Compiler.reduction,
    Spell: _Compiler.spell,
    SpellOpen: _Compiler.spell_open,
    SpellCompleted: _Compiler.spell_completed,
    TermRate: _Compiler.term_rate,
    TermsRecorded: _Compiler.terms_recorded,
    Age: _Compiler.age,
    SnapshotTotal: _Compiler.snapshot_total,
    SnapshotVsBaseline: _Compiler.snapshot_vs_baseline,
    SnapshotKindsMissing: _Compiler.snapshot_kinds_missing,
    SnapshotDatedBefore: _Compiler.snapshot_dated_before,
    WeeksInWork: _Compiler.weeks_in_work,
}


def _const(scope: Scope, code: int) -> pl.LazyFrame:
    return _result(scope, _lit_state(code))


def _outcome(
    c: _Compiler, outcome: Outcome, fam: Scope, identified: pl.LazyFrame | None
) -> pl.LazyFrame:
    if not outcome.in_effect(c.e):
        return _const(fam, NOT_MET)
    result, _ = c.scoped(outcome, fam, identified)
    return result
