"""The reference evaluator: plain Python, one family at a time, straight from the plan.

This is the oracle the fast evaluator is tested against, and the baseline for
benchmarks. It is written to be read beside the Outcome Plan: each primitive
of the plan language is one function below.

The world as of E: rows dated after E are ignored (events, snapshots, terms
that end after E, spells and episodes that start after E); a spell with no end
date is open through E, and a spell that ends after E covers the days up to E.
Terms with 0 possible sessions are ignored everywhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from rules.dates import (
    DateWindow,
    age_on,
    first_day_after,
    monday_after,
    period_before,
    window_before,
)
from rules.model import (
    Age,
    AllNode,
    AnyNode,
    Count,
    EachPersonNode,
    Headline,
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
    describe_codes,
    node_spec,
    primitive_name,
    tables_read,
)
from rules.results import (
    Basis,
    FamilyResult,
    Figure,
    HeadlineResult,
    IndicatorResult,
    Result,
    RowRef,
)
from rules.sources import TABLES, Sources, check_sources
from rules.states import State, combine, negate

__all__ = ["evaluate_family_reference", "evaluate_reference", "load_world"]

Row = Mapping[str, Any]
ONE_DAY = timedelta(days=1)
HUNDRED = Decimal(100)


# ---------------------------------------------------------------------------
# the data: every loaded table, grouped by family


@dataclass(frozen=True)
class World:
    """The loaded source tables as plain rows, grouped by family."""

    loaded: frozenset[str]
    families: tuple[Row, ...]
    people: Mapping[str, tuple[Row, ...]]  # family_id -> members, by person_id
    rows: Mapping[str, Mapping[str, tuple[Row, ...]]]  # table -> family_id -> rows
    claimed: frozenset[str]  # family ids claimed (claims table + submitted batches)
    claims_loaded: bool


def load_world(sources: Sources) -> World:
    """Collect every loaded table into plain Python rows grouped by family."""
    check_sources(sources)
    data: dict[str, list[dict[str, Any]]] = {
        name: frame.collect().to_dicts() for name, frame in sources.tables.items()
    }
    people_by_family: dict[str, list[Row]] = defaultdict(list)
    family_of: dict[str, str] = {}
    for person in sorted(data.get("people", []), key=lambda p: str(p["person_id"])):
        people_by_family[person["family_id"]].append(person)
        family_of[person["person_id"]] = person["family_id"]
    rows: dict[str, dict[str, list[Row]]] = {}
    for name, table_rows in data.items():
        if name in ("families", "people", "claims"):
            continue
        grouped: dict[str, list[Row]] = defaultdict(list)
        key = TABLES[name].key
        for row in table_rows:
            family = row[key] if key == "family_id" else family_of.get(row[key])
            if family is not None:
                grouped[family].append(row)
        rows[name] = {f: sorted(rs, key=lambda r: int(r["row_no"])) for f, rs in grouped.items()}
    claimed = set(sources.claimed_family_ids)
    claimed.update(str(r["family_id"]) for r in data.get("claims", []))
    return World(
        loaded=frozenset(sources.tables),
        families=tuple(sorted(data.get("families", []), key=lambda f: str(f["family_id"]))),
        people={f: tuple(p) for f, p in people_by_family.items()},
        rows={t: {f: tuple(r) for f, r in g.items()} for t, g in rows.items()},
        claimed=frozenset(claimed),
        claims_loaded="claims" in sources.tables,
    )


# ---------------------------------------------------------------------------
# one family at E


@dataclass
class Ctx:
    """The family being evaluated, A and E, and (optionally) the person in scope."""

    family_id: str
    a: date
    e: date
    loaded: frozenset[str]
    people: tuple[Row, ...]
    tables: Mapping[str, tuple[Row, ...]]  # rows as of E, for the whole family
    person: Row | None = None
    _cache: dict[tuple[str, str | None], tuple[Row, ...]] = field(default_factory=dict)

    def for_person(self, person: Row) -> Ctx:
        """The same family with ``person`` in scope."""
        return Ctx(
            self.family_id,
            self.a,
            self.e,
            self.loaded,
            self.people,
            self.tables,
            person,
            self._cache,
        )

    @property
    def person_id(self) -> str | None:
        """The person in scope, if any."""
        return None if self.person is None else str(self.person["person_id"])

    def anchor(self, name: str) -> date:
        """The date called A or E."""
        return self.a if name == "A" else self.e

    def rows(self, table: str, where: Mapping[str, list[str]] | None = None) -> list[Row]:
        """Rows of ``table`` for the person in scope (or the whole family), filtered by codes."""
        key = (table, self.person_id if TABLES[table].key == "person_id" else None)
        if key not in self._cache:
            rows = self.tables.get(table, ())
            if key[1] is not None:
                rows = tuple(r for r in rows if r["person_id"] == key[1])
            self._cache[key] = rows
        rows = self._cache[key]
        if not where:
            return list(rows)
        return [r for r in rows if all(r[c] in codes for c, codes in where.items())]


def _as_of(table: str, rows: Iterable[Row], e: date) -> tuple[Row, ...]:
    """The rows of a table that exist in the world as of E."""
    t = TABLES[table]
    keep: list[Row] = []
    for r in rows:
        if t.shape == "spell" and r[t.date or ""] > e:
            continue  # a spell that starts after E
        if t.shape == "term" and (r["term_end"] > e or r["possible_sessions"] == 0):
            continue  # a term that ends after E, or one with no possible sessions
        if t.shape in ("event", "snapshot") and r[t.date or ""] > e:
            continue
        keep.append(r)
    return tuple(keep)


def _refs(table: str, rows: Iterable[Row]) -> tuple[RowRef, ...]:
    return tuple(sorted(RowRef(table, int(r["row_no"])) for r in rows))


def _unknown(table: str, what: str) -> Result:
    return Result("unknown", what, figures={"missing": f"{table} never loaded"})


def _window(ctx: Ctx, window: Window) -> DateWindow:
    return window_before(ctx.anchor(window.anchor), window.period)


# ---------------------------------------------------------------------------
# leaf primitives


def _spell_end(row: Row, table: str, e: date) -> date:
    """The last day a spell covers in the world as of E (open spells run through E)."""
    end = row[TABLES[table].end or ""]
    return e if end is None or end > e else end


def _select_terms(ctx: Ctx, sel: TermSelection) -> list[Row]:
    """The selected terms, most recent first (by term_end, then term_start)."""
    terms = ctx.rows("attendance")
    if sel.window is not None:
        w = _window(ctx, sel.window)
        terms = [t for t in terms if w.contains(t["term_end"])]
    if sel.start_on_or_after is not None:
        terms = [t for t in terms if t["term_start"] >= ctx.a]
    terms.sort(key=lambda t: (t["term_end"], t["term_start"]), reverse=True)
    return terms[: sel.last] if sel.last else terms


def count(spec: Count, ctx: Ctx) -> Result:
    """Events in a window, compared with a threshold."""
    t = TABLES[spec.table]
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, f"count of {spec.table}")
    events = ctx.rows(spec.table, spec.where)
    figures: dict[str, Figure] = {}
    rows_extra: tuple[RowRef, ...] = ()
    window_text: str
    if isinstance(spec.window, Window):
        w = _window(ctx, spec.window)
        inside = [r for r in events if w.contains(r[t.date or ""])]
        window_text = f"{spec.window.describe()} {w}"
    elif isinstance(spec.window, SinceAttachment):
        w = DateWindow(ctx.a, ctx.e)
        inside = [r for r in events if w.contains(r[t.date or ""])]
        window_text = f"after A {w}"
    else:
        assert isinstance(spec.window, InTerms)
        if "attendance" not in ctx.loaded:
            return _unknown("attendance", f"count of {spec.table} within terms")
        terms = _select_terms(ctx, spec.window.in_terms)
        inside = [
            r
            for r in events
            if any(x["term_start"] <= r[t.date or ""] <= x["term_end"] for x in terms)
        ]
        window_text = spec.window.describe()
        figures["terms"] = ", ".join(
            f"{x['term_start'].isoformat()}..{x['term_end'].isoformat()}" for x in terms
        )
        rows_extra = _refs("attendance", terms)
    n = len(inside)
    state: State = "met" if spec.passes(n) else "not_met"
    figures.update(count=n, threshold=spec.describe_threshold())
    return Result(
        state,
        f"{spec.table}{describe_codes(spec.where)} {window_text}",
        figures=figures,
        rows=_refs(spec.table, inside) + rows_extra,
    )


def reduction(spec: Reduction, ctx: Ctx) -> Result:
    """Events in the later window are at least p% fewer than in the baseline window."""
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, f"reduction in {spec.table}")
    t = TABLES[spec.table]
    events = ctx.rows(spec.table, spec.where)
    wb, wl = _window(ctx, spec.baseline), _window(ctx, spec.later)
    base = [r for r in events if wb.contains(r[t.date or ""])]
    later = [r for r in events if wl.contains(r[t.date or ""])]
    b, n = len(base), len(later)
    met = HUNDRED * n <= (HUNDRED - spec.at_least_percent) * b
    figures: dict[str, Figure] = {
        "baseline": b,
        "later": n,
        "required_reduction_percent": spec.at_least_percent,
        "baseline_window": str(wb),
        "later_window": str(wl),
    }
    if b:
        figures["reduction_percent"] = ((b - n) * HUNDRED / b).quantize(Decimal("0.01"))
    return Result(
        "met" if met else "not_met",
        f"{spec.table}{describe_codes(spec.where)} at least {spec.at_least_percent}% fewer in "
        f"{spec.later.describe()} than in {spec.baseline.describe()}",
        figures=figures,
        rows=_refs(spec.table, base + later),
    )


def spell(spec: Spell, ctx: Ctx) -> Result:
    """A spell covering a date, or covering any day of a window."""
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, f"{spec.table} spell")
    t = TABLES[spec.table]
    spells = ctx.rows(spec.table, spec.where)
    if spec.covers is not None:
        d = ctx.anchor(spec.covers)
        hits = [r for r in spells if r[t.date or ""] <= d <= _spell_end(r, spec.table, ctx.e)]
        what = f"{spec.table}{describe_codes(spec.where)} spell covering {spec.covers} ({d.isoformat()})"
    else:
        assert spec.overlaps is not None
        w = _window(ctx, spec.overlaps)
        hits = [r for r in spells if w.overlaps(r[t.date or ""], _spell_end(r, spec.table, ctx.e))]
        what = f"{spec.table}{describe_codes(spec.where)} spell covering any day of " + (
            f"{spec.overlaps.describe()} {w}"
        )
    return Result(
        "met" if hits else "not_met",
        what,
        figures={"spells": len(hits)},
        rows=_refs(spec.table, hits),
    )


def spell_open(spec: SpellOpen, ctx: Ctx) -> Result:
    """A spell open at E that started on or before E - since (pending if it started later)."""
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, f"open {spec.table} spell")
    t = TABLES[spec.table]
    since = spec.since.period
    cutoff = period_before(ctx.e, since)
    what = f"{spec.table}{describe_codes(spec.where)} spell open at E and started on or before E - {since}"
    spells = ctx.rows(spec.table, spec.where)
    is_open = [r for r in spells if r[t.end or ""] is None or r[t.end or ""] >= ctx.e]
    long_enough = [r for r in is_open if r[t.date or ""] <= cutoff]
    figures: dict[str, Figure] = {"started_by": cutoff}
    if long_enough:
        return Result("met", what, figures=figures, rows=_refs(spec.table, long_enough))
    if is_open:
        earliest = min(first_day_after(r[t.date or ""], since) for r in is_open)
        return Result(
            "pending", what, earliest=earliest, figures=figures, rows=_refs(spec.table, is_open)
        )
    return Result("not_met", what, figures=figures)


def spell_completed(spec: SpellCompleted, ctx: Ctx) -> Result:
    """A spell that ended (with ``ended_with``) after A, at least ``since`` before E, and no
    later spell started on or after its end (pending while it ended less than ``since`` ago)."""
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, f"completed {spec.table} spell")
    t = TABLES[spec.table]
    start, end = t.date or "", t.end or ""
    since = spec.since.period
    cutoff = period_before(ctx.e, since)
    spells = ctx.rows(spec.table, spec.where)
    ended = [
        r
        for r in spells
        if r[end] is not None
        and ctx.a < r[end] <= ctx.e
        and all(r.get(c) in codes for c, codes in spec.ended_with.items())
        and not any(o is not r and o[start] >= r[end] for o in spells)
    ]
    what = (
        f"{spec.table}{describe_codes(spec.where)} spell ended{describe_codes(spec.ended_with)} after A and "
        f"on or before E - {since}, with no later spell"
    )
    figures: dict[str, Figure] = {"ended_by": cutoff}
    done = [r for r in ended if r[end] <= cutoff]
    if done:
        return Result("met", what, figures=figures, rows=_refs(spec.table, done))
    if ended:
        earliest = min(first_day_after(r[end], since) for r in ended)
        return Result(
            "pending", what, earliest=earliest, figures=figures, rows=_refs(spec.table, ended)
        )
    return Result("not_met", what, figures=figures)


def term_rate(spec: TermRate, ctx: Ctx) -> Result:
    """Unauthorised sessions as a percentage of possible sessions over the selected terms."""
    what = f"unauthorised absence over {spec.terms.describe()}"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    terms = _select_terms(ctx, spec.terms)
    if not terms:
        return Result("unknown", what, figures={"terms": 0})
    unauthorised = sum(int(x["unauthorised_sessions"]) for x in terms)
    possible = sum(int(x["possible_sessions"]) for x in terms)
    figures: dict[str, Figure] = {
        "terms": len(terms),
        "unauthorised_sessions": unauthorised,
        "possible_sessions": possible,
        "rate_percent": (unauthorised * HUNDRED / possible).quantize(Decimal("0.01")),
    }
    if spec.at_least_percent is not None:
        met = HUNDRED * unauthorised >= spec.at_least_percent * possible
        figures["threshold"] = f">= {spec.at_least_percent}%"
    else:
        assert spec.below_percent is not None
        met = HUNDRED * unauthorised < spec.below_percent * possible
        figures["threshold"] = f"< {spec.below_percent}%"
    return Result("met" if met else "not_met", what, figures=figures, rows=_refs(spec.table, terms))


def terms_recorded(spec: TermsRecorded, ctx: Ctx) -> Result:
    """At least K terms (with possible sessions) in the selection."""
    what = f"at least {spec.at_least} of {spec.terms.describe()} recorded"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    terms = _select_terms(ctx, spec.terms)
    return Result(
        "met" if len(terms) >= spec.at_least else "not_met",
        what,
        figures={"terms": len(terms), "threshold": f">= {spec.at_least}"},
        rows=_refs(spec.table, terms),
    )


def age(spec: Age, ctx: Ctx) -> Result:
    """Age in whole years on A or E within the bounds; unknown without a birth date."""
    assert ctx.person is not None
    d = ctx.anchor(spec.at)
    bounds = f"{spec.at_least if spec.at_least is not None else 0}-{spec.at_most or ''}"
    what = f"aged {bounds} on {spec.at} ({d.isoformat()})"
    rows = (RowRef("people", int(ctx.person["row_no"])),)
    birth = ctx.person.get("birth_date")
    if birth is None:
        return Result("unknown", what, figures={"birth_date": None}, rows=rows)
    years = age_on(birth, d)
    ok = (spec.at_least is None or years >= spec.at_least) and (
        spec.at_most is None or years <= spec.at_most
    )
    return Result("met" if ok else "not_met", what, figures={"age": years}, rows=rows)


def _latest_snapshots(ctx: Ctx, table: str, w: DateWindow) -> dict[str, Row]:
    """The latest snapshot of each kind recorded in the window."""
    t = TABLES[table]
    latest: dict[str, Row] = {}
    for r in ctx.rows(table):
        if w.contains(r[t.date or ""]):
            kind = str(r["kind"])
            if kind not in latest or r[t.date or ""] > latest[kind][t.date or ""]:
                latest[kind] = r
    return latest


def _total(latest: Mapping[str, Row]) -> Decimal:
    return sum((Decimal(r["amount"]) for r in latest.values()), Decimal("0.00"))


def snapshot_total(spec: SnapshotTotal, ctx: Ctx) -> Result:
    """The sum over kinds of the latest snapshot of each kind in the window."""
    what = f"{spec.table} total in {spec.window.describe()}"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    w = _window(ctx, spec.window)
    latest = _latest_snapshots(ctx, spec.table, w)
    total = _total(latest)
    return Result(
        "met" if total >= spec.at_least else "not_met",
        f"{what} {w}",
        figures={"total": total, "threshold": f">= {spec.at_least}"},
        rows=_refs(spec.table, latest.values()),
    )


def snapshot_vs_baseline(spec: SnapshotVsBaseline, ctx: Ctx) -> Result:
    """The total now is at most p% of the total at the baseline."""
    what = f"{spec.table} total now at most {spec.at_most_percent}% of the baseline"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    wb, wc = _window(ctx, spec.baseline), _window(ctx, spec.current)
    base, now = _latest_snapshots(ctx, spec.table, wb), _latest_snapshots(ctx, spec.table, wc)
    b, c = _total(base), _total(now)
    return Result(
        "met" if HUNDRED * c <= spec.at_most_percent * b else "not_met",
        what,
        figures={
            "baseline": b,
            "current": c,
            "threshold": f"<= {spec.at_most_percent}% of baseline",
            "baseline_window": str(wb),
            "current_window": str(wc),
        },
        rows=_refs(spec.table, list(base.values()) + list(now.values())),
    )


def snapshot_kinds_missing(spec: SnapshotKindsMissing, ctx: Ctx) -> Result:
    """Some kind in the baseline (a snapshot above 0) has no snapshot in the current window."""
    what = f"a kind of {spec.table} in the baseline has no snapshot in {spec.current.describe()}"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    t = TABLES[spec.table]
    wb, wc = _window(ctx, spec.baseline), _window(ctx, spec.current)
    rows = ctx.rows(spec.table)
    in_baseline = [r for r in rows if wb.contains(r[t.date or ""]) and r["amount"] > 0]
    now = {str(r["kind"]) for r in rows if wc.contains(r[t.date or ""])}
    missing = sorted({str(r["kind"]) for r in in_baseline} - now)
    return Result(
        "met" if missing else "not_met",
        what,
        figures={"missing_kinds": ", ".join(missing)},
        rows=_refs(spec.table, [r for r in in_baseline if r["kind"] in missing]),
    )


def snapshot_dated_before(spec: SnapshotDatedBefore, ctx: Ctx) -> Result:
    """A snapshot summed now is dated before the first day D with D - sustain >= A."""
    sustain = spec.sustain.period
    d = first_day_after(ctx.a, sustain)
    what = f"a {spec.table} snapshot summed now is dated before {d.isoformat()}"
    if spec.table not in ctx.loaded:
        return _unknown(spec.table, what)
    latest = _latest_snapshots(ctx, spec.table, _window(ctx, spec.window))
    early = [r for r in latest.values() if r[TABLES[spec.table].date or ""] < d]
    return Result(
        "met" if early else "not_met",
        what,
        figures={"sustained_from": d},
        rows=_refs(spec.table, early),
        flips_on=d,
    )


def _merge(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """Merge closed date spans that overlap or touch into disjoint spans."""
    merged: list[tuple[date, date]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1] + ONE_DAY:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def weeks_in_work(spec: WeeksInWork, ctx: Ctx) -> Result:
    """K weeks in work out of M consecutive ISO weeks, after A and ending by E."""
    oow, emp = spec.out_of_work, spec.employment
    for table in (oow.table, emp.table):
        if table not in ctx.loaded:
            return _unknown(table, "weeks in work")
    tb, te = TABLES[oow.table], TABLES[emp.table]
    benefits = ctx.rows(oow.table, oow.where)
    at_a = [r for r in benefits if r[tb.date or ""] <= ctx.a <= _spell_end(r, oow.table, ctx.e)]
    qualifying = [
        req
        for req in spec.requirements
        if any(all(r[c] in codes for c, codes in req.when.items()) for r in at_a)
    ]
    # several benefits covering A: the longest requirement applies
    chosen = max(qualifying, key=lambda req: (req.weeks, req.out_of), default=None)
    if chosen is None:
        return Result(
            "not_met",
            "weeks in work",
            figures={"requirement": "no qualifying out-of-work spell covering A"},
            rows=_refs(oow.table, at_a),
        )
    k, m = chosen.weeks, chosen.out_of
    what = f"{k} weeks in work out of {m} consecutive weeks after A"
    first_monday = monday_after(ctx.a)
    first_end = first_monday + timedelta(days=7 * m - 1)
    figures: dict[str, Figure] = {"weeks_required": k, "out_of": m, "first_monday": first_monday}
    if first_end > ctx.e:
        return Result(
            "pending", what, earliest=first_end, figures=figures, rows=_refs(oow.table, at_a)
        )
    n_weeks = ((ctx.e - first_monday).days + 1) // 7
    work = _merge(
        (r[te.date or ""], _spell_end(r, emp.table, ctx.e)) for r in ctx.rows(emp.table, emp.where)
    )
    claims = [(r[tb.date or ""], _spell_end(r, oow.table, ctx.e)) for r in benefits]
    in_work: list[bool] = []
    for i in range(n_weeks):
        mon = first_monday + timedelta(days=7 * i)
        sun = mon + timedelta(days=6)
        employed = any(s <= mon and sun <= e for s, e in work)
        claiming = any(s <= sun and e >= mon for s, e in claims)
        in_work.append(employed and not claiming)
    best, best_start = -1, 0
    running = sum(in_work[:m])
    for start in range(n_weeks - m + 1):
        if start:
            running += in_work[start + m - 1] - in_work[start - 1]
        if running > best:
            best, best_start = running, start
        if running >= k:
            break
    window_start = first_monday + timedelta(days=7 * best_start)
    window_end = window_start + timedelta(days=7 * m - 1)
    figures.update(
        weeks_in_work=best,
        window=f"{window_start.isoformat()}..{window_end.isoformat()}",
    )
    w = DateWindow(window_start - ONE_DAY, window_end)
    evidence = [
        r
        for r in ctx.rows(emp.table, emp.where)
        if w.overlaps(r[te.date or ""], _spell_end(r, emp.table, ctx.e))
    ]
    rows = _refs(emp.table, evidence) + _refs(
        oow.table,
        [r for r in benefits if w.overlaps(r[tb.date or ""], _spell_end(r, oow.table, ctx.e))],
    )
    return Result("met" if best >= k else "not_met", what, figures=figures, rows=rows)


_LEAVES: dict[type[BaseModel], Any] = {
    Count: count,
    Reduction: reduction,
    Spell: spell,
    SpellOpen: spell_open,
    SpellCompleted: spell_completed,
    TermRate: term_rate,
    TermsRecorded: terms_recorded,
    Age: age,
    SnapshotTotal: snapshot_total,
    SnapshotVsBaseline: snapshot_vs_baseline,
    SnapshotKindsMissing: snapshot_kinds_missing,
    SnapshotDatedBefore: snapshot_dated_before,
    WeeksInWork: weeks_in_work,
}


# ---------------------------------------------------------------------------
# combinators, scopes, steps and rules


def _combined(how: Literal["all", "any"], what: str, parts: Sequence[Result]) -> Result:
    state, earliest = combine(how, ((p.state, p.earliest) for p in parts))
    return Result(state, what, earliest=earliest, parts=tuple(parts))


def criterion(node: BaseModel, ctx: Ctx) -> Result:
    """Evaluate one criterion node."""
    spec = node_spec(node)
    if isinstance(node, AllNode):
        return _combined("all", "all of", [criterion(n, ctx) for n in spec])
    if isinstance(node, AnyNode):
        return _combined("any", "any of", [criterion(n, ctx) for n in spec])
    if isinstance(node, NotNode):
        inner = criterion(spec, ctx)
        return Result(negate(inner.state), "not", earliest=inner.earliest, parts=(inner,))
    if isinstance(node, EachPersonNode):
        people = [p for p in ctx.people if spec.role == "member" or p["role"] == spec.role]
        parts = [_with_person(criterion(spec.test, ctx.for_person(p)), p) for p in people]
        return _combined(spec.combine, f"for each {spec.role} ({spec.combine})", parts)
    result: Result = _LEAVES[type(spec)](spec, ctx)
    return result


def _with_person(result: Result, person: Row) -> Result:
    return Result(
        result.state,
        result.what,
        earliest=result.earliest,
        figures=result.figures,
        rows=result.rows,
        parts=result.parts,
        person_id=str(person["person_id"]),
        flips_on=result.flips_on,
    )


def _wait(step: WaitStep, ctx: Ctx) -> Result | None:
    period = step.wait.period
    start = period_before(ctx.e, period)
    if start < ctx.a:
        return Result(
            "pending",
            f"the {period} up to E must lie wholly after A",
            earliest=first_day_after(ctx.a, period),
            figures={"window_start": start, "attached_on": ctx.a},
        )
    return None


def _missing(tables: Iterable[str], ctx: Ctx) -> Result | None:
    missing = sorted(t for t in set(tables) if t not in ctx.loaded)
    if missing:
        return Result(
            "unknown",
            "evidence missing",
            figures={"missing": ", ".join(f"{t} never loaded" for t in missing)},
        )
    return None


def run_rule(rule: Rule, ctx: Ctx, what: str) -> Result:
    """Run a rule's steps in order, then its test, for the subject in ``ctx``.

    Leading ``wait`` steps come first (the window test), then the evidence test
    for every table the rule reads that no explicit ``needs`` step names, then
    the remaining steps in the order written, then the test.
    """
    steps = list(rule.steps)
    i = 0
    while i < len(steps) and isinstance(steps[i], WaitStep):
        waiting = _wait(steps[i], ctx)  # type: ignore[arg-type]
        if waiting is not None:
            return _wrap(waiting, what)
        i += 1
    explicit = {t for s in steps if isinstance(s, NeedsStep) for t in s.needs}
    missing = _missing(tables_read(rule) - explicit, ctx)
    if missing is not None:
        return _wrap(missing, what)
    for step in steps[i:]:
        if isinstance(step, WaitStep):
            waiting = _wait(step, ctx)
            if waiting is not None:
                return _wrap(waiting, what)
        elif isinstance(step, NeedsStep):
            missing = _missing(step.needs, ctx)
            if missing is not None:
                return _wrap(missing, what)
        else:
            node = step.if_ if step.if_ is not None else step.unless
            assert node is not None
            guard = criterion(node, ctx)
            if guard.state in ("pending", "unknown"):
                return _wrap(guard, what)
            fires = guard.met if step.if_ is not None else not guard.met
            if fires:
                earliest = guard.flips_on if step.then == "pending" else None
                label = f"{'if' if step.if_ is not None else 'unless'} {primitive_name(node)}"
                because = Result(
                    guard.state, label, figures=guard.figures, rows=guard.rows, parts=guard.parts
                )
                return Result(step.then, what, earliest=earliest, parts=(because,))
    return _wrap(criterion(rule.test, ctx), what)


def _wrap(result: Result, what: str) -> Result:
    return Result(result.state, what, earliest=result.earliest, parts=(result,))


def run_scoped(rule: Rule, ctx: Ctx, what: str, identified: Sequence[str] = ()) -> Result:
    """Run a rule for its scope: the family, the identified people, or people with a role."""
    scope = rule.for_
    if scope == "family":
        return run_rule(rule, ctx, what)
    if "people" not in ctx.loaded:
        return Result("unknown", what, figures={"missing": "people never loaded"})
    if scope == "identified_people":
        people = [p for p in ctx.people if p["person_id"] in identified]
        how: Literal["all", "any"] = "all"
        label = "for every person who identified it"
    else:
        assert isinstance(scope, PeopleScope)
        role = scope.people
        people = [p for p in ctx.people if role == "member" or p["role"] == role]
        how = scope.combine
        label = f"for each {role} ({how})"
    parts = [_with_person(run_rule(rule, ctx.for_person(p), label), p) for p in people]
    state, earliest = combine(how, ((p.state, p.earliest) for p in parts))
    return Result(state, what, earliest=earliest, parts=tuple(parts))


def _not_in_effect(what: str, on: str, d: date) -> Result:
    return Result("not_met", what, figures={"not_in_effect_on": f"{on} {d.isoformat()}"})


def _outcome(outcome: Outcome, ctx: Ctx, what: str, identified: Sequence[str]) -> Result:
    if not outcome.in_effect(ctx.e):
        return _not_in_effect(what, "E", ctx.e)
    return run_scoped(outcome, ctx, what, identified)


def _headline(headline: Headline, ctx: Ctx) -> HeadlineResult:
    indicators: list[IndicatorResult] = []
    for ind in headline.indicators:
        what = f"indicator {headline.code}.{ind.code}: {ind.name}"
        if not ind.in_effect(ctx.a):
            result = _not_in_effect(what, "A", ctx.a)
        else:
            result = run_scoped(ind, ctx, what)
        people = tuple(str(p.person_id) for p in result.parts if p.person_id and p.met)
        indicators.append(IndicatorResult(headline.code, ind.code, result, people))
    identification = _combined(
        "any", f"headline {headline.code}: {headline.name}", [i.identification for i in indicators]
    )
    if not identification.met:
        return HeadlineResult(headline.code, identification, tuple(indicators))
    if headline.outcome is not None:
        everyone = sorted({p for i in indicators if i.identified for p in i.people})
        outcome = _outcome(headline.outcome, ctx, f"outcome {headline.code}", everyone)
        return HeadlineResult(headline.code, identification, tuple(indicators), outcome)
    with_outcomes: list[IndicatorResult] = []
    for ind_result, ind in zip(indicators, headline.indicators, strict=True):
        if ind_result.identified and ind.outcome is not None:
            ind_outcome = _outcome(
                ind.outcome, ctx, f"outcome {headline.code}.{ind.code}", ind_result.people
            )
            ind_result = IndicatorResult(
                ind_result.headline,
                ind_result.code,
                ind_result.identification,
                ind_result.people,
                ind_outcome,
            )
        with_outcomes.append(ind_result)
    outcome = _combined(
        "all",
        f"outcome {headline.code} (every indicator that identified it)",
        [i.outcome for i in with_outcomes if i.outcome is not None],
    )
    return HeadlineResult(headline.code, identification, tuple(with_outcomes), outcome)


def evaluate_family_reference(plan: Plan, world: World, family: Row, as_of: date) -> FamilyResult:
    """Evaluate one family at E = ``as_of``, exactly as the plan reads."""
    family_id = str(family["family_id"])
    a: date | None = family.get("attached_on")
    claimed: bool | None = (
        True if family_id in world.claimed else (False if world.claims_loaded else None)
    )
    locality = family.get("locality")
    if a is None or a > as_of:
        reason = "not attached" if a is None else f"attached after E ({a.isoformat()})"
        nothing = Result("not_met", reason)
        headlines = tuple(
            HeadlineResult(
                h.code,
                nothing,
                tuple(IndicatorResult(h.code, i.code, nothing) for i in h.indicators),
            )
            for h in plan.headlines
        )
        return FamilyResult(
            family_id,
            as_of,
            a,
            False,
            headlines,
            nothing,
            nothing,
            nothing,
            claimed,
            False,
            None,
            locality,
        )
    tables = {t: _as_of(t, rows.get(family_id, ()), as_of) for t, rows in world.rows.items()}
    ctx = Ctx(family_id, a, as_of, world.loaded, world.people.get(family_id, ()), tables)
    headlines = tuple(_headline(h, ctx) for h in plan.headlines)
    rule = plan.eligibility
    identified = [h.code for h in headlines if h.identified]
    what = f"at least {rule.min_headlines} headlines identified at A"
    if not rule.in_effect(a):
        eligibility = _not_in_effect(what, "A", a)
    else:
        eligibility = Result(
            "met" if len(identified) >= rule.min_headlines else "not_met",
            what,
            figures={
                "identified": len(identified),
                "headlines": ", ".join(identified),
                "threshold": f">= {rule.min_headlines}",
            },
            parts=tuple(h.identification for h in headlines),
        )
    if eligibility.met:
        ssp = _combined(
            "all",
            "significant and sustained progress on every identified headline",
            [h.outcome for h in headlines if h.outcome is not None],
        )
    else:
        ssp = Result("not_met", "significant and sustained progress: the family is not eligible")
    ce_rule = plan.continuous_employment
    if ce_rule is None:
        ce = Result("not_met", "continuous employment: this plan has no such route")
    else:
        ce = _outcome(ce_rule, ctx, "continuous employment", ())
    claimable = eligibility.met and claimed is False and (ssp.met or ce.met)
    basis: Basis | None = ("ce" if ce.met else "ssp") if claimable else None
    return FamilyResult(
        family_id,
        as_of,
        a,
        True,
        headlines,
        eligibility,
        ssp,
        ce,
        claimed,
        claimable,
        basis,
        locality,
    )


def evaluate_reference(
    plan: Plan,
    sources: Sources,
    as_of: date,
    family_ids: Iterable[str] | None = None,
) -> list[FamilyResult]:
    """Evaluate every family (or those in ``family_ids``) at E = ``as_of``, one at a time."""
    world = load_world(sources)
    wanted = None if family_ids is None else set(family_ids)
    return [
        evaluate_family_reference(plan, world, f, as_of)
        for f in world.families
        if wanted is None or f["family_id"] in wanted
    ]
