"""The vectorised evaluator: a plan compiled to polars lazy queries, every family at E at once.

How the plan becomes a query
----------------------------
Every criterion is evaluated for a *subject*: a family or a person. There are
two subject frames, with one row per subject:

* ``F``: the attached families (``_f``, ``A`` and the A-relative dates the plan
  needs, such as A - 12 months, computed once per family);
* ``P``: the members of attached families (``_p``, ``_f``, ``A``, role, birth
  date).

A leaf primitive (``count``, ``spell``, ``term_rate`` ...) becomes aggregate
expressions over the rows of its source table: each table is read once, as of
E, joined once to its subjects, and grouped once per subject level, with every
leaf that reads it contributing conditional aggregates to the same
``group_by`` (``(cond).sum()``, ``when(cond).then(x).min()``). A table's
``where`` filters (codes of a column) are boolean columns of its rows, computed
as they are read; where the rows are sorted by subject (the attendance terms)
and every aggregate is an integer sum, the sums are differences of running
totals instead of a ``group_by`` (``_aggregated``). Primitives that
need more than one pass (the most recent terms, the latest snapshot of each
kind, "no later spell") build small derived frames keyed by subject; weeks in
work is a numpy pass over the runs of weeks in work (``_best_windows``).
Everything above the leaves -- ``all``, ``any``, ``not``, rule steps, effective
dates, identification, eligibility, SSP, CE and claimability -- is column
arithmetic on ``P`` and ``F``; per-person columns are combined into
families by one query over ``P``'s runs of people: a family's k-th person's
value, gathered for every k, then a horizontal max, min or any
(``_to_families``).

How it runs
-----------
The plan is compiled before any table is read (only the families and their
members are read meanwhile, on a second thread: they do not depend on the plan;
their A-relative dates are added afterwards). The compilation finds the
A-relative dates, term selections and, per table, the rows any leaf can look at;
the frames it builds from the tables are *recipes* (``_Recipe``: the calls made,
replayed once the data is there). Then each source table is read once (filtered
to those rows; from 100,000 attached families on, with the streaming engine),
the derived frames read by several parts are computed once (in rounds, each
round's in one ``collect_all``; those built from other computed frames, such as
weeks in work's, on the second thread while ``P``'s other aggregates are
collected), and the subject frames are assembled: ``P`` (its aggregates, one
``group_by`` per source in ``collect_all``, then its columns), the family
aggregates of ``P``, ``F`` in the same way, and the result. The evidence rows
are gathered on the second thread meanwhile, in two halves: the leaves' rows
kept by the people's conditions as soon as ``P`` is built, then by the
families' conditions once ``F`` is (below the streaming size; above it, after
the result, so that the two do not add up in memory).

States are small integer codes ordered as the ``all`` combination ranks them:
met 0, unknown 1, pending 2, not_met 3, so ``all`` is the maximum; swapping met
and not_met (codes 0 and 3) turns that order into the ``any`` order, so ``any``
is the swap of the maximum of the swaps, and ``not`` is the swap itself.

Evidence
--------
Each leaf also yields the source rows it reports (exactly the rows the
reference evaluator's result for that leaf lists). Which leaves count for a
key is decided per subject by the rule's steps (the step that settled the
state, or the test), the people in scope and the key's context (attached,
rule in effect, headline or indicator identified). Those rows are collected in
long form, filtered by per-subject bit masks and gathered into one list per
family and key at the end.

The meaning is the reference evaluator's (``rules.reference``); the two are
checked against each other, states, dates and evidence rows, by differential
property tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import cache, partial
from typing import Any, Generic, Literal, TypeVar, cast

import numpy as np
import polars as pl
from numpy.typing import NDArray
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
    primitive_name,
    tables_read,
)
from rules.sources import MONEY, TABLES, Sources, check_sources
from rules.states import STATES, State

__all__ = ["ROW_TABLES", "Evaluation", "evaluate"]

# state codes in the order ``all`` ranks them (see the module docstring)
NAMES: tuple[State, ...] = ("met", "unknown", "pending", "not_met")
CODES: dict[State, int] = {state: code for code, state in enumerate(NAMES)}
MET, UNKNOWN, PENDING, NOT_MET = (CODES[state] for state in NAMES)
STATE_ENUM = pl.Enum(list(STATES))
CODE = pl.Int8
Level = Literal["P", "F"]

# Evidence row keys: (table number << 40) | row_no, tables numbered in name order, so that
# sorting the keys sorts (table, row_no) as RowRef sorts.
ROW_TABLES: tuple[str, ...] = tuple(sorted(TABLES))
ROW_TABLE_ENUM = pl.Enum(list(ROW_TABLES))
_ROW_BITS = 40
_ROW_MASK = (1 << _ROW_BITS) - 1
_ROW_KEY_BITS = _ROW_BITS + (len(ROW_TABLES) - 1).bit_length()  # a row key fits in these
ROW_REF = pl.Struct({"table": ROW_TABLE_ENUM, "row_no": pl.Int64})
_TABLE_OF_NUMBER = pl.lit(pl.Series("table", ROW_TABLES, dtype=ROW_TABLE_ENUM))
# each code's state: codes become states by a gather (replace_strict into an Enum costs
# over ten times as much, a gather of positions then a cast twice as much)
_STATE_OF_CODE = pl.lit(pl.Series("state", list(NAMES), dtype=STATE_ENUM))
_BIG = 1 << 20  # shifts day numbers to be positive in sort keys
_ENGINE: Literal["in-memory", "streaming"] = "in-memory"
_STREAM_FROM = 100_000  # attached families from which the source tables are read streaming


def _lean_flags() -> pl.QueryOptFlags:
    """The optimizer's passes for the evidence's query, dozens of short branches that only
    filter frames in memory: the pushdowns alone. The other passes (common subplans and
    subexpressions above all) cost more than they save there: it runs in half the time."""
    flags = pl.QueryOptFlags.none()
    flags.predicate_pushdown = True
    flags.projection_pushdown = True
    return flags


_LEAN = _lean_flags()


@cache
def _typed(value: Any, dtype: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """A literal of a type, built once: a typed literal costs more to build than most of the
    expressions around it, and a compilation needs the same few many times."""
    return pl.lit(value, dtype)


def _swap(e: pl.Expr) -> pl.Expr:
    """Swap met and not_met: the ``not`` of a state, and the bridge between all and any.

    Two comparisons and a subtraction on the codes: a gather from a table of codes casts
    the codes to indexes and checks them, several times the cost."""
    swapped = (
        pl.when((e == _code(MET)) | (e == _code(NOT_MET)))
        .then(_code(MET + NOT_MET) - e)
        .otherwise(e)
    )
    return swapped.cast(CODE)


def _state_enum(code: pl.Expr) -> pl.Expr:
    """State codes as STATE_ENUM values (a gather: codes are 0..3)."""
    return _STATE_OF_CODE.gather(code.cast(pl.UInt32))


def _code(code: int) -> pl.Expr:
    """A state code as a literal (built once: see ``_typed``)."""
    return _typed(code, CODE)


def _met_if(cond: pl.Expr) -> pl.Expr:
    """met where ``cond`` holds, not_met elsewhere (and where it is null)."""
    return pl.when(cond).then(_code(MET)).otherwise(_code(NOT_MET))


def _no_date() -> pl.Expr:
    return _typed(None, pl.Date)


def _days(d: pl.Expr) -> pl.Expr:
    return d.cast(pl.Int32).cast(pl.Int64)


def _first_day_after(x: pl.Expr, period: Period) -> pl.Expr:
    """The first day D with D - period >= x, as an expression (see rules.dates)."""
    if period.days:
        return x + pl.duration(days=period.days)
    # x + period, clamped to the month's end when the month is shorter: then D - period
    # falls short of x (the day of x is past that month's end) and D is the next day; a
    # date (not a datetime) is a day number
    candidate = x.dt.offset_by(f"{period.months}mo")
    clamped = candidate.dt.day() != x.dt.day()
    return (candidate.cast(pl.Int32) + clamped.cast(pl.Int32)).cast(pl.Date)


def _period_before(x: pl.Expr, period: Period) -> pl.Expr:
    if period.days:
        return x - pl.duration(days=period.days)
    return x.dt.offset_by(f"-{period.months}mo")


@cache
def _row_key(table: str) -> pl.Expr:
    return pl.lit(ROW_TABLES.index(table) << _ROW_BITS, pl.Int64) + pl.col("row_no").cast(pl.Int64)


# ---------------------------------------------------------------------------
# compiled criteria


def _built(value: Any) -> Any:
    """A recipe's frame in place of the recipe (other values as they are)."""
    return value.frame() if isinstance(value, _Recipe) else value


class _Recipe:
    """A lazy frame over data not read yet: the plan is compiled before the tables are read
    (so that they are read knowing every row the plan can look at), and the frames it
    builds from them are recorded as the calls made, replayed once the data is there."""

    def __init__(
        self, build: Callable[[], pl.LazyFrame], needs: frozenset[str] = frozenset()
    ) -> None:
        self._build = build
        self._frame: pl.LazyFrame | None = None
        self.needs = needs  # the computed frames (see _Compiler.read) it is built from

    def frame(self) -> pl.LazyFrame:
        """The frame (built once, when first asked for: after the tables are read)."""
        if self._frame is None:
            self._frame = self._build()
        return self._frame

    def _then(self, method: str, *args: Any, **kwargs: Any) -> _Recipe:
        needs = self.needs.union(
            *[v.needs for v in (*args, *kwargs.values()) if isinstance(v, _Recipe)]
        )
        return _Recipe(
            lambda: getattr(self.frame(), method)(
                *[_built(v) for v in args], **{k: _built(v) for k, v in kwargs.items()}
            ),
            needs,
        )

    def filter(self, *predicates: Any) -> _Recipe:
        return self._then("filter", *predicates)

    def select(self, *exprs: Any) -> _Recipe:
        return self._then("select", *exprs)

    def join(self, other: _Recipe, **kwargs: Any) -> _Recipe:
        return self._then("join", other, **kwargs)

    def with_columns(self, *exprs: Any) -> _Recipe:
        return self._then("with_columns", *exprs)

    def unique(self, subset: Sequence[str]) -> _Recipe:
        return self._then("unique", subset)

    def group_by(self, *by: str) -> _GroupRecipe:
        return _GroupRecipe(self, by)


@dataclass(frozen=True)
class _GroupRecipe:
    """``group_by`` of a recipe, until its ``agg``."""

    source: _Recipe
    by: tuple[str, ...]

    def agg(self, *aggs: pl.Expr) -> _Recipe:
        return _Recipe(lambda: self.source.frame().group_by(*self.by).agg(*aggs), self.source.needs)


@dataclass(eq=False)
class Leaf:
    """A source of evidence rows: a frame of (``_f``, [``_p``], ``_k``) and the conditions,
    on the person and on the family, under which its rows count for its key."""

    level: Level
    frame: _Recipe
    p_conds: list[pl.Expr] = field(default_factory=list)
    f_conds: list[pl.Expr] = field(default_factory=list)
    key: str = ""


@dataclass(frozen=True)
class Node:
    """A compiled criterion: expressions over the subject frame of its level.

    ``date`` is the earliest date of a pending state (None: never dated),
    ``flips`` the day a guard's answer changes, ``figure`` the primary figure
    compared and ``direction`` whether a higher figure favours met (+1) or not_met
    (-1); 0 when there is no figure.
    """

    level: Level
    state: pl.Expr
    date: pl.Expr | None = None
    flips: pl.Expr | None = None
    leaves: tuple[Leaf, ...] = ()
    figure: pl.Expr | None = None
    direction: int = 0


def _add_cond(leaves: Sequence[Leaf], level: Level, cond: pl.Expr | None) -> None:
    if cond is None:  # holds for everyone
        return
    for leaf in leaves:
        (leaf.p_conds if level == "P" else leaf.f_conds).append(cond)


@dataclass
class _Frame:
    """A subject frame under construction: aggregate joins, then staged columns."""

    aggs: dict[tuple[str, str], dict[str, pl.Expr]] = field(default_factory=dict)
    sums: dict[str, pl.Expr] = field(default_factory=dict)  # aggregate name -> value summed
    keyed: list[tuple[_Recipe, str]] = field(default_factory=list)
    stages: dict[int, dict[str, pl.Expr]] = field(default_factory=dict)
    stage_of: dict[str, int] = field(default_factory=dict)


class _Compiler:
    """Compiles a plan into lazy frames for one set of sources and one E."""

    _families: pl.LazyFrame  # every family, numbered (_f) in family_id order; read by subjects()
    _people: pl.LazyFrame

    def __init__(self, sources: Sources, as_of: date) -> None:
        check_sources(sources)
        self.e = as_of
        self.e_lit = pl.lit(as_of)  # E as a literal, built once (see _typed)
        self._e_minus: dict[Period, pl.Expr] = {}
        self.big = False
        self.n_families = 0
        self.loaded = frozenset(sources.tables)
        self.sources = sources
        self.n = 0
        self.frames: dict[Level, _Frame] = {"P": _Frame(), "F": _Frame()}
        # family columns aggregated from P: name -> (P column, how)
        self.p2f: dict[str, tuple[str, Literal["max", "min", "any"]]] = {}
        self.bounds: dict[str, pl.Expr] = {}
        self._row_bounds: set[str] = set()  # the bounds the tables' rows carry
        # term selections: name -> (subject, condition, last)
        self.selections: dict[str, tuple[str, pl.Expr, int | None]] = {}
        # per table, the rows any leaf can look at (None: every row)
        self.relevant: dict[str, list[pl.Expr] | None] = {}
        self.derived: dict[str, _Recipe] = {}
        self.leaves: list[Leaf] = []
        self._cache: dict[str, Any] = {}
        # per table and filter: the column of the rows and its condition
        self._wheres: dict[
            tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], tuple[str, pl.Expr]
        ] = {}
        # what is read (the subjects while the plan compiles, the tables after) or computed:
        # name -> frame
        self._data: dict[str, pl.DataFrame] = {}
        self._tables: list[str] = []  # the tables the plan reads, in the order first read
        # frames computed from what was read: name, the frames, how they make the one
        self._computing: list[tuple[str, list[_Recipe], Callable[..., pl.DataFrame]]] = []
        self._base()

    def subjects(self) -> None:
        """Read every family (numbered), the attached families and their members, without
        the A-relative dates: what :meth:`read` starts from. None of it depends on the plan,
        so it can be read while the plan compiles."""
        families = self._families
        f_base = families.filter(pl.col("A").is_not_null() & (pl.col("A") <= self.e))
        f_base = f_base.select("_f", "family_id", "A")
        p_base = (
            self._people.select(
                "person_id", "family_id", "role", "birth_date", _row_key("people").alias("_kp")
            )
            .join(f_base, on="family_id", how="inner")
            .drop("family_id")
            # people of a family together: combining them into families is then a
            # group_by over sorted runs; within a family, in id order (the lists of people
            # who identified an indicator are sorted by id: then by _p too)
            .sort("_f", "person_id")
            .with_row_index("_p")
        )
        # one query: this thread waits for the compiling one to let go of the interpreter
        # once, not once per query
        self._data["families"], self._data["f_base"], self._data["p_base"] = pl.collect_all(
            [families, f_base, p_base], engine=_ENGINE
        )

    def read(self) -> None:
        """Read every table once, knowing every row the compiled plan can look at: from the
        subjects (:meth:`subjects`), each table's rows; then compute the derived frames built
        from the tables alone (:meth:`compute` computes the rest)."""
        self.n_families = self._data["families"].height
        f_base, p_base = self._data["f_base"], self._data["p_base"]
        if self.bounds:
            # the A-relative dates, computed once per distinct A (month arithmetic costs
            # many times a join on A), for the families and for their people
            dates = f_base.lazy().select("A").unique().with_columns(_named(self.bounds))
            f_base, p_base = pl.collect_all(
                [
                    subject.lazy().join(dates, on="A", how="left", maintain_order="left")
                    for subject in (f_base, p_base)
                ],
                engine=_ENGINE,
            )
        self._data["f_base"], self._data["p_base"] = f_base, p_base
        self.big = self._data["f_base"].height >= _STREAM_FROM
        if self.big:
            # the big joins stream: the joined rows are filtered as they come, never held
            for t in self._tables:
                self._data[f"rows:{t}"] = self._rows(t).collect(engine="streaming")
        else:
            frames = pl.collect_all([self._rows(t) for t in self._tables], engine=_ENGINE)
            for t, frame in zip(self._tables, frames, strict=True):
                self._data[f"rows:{t}"] = frame
        # the frames computed from the tables alone; from a large council, all of them
        self.compute(rounds=None if self.big else 1)

    def compute(self, rounds: int | None = None) -> None:
        """Compute the frames waiting to be (all of them, or the first ``rounds`` rounds), in
        rounds: each round, every one whose frames are built only from what is there
        already, in one collect_all (for a large council, one at a time, so that they do not
        add up in memory; the list's order is a possible one)."""
        waiting = [w for w in self._computing if w[0] not in self._data]
        while waiting and (rounds is None or rounds > 0):
            ready = [w for w in waiting if self.ready(n for f in w[1] for n in f.needs)]
            assert ready, "computed frames that need each other"
            ready = ready[:1] if self.big else ready
            collected = iter(
                pl.collect_all([f.frame() for _, fs, _ in ready for f in fs], engine=_ENGINE)
            )
            for name, fs, finish in ready:
                self._data[name] = finish(*[next(collected) for _ in fs])
            waiting = [w for w in waiting if w[0] not in self._data]
            rounds = None if rounds is None else rounds - 1

    def ready(self, needs: Iterable[str]) -> bool:
        """Whether every computed frame of ``needs`` is there."""
        return all(n in self._data for n in needs)

    def data(self, name: str) -> pl.DataFrame:
        """A frame read (:meth:`subjects`, :meth:`read`) or computed (:meth:`compute`)."""
        return self._data[name]

    def _read(self, name: str, *, computed: bool = False) -> _Recipe:
        """A frame that :meth:`data` provides once it is there (one recipe per name)."""
        if name not in self._cache:
            needs = frozenset([name]) if computed else frozenset()
            # the recipe holds the frames read, not the compiler (no reference cycle: the
            # compiler and the data are freed as soon as the evaluation is done)
            data = self._data
            self._cache[name] = _Recipe(lambda: data[name].lazy(), needs)
        recipe: _Recipe = self._cache[name]
        return recipe

    # -- names and frames ---------------------------------------------------

    def name(self, prefix: str = "n") -> str:
        """A fresh column name."""
        self.n += 1
        return f"_{prefix}{self.n}"

    def _base(self) -> None:
        families = self.sources.tables.get("families")
        if families is None:
            families = pl.LazyFrame(schema=TABLES["families"].schema)
        # families numbered in family_id order: the result comes out in that order
        self._families = (
            families.select("family_id", "locality", pl.col("attached_on").alias("A"))
            .sort("family_id")
            .with_row_index("_f")
        )
        people = self.sources.tables.get("people")
        if people is None:
            people = pl.LazyFrame(schema=TABLES["people"].schema)
        self._people = people

    def bound(
        self, kind: Literal["before", "after"], period: Period, *, rows: bool = True
    ) -> pl.Expr:
        """A - period (``before``) or the first day D with D - period >= A (``after``), as a
        column computed once per family; on the tables' rows too unless ``rows`` is false
        (read by the subjects' columns alone)."""
        name = f"_A{'-' if kind == 'before' else '+'}{period.months}m{period.days}d"
        if name not in self.bounds:
            a = pl.col("A")
            self.bounds[name] = (
                _period_before(a, period) if kind == "before" else _first_day_after(a, period)
            )
        if rows:
            self._row_bounds.add(name)
        return pl.col(name)

    @property
    def f_base(self) -> _Recipe:
        """Attached families with their A-relative dates."""
        return self._read("f_base")

    @property
    def p_base(self) -> _Recipe:
        """Members of attached families (``_p`` numbers them: a family's people together, in id
        order)."""
        return self._read("p_base")

    def rows(self, table: str) -> _Recipe:
        """A table in the world as of E, each row with its family (and person) and ``_k``."""
        if table not in self._tables:
            self._tables.append(table)
        return self._read(f"rows:{table}")

    def _rows(self, name: str) -> pl.LazyFrame:
        t = TABLES[name]
        e = self.e_lit
        frame = self.sources.tables[name]
        if t.shape in ("event", "snapshot"):
            frame = frame.filter(pl.col(t.date or "") <= e)
        elif t.shape == "spell":
            end = pl.col(t.end or "")
            frame = frame.filter(pl.col(t.date or "") <= e).with_columns(
                pl.when(end.is_null() | (end > e)).then(e).otherwise(end).alias("_end")
            )
        elif t.shape == "term":
            frame = frame.filter((pl.col("term_end") <= e) & (pl.col("possible_sessions") > 0))
        frame = frame.with_columns(_row_key(name).alias("_k"))
        subjects_only = [n for n in self.bounds if n not in self._row_bounds]
        if t.key == "person_id":
            frame = frame.join(
                self.data("p_base").lazy().drop("role", "birth_date", "_kp", *subjects_only),
                on="person_id",
                how="inner",
            ).drop("person_id")
        else:
            frame = frame.join(
                self.data("f_base").lazy().drop(*subjects_only), on="family_id", how="inner"
            ).drop("family_id")
        wheres = [
            cond.alias(column) for (t, _), (column, cond) in self._wheres.items() if t == name
        ]
        if wheres:
            frame = frame.with_columns(wheres)
        relevant = self.relevant.get(name)
        if relevant is not None:
            # only the rows some leaf can look at (the windows are relative to each A)
            frame = frame.filter(pl.any_horizontal(relevant) if relevant else pl.lit(False))
        if name == "attendance" and self.selections:
            frame = self._select_terms(frame)
        return frame

    def _select_terms(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """Add a column per term selection: whether the row is a selected term of its subject.

        Most recent first: by term_end, then term_start, then row order. The rows are
        sorted once within each subject, least recent first (the order extracts usually
        come in, which the sort makes use of); a selection's rank is then a count of its
        rows from the subject's last row back (no window functions).
        """
        ranked = [subject for subject, _, last in self.selections.values() if last]
        if not ranked:
            return frame.with_columns(
                *[cond.fill_null(False).alias(n) for n, (_, cond, _) in self.selections.items()]
            ).drop("A", *self._row_bounds)
        subject = "_p" if "_p" in ranked else "_f"
        # row_no makes the order total, so a stable sort (the faster one here) changes nothing
        frame = frame.sort(
            subject,
            "term_end",
            "term_start",
            "row_no",
            descending=[False, False, False, True],
            maintain_order=True,
        ).with_columns(pl.col(subject).set_sorted())
        final = (pl.col(subject) != pl.col(subject).shift(-1)).fill_null(True)
        columns = []
        for name, (own, cond, last) in self.selections.items():
            cond = cond.fill_null(False)
            if last and own == subject:
                # the running count of selected rows at the subject's last row, less the
                # count at this row: the subject's selected rows after this one (cum_count
                # counts the values that are not null, here the selected rows)
                hits = pl.when(cond).then(True).cum_count()
                total = pl.when(final).then(hits).backward_fill()
                cond = cond & (total - hits < last)
            elif last:
                recency = (
                    (_days(pl.col("term_end")) + _BIG).cast(pl.Int128) * (1 << 64)
                    + (_days(pl.col("term_start")) + _BIG).cast(pl.Int128) * (1 << _ROW_BITS)
                    + (_ROW_MASK - pl.col("row_no")).cast(pl.Int128)
                )
                rank = pl.when(cond).then(recency).rank("ordinal", descending=True).over(own)
                cond = cond & (rank <= last)
            columns.append(cond.fill_null(False).alias(name))
        # every attendance leaf reads the selections, not A: drop A and its dates
        return frame.with_columns(columns).drop("A", *self._row_bounds)

    def touch(self, table: str, rows: pl.Expr | None) -> None:
        """Record the rows of ``table`` a leaf can look at (None: any row)."""
        if table not in self.relevant:
            self.relevant[table] = []
        known = self.relevant[table]
        if known is None:
            return
        if rows is None:
            self.relevant[table] = None
        elif str(rows) not in {str(r) for r in known}:
            known.append(rows)

    def group_key(self, level: Level, table: str) -> str:
        """The subject column a table's rows are grouped by for a level."""
        return "_p" if level == "P" and TABLES[table].key == "person_id" else "_f"

    # -- registering columns ------------------------------------------------

    def agg(self, level: Level, source: str, group: str, expr: pl.Expr) -> pl.Expr:
        """An aggregate of a source's rows per ``group``, as a column of the level's frame."""
        aggs = self.frames[level].aggs.setdefault((source, group), {})
        text = str(expr)
        for name, known in aggs.items():
            if str(known) == text:
                return pl.col(name)
        name = self.name("a")
        aggs[name] = expr
        self.frames[level].stage_of[name] = 0
        return pl.col(name)

    def table_agg(self, level: Level, table: str, expr: pl.Expr) -> pl.Expr:
        """An aggregate of a table's rows for each subject of the level."""
        return self.agg(level, f"rows:{table}", self.group_key(level, table), expr)

    def table_sum(self, level: Level, table: str, value: pl.Expr) -> pl.Expr:
        """The sum of ``value`` over a table's rows for each subject of the level (an
        aggregate that :func:`_aggregated` may take as a difference of running totals)."""
        column = self.table_agg(level, table, value.sum())
        self.frames[level].sums[column.meta.output_name()] = value
        return column

    def keyed(self, level: Level, frame: _Recipe, key: str, columns: Sequence[str]) -> None:
        """Join a frame with one row per ``key`` and ``columns`` (uniquely named)."""
        self.frames[level].keyed.append((frame.select(key, *columns), key))
        for column in columns:
            self.frames[level].stage_of[column] = 0

    def define(self, level: Level, expr: pl.Expr) -> pl.Expr:
        """A column of the level's frame, computed after the columns it reads."""
        frame = self.frames[level]
        roots = expr.meta.root_names()
        stage = 1 + max((frame.stage_of.get(r, 0) for r in roots), default=0)
        name = self.name()
        frame.stages.setdefault(stage, {})[name] = expr
        frame.stage_of[name] = stage
        return pl.col(name)

    def to_family(self, expr: pl.Expr, how: Literal["max", "min", "any"]) -> pl.Expr:
        """An aggregate (``how``) of a per-person expression over each family's people, as a
        column of ``F``. The expression becomes a column of ``P`` first, so that the
        family ``group_by`` only aggregates columns."""
        column = self.define("P", expr)
        name = self.name("g")
        self.p2f[name] = (column.meta.output_name(), how)
        self.frames["F"].stage_of[name] = 0
        return pl.col(name)

    def node(
        self,
        level: Level,
        state: pl.Expr,
        date_: pl.Expr | None = None,
        *,
        flips: pl.Expr | None = None,
        leaves: Sequence[Leaf] = (),
        figure: pl.Expr | None = None,
        direction: int = 0,
    ) -> Node:
        """A node whose state (and date, figure) are columns of the level's frame."""
        return Node(
            level,
            self.define(level, state.cast(CODE)),
            None if date_ is None else self.define(level, date_),
            flips,
            tuple(leaves),
            None if figure is None else self.define(level, figure),
            direction if figure is not None else 0,
        )

    def leaf(self, level: Level, frame: _Recipe, table: str) -> Leaf:
        """Register the evidence rows of a leaf (rows of ``table``, when family-keyed, count
        for every member of the family)."""
        if level == "P" and TABLES[table].key == "family_id":
            frame = frame.join(self.p_base.select("_f", "_p"), on="_f", how="inner")
        columns = ["_f", "_p", "_k"] if level == "P" else ["_f", "_k"]
        leaf = Leaf(level, frame.select(columns))
        self.leaves.append(leaf)
        return leaf

    def const(self, level: Level, code: int) -> Node:
        """Every subject in one state, with no evidence."""
        return Node(level, _code(code))

    def _computed(
        self, frames: list[_Recipe], finish: Callable[..., pl.DataFrame] = lambda x: x
    ) -> _Recipe:
        """A frame computed once the tables are read: ``finish`` of the collected ``frames``."""
        name = self.name("kept")
        self._computing.append((name, frames, finish))
        return self._read(name, computed=True)

    def keep(self, frame: _Recipe) -> _Recipe:
        """A derived frame read by several parts of the query, computed once."""
        return self._computed([frame])

    def best_windows(self, span: _Recipe, work: _Recipe, claims: _Recipe) -> _Recipe:
        """:func:`_best_windows` of the frames (computed once)."""
        people = span.select("_p")
        frames = [span, *[f.join(people, on="_p", how="semi") for f in (work, claims)]]
        return self._computed(frames, _best_windows)

    def where(self, table: str, where: dict[str, list[str]] | None) -> pl.Expr:
        """A filter of ``table``'s rows: each column's value among its codes. A boolean column
        of the rows, computed once as they are read (leaves and their evidence test the same
        few filters many times)."""
        key = tuple((column, tuple(codes)) for column, codes in (where or {}).items())
        if not key:
            return pl.lit(True)
        if (table, key) not in self._wheres:
            cond = pl.lit(True)
            for column, codes in key:
                cond = cond & pl.col(column).is_in(list(codes))
            self._wheres[table, key] = (self.name("w"), cond)
        return pl.col(self._wheres[table, key][0])

    def derive(self, frame: _Recipe, *, keep: bool = True) -> tuple[str, _Recipe]:
        """Register a derived frame (kept: computed once) as a source of aggregates; its name
        and the frame."""
        source = self.name("d")
        if keep:
            frame = self.keep(frame)
        self.derived[source] = frame
        return source, frame

    def e_minus(self, period: Period) -> pl.Expr:
        """E - period, as a literal (built once per period)."""
        if period not in self._e_minus:
            self._e_minus[period] = pl.lit(period_before(self.e, period))
        return self._e_minus[period]

    def missing(self, *tables: str) -> bool:
        """Whether any of the tables was never loaded."""
        return any(t not in self.loaded for t in tables)

    # -- windows ----------------------------------------------------------------

    def anchor(self, name: str) -> pl.Expr:
        """A or E as an expression."""
        return pl.col("A") if name == "A" else self.e_lit

    def window(self, window: Window) -> tuple[pl.Expr, pl.Expr]:
        """(start, end] of a window, as expressions over a row's A."""
        if window.anchor == "E":
            return self.e_minus(window.period), self.e_lit
        return self.bound("before", window.period), pl.col("A")

    # -- combinators ------------------------------------------------------------

    def combine(self, how: Literal["all", "any"], parts: Sequence[Node], level: Level) -> Node:
        """Combine nodes of the same level with all or any."""
        leaves = [leaf for p in parts for leaf in p.leaves]
        figure, direction = next(((p.figure, p.direction) for p in parts if p.direction), (None, 0))
        if how == "all":
            state = self.define(level, pl.max_horizontal([p.state for p in parts]))
        else:
            worst = self.define(level, pl.max_horizontal([_swap(p.state) for p in parts]))
            state = self.define(level, _swap(worst))
        dated = [p for p in parts if p.date is not None]
        date_: pl.Expr | None = None
        if dated:
            pending = [(p.state == _code(PENDING)) for p in parts]
            candidates = [pl.when(p.state == _code(PENDING)).then(p.date) for p in dated]
            best = pl.max_horizontal(candidates) if how == "all" else pl.min_horizontal(candidates)
            undated = pl.any_horizontal(
                [
                    pend & (p.date.is_null() if p.date is not None else pl.lit(True))
                    for pend, p in zip(pending, parts, strict=True)
                ]
            )
            date_ = self.define(level, pl.when((state == _code(PENDING)) & ~undated).then(best))
        return Node(level, state, date_, None, tuple(leaves), figure, direction)

    def negate(self, inner: Node) -> Node:
        """``not``: met and not_met swap; the date stays."""
        state = self.define(inner.level, _swap(inner.state))
        return Node(
            inner.level, state, inner.date, None, inner.leaves, inner.figure, -inner.direction
        )

    def people_of(self, role: str) -> pl.Expr | None:
        """Whether a row of ``P`` has the role (``member``: everyone, None)."""
        return None if role == "member" else pl.col("role") == role

    def group(self, how: Literal["all", "any"], per: Node, in_scope: pl.Expr | None) -> Node:
        """Combine per-person results into one result per family (the people ``in_scope``;
        None: everyone)."""
        s = per.state
        if how == "all":
            state = self.to_family(_within(in_scope, s), "max")
            empty = MET
        else:
            best_swapped = self.to_family(_within(in_scope, _swap(s)), "max")
            state = _swap(best_swapped.fill_null(_code(MET)))
            empty = NOT_MET
        state = state.fill_null(_code(empty))
        date_: pl.Expr | None = None
        if per.date is not None:
            pending = s == _code(PENDING) if in_scope is None else in_scope & (s == _code(PENDING))
            best = self.to_family(pl.when(pending).then(per.date), "max" if how == "all" else "min")
            undated = self.to_family(pending & per.date.is_null(), "any")
            date_ = pl.when((state == _code(PENDING)) & ~undated.fill_null(False)).then(best)
        figure: pl.Expr | None = None
        if per.figure is not None:
            # any: the person nearest to met decides; all: the person nearest to not_met
            highest = (how == "any") == (per.direction > 0)
            figure = self.to_family(_within(in_scope, per.figure), "max" if highest else "min")
        return self.node(
            "F", state, date_, leaves=per.leaves, figure=figure, direction=per.direction
        )

    # -- criteria -------------------------------------------------------------

    def criterion(self, node: BaseModel, level: Level) -> Node:
        """Compile one criterion node for the subjects of a level."""
        spec = node_spec(node)
        if isinstance(node, AllNode):
            return self.combine("all", [self.criterion(n, level) for n in spec], level)
        if isinstance(node, AnyNode):
            return self.combine("any", [self.criterion(n, level) for n in spec], level)
        if isinstance(node, NotNode):
            return self.negate(self.criterion(spec, level))
        if isinstance(node, EachPersonNode):
            in_scope = self.people_of(spec.role)
            inner = self.criterion(spec.test, "P")
            _add_cond(inner.leaves, "P", in_scope)
            return self.group(spec.combine, inner, in_scope)
        result: Node = _LEAVES[type(spec)](self, spec, level)
        return result

    def count(self, spec: Count, level: Level) -> Node:
        """``count`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        dated = pl.col(TABLES[spec.table].date or "")
        where = self.where(spec.table, spec.where)
        extra: list[Leaf] = []
        if isinstance(spec.window, InTerms):
            if self.missing("attendance"):
                return self.const(level, UNKNOWN)
            subject = self.group_key(level, spec.table)
            flag = self.selection(spec.window.in_terms, level)
            self.touch(spec.table, where)
            terms = self.rows("attendance").filter(pl.col(flag))
            inside = (
                self.rows(spec.table)
                .filter(where)
                .join(terms.select(subject, "term_start", "term_end"), on=subject, how="inner")
                .filter((pl.col("term_start") <= dated) & (dated <= pl.col("term_end")))
                .unique([subject, "_k"])
            )
            source, inside = self.derive(inside)
            n = self.agg(level, source, subject, pl.len()).fill_null(0)
            extra.append(self.leaf(level, terms, "attendance"))
            rows = inside
        else:
            if isinstance(spec.window, SinceAttachment):
                lo, hi = pl.col("A"), self.e_lit
            else:
                lo, hi = self.window(spec.window)
            cond = where & (dated > lo) & (dated <= hi)
            self.touch(spec.table, cond)
            n = self.table_sum(level, spec.table, cond).fill_null(0)
            rows = self.rows(spec.table).filter(cond)
        # counts are whole numbers: compare with the threshold rounded the safe way
        if spec.at_least is not None:
            ok, direction = n >= math.ceil(spec.at_least), 1
        elif spec.at_most is not None:
            ok, direction = n <= math.floor(spec.at_most), -1
        else:
            assert spec.fewer_than is not None
            ok, direction = n < math.ceil(spec.fewer_than), -1
        return self.node(
            level,
            _met_if(ok),
            leaves=[self.leaf(level, rows, spec.table), *extra],
            figure=n,
            direction=direction,
        )

    def reduction(self, spec: Reduction, level: Level) -> Node:
        """``reduction`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        dated = pl.col(TABLES[spec.table].date or "")
        where = self.where(spec.table, spec.where)
        (blo, bhi), (llo, lhi) = self.window(spec.baseline), self.window(spec.later)
        in_b = where & (dated > blo) & (dated <= bhi)
        in_l = where & (dated > llo) & (dated <= lhi)
        self.touch(spec.table, in_b | in_l)
        b = self.table_sum(level, spec.table, in_b).fill_null(0).cast(pl.Int64)
        later = self.table_sum(level, spec.table, in_l).fill_null(0).cast(pl.Int64)
        num, den = spec.at_least_percent.as_integer_ratio()
        # 100 * later <= (100 - p) * baseline, in integers
        ok = later * (100 * den) <= b * (100 * den - num)
        percent = pl.when(b > 0).then(((b - later) * 100 / b).round(2))
        return self.node(
            level,
            _met_if(ok),
            leaves=[self.leaf(level, self.rows(spec.table).filter(in_b | in_l), spec.table)],
            figure=percent,
            direction=1,
        )

    def spell(self, spec: Spell, level: Level) -> Node:
        """``spell`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        start, end = pl.col(TABLES[spec.table].date or ""), pl.col("_end")
        if spec.covers is not None:
            x = self.anchor(spec.covers)
            hit = (start <= x) & (x <= end)
        else:
            assert spec.overlaps is not None
            lo, hi = self.window(spec.overlaps)
            hit = (start <= hi) & (end > lo) & (start <= end)
        hit = self.where(spec.table, spec.where) & hit
        self.touch(spec.table, hit)
        n = self.table_sum(level, spec.table, hit).fill_null(0)
        return self.node(
            level,
            _met_if(n > 0),
            leaves=[self.leaf(level, self.rows(spec.table).filter(hit), spec.table)],
            figure=n,
            direction=1,
        )

    def spell_open(self, spec: SpellOpen, level: Level) -> Node:
        """``spell_open`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        t = TABLES[spec.table]
        start, raw_end = pl.col(t.date or ""), pl.col(t.end or "")
        since = spec.since.period
        cutoff = self.e_minus(since)
        is_open = self.where(spec.table, spec.where) & (raw_end.is_null() | (raw_end >= self.e_lit))
        long_ = is_open & (start <= cutoff)
        self.touch(spec.table, is_open)
        has_long = self.table_agg(level, spec.table, long_.any()).fill_null(False)
        # first_day_after is non-decreasing: the earliest date comes from the earliest start
        first = pl.when(is_open).then(start).min()
        ripe = self.table_agg(level, spec.table, _first_day_after(first, since))
        rows = self.rows(spec.table).filter(is_open)
        return self.long_enough(level, spec.table, has_long, ripe, since, rows, start)

    def spell_completed(self, spec: SpellCompleted, level: Level) -> Node:
        """``spell_completed`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        t = TABLES[spec.table]
        start, end = pl.col(t.date or ""), pl.col(t.end or "")
        since = spec.since.period
        subject = self.group_key(level, spec.table)
        cutoff = self.e_minus(since)
        # another spell started on or after this one's end: the latest start among the
        # subject's other spells (the latest, or the runner-up when this one is the only latest)
        top, n_top, runner_up = pl.col("_top"), pl.col("_ntop"), pl.col("_runner")
        other_latest = pl.when((start == top) & (n_top == 1)).then(runner_up).otherwise(top)
        spells = self.rows(spec.table).filter(self.where(spec.table, spec.where))
        # the subject's latest start is put on every row first: an aggregate over an
        # expression holding another aggregate (start == start.max()) is evaluated group
        # by group, several times slower
        latest_starts = (
            spells.select(subject, start, start.max().over(subject).alias("_top"))
            .group_by(subject)
            .agg(
                top.first(),
                (start == top).sum().alias("_ntop"),
                pl.when(start < top).then(start).max().alias("_runner"),
            )
        )
        # a spell can matter only if it ended after A, or started after A (a later spell)
        self.touch(
            spec.table,
            self.where(spec.table, spec.where)
            & ((end.is_not_null() & (end > pl.col("A"))) | (start > pl.col("A"))),
        )
        ended = (
            end.is_not_null()
            & (end > pl.col("A"))
            & (end <= self.e_lit)
            & self.where(spec.table, spec.ended_with)
        )
        candidates = (
            spells.filter(ended)
            .join(latest_starts, on=subject, how="left")
            .filter(~(other_latest >= end).fill_null(False))
        )
        source, candidates = self.derive(candidates)
        done = self.agg(level, source, subject, (end <= cutoff).any()).fill_null(False)
        ripe = self.agg(level, source, subject, _first_day_after(end.min(), since))
        return self.long_enough(level, spec.table, done, ripe, since, candidates, end)

    def long_enough(
        self,
        level: Level,
        table: str,
        done: pl.Expr,
        ripe: pl.Expr,
        since: Period,
        rows: _Recipe,
        x: pl.Expr,
    ) -> Node:
        """The end of ``spell_open`` and ``spell_completed``: met when some row's date ``x`` is
        at least ``since`` before E (``done``), pending from ``ripe`` (the first day the
        earliest date is ``since`` old, an aggregate: computed once per subject with rows,
        not for every subject) when a row has a date, not_met otherwise. The evidence: the
        rows old enough, or else them all."""
        state = (
            pl.when(done)
            .then(_code(MET))
            .when(ripe.is_not_null())
            .then(_code(PENDING))
            .otherwise(_code(NOT_MET))
        )
        date_ = pl.when(~done).then(ripe)
        cutoff, subject = self.e_minus(since), self.group_key(level, table)
        rows = rows.filter((x <= cutoff) | ~(x <= cutoff).any().over(subject))
        return self.node(level, state, date_, leaves=[self.leaf(level, rows, table)])

    def selection(self, sel: TermSelection, level: Level) -> str:
        """A column of the attendance rows: whether the row is a selected term of its subject."""
        subject = self.group_key(level, "attendance")
        key = f"sel:{subject}:{sel.model_dump_json()}"
        if key in self._cache:
            name: str = self._cache[key]
            return name
        cond = pl.lit(True)
        if sel.window is not None:
            lo, hi = self.window(sel.window)
            cond = cond & (pl.col("term_end") > lo) & (pl.col("term_end") <= hi)
        if sel.start_on_or_after is not None:
            cond = cond & (pl.col("term_start") >= pl.col("A"))
        self.touch("attendance", cond)
        name = f"_sel{len(self.selections)}"
        self.selections[name] = (subject, cond, sel.last)
        self._cache[key] = name
        return name

    def term_rate(self, spec: TermRate, level: Level) -> Node:
        """``term_rate`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        selected = pl.col(self.selection(spec.terms, level))
        u = self.table_sum(
            level, "attendance", pl.when(selected).then(pl.col("unauthorised_sessions"))
        ).cast(pl.Int64)
        p = self.table_sum(
            level, "attendance", pl.when(selected).then(pl.col("possible_sessions"))
        ).cast(pl.Int64)
        n = self.table_sum(level, "attendance", selected).fill_null(0)
        if spec.at_least_percent is not None:
            pct, cmp, direction = spec.at_least_percent, "ge", 1
        else:
            assert spec.below_percent is not None
            pct, cmp, direction = spec.below_percent, "lt", -1
        num, den = pct.as_integer_ratio()
        left, right = u * (100 * den), p * num
        ok = left >= right if cmp == "ge" else left < right
        state = pl.when(n == 0).then(_code(UNKNOWN)).otherwise(_met_if(ok))
        rate = pl.when(n > 0).then((u * 100 / p).round(2))
        return self.node(
            level,
            state,
            leaves=[self.leaf(level, self.rows("attendance").filter(selected), "attendance")],
            figure=rate,
            direction=direction,
        )

    def terms_recorded(self, spec: TermsRecorded, level: Level) -> Node:
        """``terms_recorded`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        selected = pl.col(self.selection(spec.terms, level))
        n = self.table_sum(level, "attendance", selected).fill_null(0)
        return self.node(
            level,
            _met_if(n >= spec.at_least),
            leaves=[self.leaf(level, self.rows("attendance").filter(selected), "attendance")],
            figure=n,
            direction=1,
        )

    def age(self, spec: Age, level: Level) -> Node:
        """``age`` for every person."""
        assert level == "P", "age needs a person"
        birth = pl.col("birth_date")

        def born_by(years: int) -> pl.Expr:
            # aged at least ``years`` on D exactly when born on or before D - ``years`` years:
            # (month, day) pairs compare as dates do, and a 29 February D gives 28 February
            # (so a 29 February birthday is reached on 1 March in common years, as age_on)
            if not years:
                return self.anchor(spec.at)
            period = Period(months=12 * years)
            return (
                self.e_minus(period) if spec.at == "E" else self.bound("before", period, rows=False)
            )

        ok = pl.lit(True)
        if spec.at_least is not None:
            ok = ok & (birth <= born_by(spec.at_least))
        if spec.at_most is not None:
            ok = ok & (birth > born_by(spec.at_most + 1))
        rows = self.p_base.select("_f", "_p", pl.col("_kp").alias("_k"))
        return self.node(
            level,
            pl.when(birth.is_null()).then(_code(UNKNOWN)).otherwise(_met_if(ok)),
            leaves=[self.leaf(level, rows, "people")],
        )

    def latest(self, level: Level, table: str, window: Window) -> tuple[str, _Recipe]:
        """The latest snapshot of each kind in the window, per subject (earliest row on ties)."""
        subject = self.group_key(level, table)
        key = f"latest:{subject}:{table}:{window.model_dump_json()}"
        if key not in self._cache:
            dated = pl.col(TABLES[table].date or "")
            lo, hi = self.window(window)
            self.touch(table, (dated > lo) & (dated <= hi))
            rank = _days(dated) * (1 << _ROW_BITS) + (_ROW_MASK - pl.col("row_no"))
            best = rank.arg_max()
            frame = (
                self.rows(table)
                .filter((dated > lo) & (dated <= hi))
                .group_by(subject, "kind")
                .agg(
                    pl.col("amount").get(best),
                    pl.col("_k").get(best),
                    dated.get(best),
                    *([pl.col("_f").first()] if subject == "_p" else []),
                )
            )
            self._cache[key] = self.keep(frame)
        found: _Recipe = self._cache[key]
        return subject, found

    def total(self, level: Level, table: str, window: Window) -> pl.Expr:
        """The sum over kinds of the latest snapshots, per subject (null when none)."""
        subject, latest = self.latest(level, table, window)
        key = f"total:{subject}:{table}:{window.model_dump_json()}"
        if key not in self._cache:
            self._cache[key] = self.derive(latest, keep=False)[0]  # latest is kept already
        return self.agg(level, self._cache[key], subject, pl.col("amount").sum())

    def snapshot_total(self, spec: SnapshotTotal, level: Level) -> Node:
        """``snapshot_total`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        total = self.total(level, spec.table, spec.window).fill_null(_typed(0, MONEY))
        ok = total >= _typed(spec.at_least, MONEY)
        _, latest = self.latest(level, spec.table, spec.window)
        return self.node(
            level,
            _met_if(ok),
            leaves=[self.leaf(level, latest, spec.table)],
            figure=total,
            direction=1,
        )

    def snapshot_vs_baseline(self, spec: SnapshotVsBaseline, level: Level) -> Node:
        """``snapshot_vs_baseline`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        zero = _typed(0, MONEY)
        b = self.total(level, spec.table, spec.baseline).fill_null(zero)
        c = self.total(level, spec.table, spec.current).fill_null(zero)
        num, den = spec.at_most_percent.as_integer_ratio()
        ok = c * (100 * den) <= b * num
        leaves = [
            self.leaf(level, self.latest(level, spec.table, w)[1], spec.table)
            for w in (spec.baseline, spec.current)
        ]
        return self.node(
            level,
            _met_if(ok),
            leaves=leaves,
            figure=c,
            direction=-1,
        )

    def snapshot_kinds_missing(self, spec: SnapshotKindsMissing, level: Level) -> Node:
        """``snapshot_kinds_missing`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        subject = self.group_key(level, spec.table)
        dated = pl.col(TABLES[spec.table].date or "")
        (blo, bhi), (clo, chi) = self.window(spec.baseline), self.window(spec.current)
        in_base = (dated > blo) & (dated <= bhi) & (pl.col("amount") > 0)
        self.touch(spec.table, ((dated > blo) & (dated <= bhi)) | ((dated > clo) & (dated <= chi)))
        kinds = (
            self.rows(spec.table)
            .group_by(subject, "kind")
            .agg(in_base.any().alias("_b"), ((dated > clo) & (dated <= chi)).any().alias("_c"))
            .filter(pl.col("_b") & ~pl.col("_c"))
            .select(subject, "kind")
        )
        source, kinds = self.derive(kinds)
        n = self.agg(level, source, subject, pl.len()).fill_null(0)
        rows = self.rows(spec.table).filter(in_base).join(kinds, on=[subject, "kind"], how="semi")
        return self.node(
            level,
            _met_if(n > 0),
            leaves=[self.leaf(level, rows, spec.table)],
        )

    def snapshot_dated_before(self, spec: SnapshotDatedBefore, level: Level) -> Node:
        """``snapshot_dated_before`` for every subject."""
        if self.missing(spec.table):
            return self.const(level, UNKNOWN)
        sustained = self.bound("after", spec.sustain.period, rows=False)
        subject, latest = self.latest(level, spec.table, spec.window)
        dated = pl.col(TABLES[spec.table].date or "")
        early = latest.join(self.f_base.select("_f", sustained), on="_f", how="inner").filter(
            dated < sustained
        )
        source, early = self.derive(early)
        n = self.agg(level, source, subject, pl.len()).fill_null(0)
        return self.node(
            level,
            _met_if(n > 0),
            flips=sustained,
            leaves=[self.leaf(level, early, spec.table)],
        )

    def weeks_in_work(self, spec: WeeksInWork, level: Level) -> Node:
        """``weeks_in_work`` for every person."""
        assert level == "P", "weeks_in_work needs a person"
        oow, emp = spec.out_of_work, spec.employment
        if self.missing(oow.table, emp.table):
            return self.const(level, UNKNOWN)
        tb, te = TABLES[oow.table], TABLES[emp.table]
        benefits = self.rows(oow.table).filter(self.where(oow.table, oow.where))
        employment = self.rows(emp.table).filter(self.where(emp.table, emp.where))
        start = pl.col(tb.date or "")
        covers_a = (start <= pl.col("A")) & (pl.col("A") <= pl.col("_end"))
        # weeks in work are after A: only spells reaching A matter
        self.touch(oow.table, self.where(oow.table, oow.where) & (pl.col("_end") >= pl.col("A")))
        self.touch(emp.table, self.where(emp.table, emp.where) & (pl.col("_end") > pl.col("A")))
        key = _typed(None, pl.Int64)
        for requirement in sorted(spec.requirements, key=lambda r: (r.weeks, r.out_of)):
            code = requirement.weeks * 100_000 + requirement.out_of
            key = pl.when(self.where(oow.table, requirement.when)).then(pl.lit(code)).otherwise(key)
        base = (
            benefits.filter(covers_a)
            .group_by("_p")
            .agg(key.max().alias("_req"), pl.col("A").first())
            .with_columns(
                (pl.col("_req") // 100_000).alias("_wk"),
                (pl.col("_req") % 100_000).alias("_wm"),
                (_week(pl.col("A")) + 1).alias("_first"),
                pl.lit(_last_week_to_day((self.e - date(1970, 1, 1)).days), pl.Int64).alias(
                    "_last"
                ),
            )
            .with_columns((pl.col("_first") + pl.col("_wm") - 1 <= pl.col("_last")).alias("_fits"))
        )
        base = self.keep(base)
        span = base.filter(pl.col("_req").is_not_null() & pl.col("_fits")).select(
            "_p", "_first", "_last", "_wk", "_wm"
        )
        best = self.best_windows(
            span,
            employment.select(
                "_p", _days(pl.col(te.date or "")).alias("_s"), _days(pl.col("_end")).alias("_e")
            ),
            benefits.select("_p", _days(start).alias("_s"), _days(pl.col("_end")).alias("_e")),
        )
        values = [
            pl.col("_req"),
            pl.col("_fits"),
            pl.col("_first") + pl.col("_wm") - 1,
            pl.col("_wk"),
            pl.col("_best"),
            pl.col("_shown"),
            pl.col("_start"),
            pl.col("_wm"),
        ]
        names = [self.name("w") for _ in values]
        result = self.keep(
            base.join(best, on="_p", how="left").select(
                "_p", *[v.alias(n) for v, n in zip(values, names, strict=True)]
            )
        )
        req, fits, first_end, k, best_n, shown, wstart, m = (pl.col(n) for n in names)
        self.keyed("P", result, "_p", names)
        n = best_n.fill_null(0)
        state = (
            pl.when(req.is_null())
            .then(_code(NOT_MET))
            .when(~fits)
            .then(_code(PENDING))
            .when(n >= k)
            .then(_code(MET))
            .otherwise(_code(NOT_MET))
        )
        date_ = pl.when(req.is_not_null() & ~fits).then(_sunday(first_end))
        # evidence: the spells covering A while no window can be judged, otherwise the
        # employment and out-of-work spells touching the window judged
        ws = _monday(pl.col("_ws"))
        we = _sunday(pl.col("_ws") + pl.col("_wm") - 1)
        window = result.filter(req.is_not_null() & fits).select(
            "_p", wstart.alias("_ws"), m.alias("_wm")
        )

        def touching(frame: _Recipe, start_col: str) -> _Recipe:
            s = pl.col(start_col)
            return frame.join(window, on="_p", how="inner").filter(
                (s <= we) & (pl.col("_end") >= ws) & (s <= pl.col("_end"))
            )

        waiting = result.filter(req.is_null() | ~fits).select("_p")
        at_a = benefits.filter(covers_a).join(waiting, on="_p", how="semi")
        leaves = [
            self.leaf(level, at_a, oow.table),
            self.leaf(level, touching(employment, te.date or ""), emp.table),
            self.leaf(level, touching(benefits, tb.date or ""), oow.table),
        ]
        return self.node(
            level,
            state,
            date_,
            leaves=leaves,
            figure=pl.when(req.is_not_null() & fits).then(shown.fill_null(0)),
            direction=1,
        )

    # -- rules ------------------------------------------------------------------

    def rule(self, rule: Rule, level: Level) -> Node:
        """Steps in order (leading waits, evidence test, the rest), then the test."""
        layers: list[tuple[pl.Expr, pl.Expr | None, tuple[Leaf, ...]]] = []
        steps = list(rule.steps)
        i = 0
        while i < len(steps) and isinstance(steps[i], WaitStep):
            layers.append(self.wait(steps[i]))  # type: ignore[arg-type]
            i += 1
        explicit = {t for s in steps if isinstance(s, NeedsStep) for t in s.needs}
        final: Node | None = None
        if self.missing(*(tables_read(rule) - explicit)):
            final = self.const(level, UNKNOWN)
        else:
            for step in steps[i:]:
                if isinstance(step, WaitStep):
                    layers.append(self.wait(step))
                elif isinstance(step, NeedsStep):
                    if self.missing(*step.needs):
                        final = self.const(level, UNKNOWN)
                        break
                else:
                    node = step.if_ if step.if_ is not None else step.unless
                    assert node is not None
                    c = self.criterion(node, level)
                    s = c.state
                    undecided = (s == _code(PENDING)) | (s == _code(UNKNOWN))
                    fires = (s == _code(MET)) if step.if_ is not None else (s == _code(NOT_MET))
                    then = CODES[step.then]
                    when_fires = c.flips if step.then == "pending" and c.flips is not None else None
                    guard_date: pl.Expr | None = None
                    if c.date is not None or when_fires is not None:
                        guard_date = (
                            pl.when(undecided)
                            .then(c.date if c.date is not None else _no_date())
                            .when(fires)
                            .then(when_fires if when_fires is not None else _no_date())
                        )
                    layers.append(
                        (pl.when(undecided).then(s).when(fires).then(then), guard_date, c.leaves)
                    )
            if final is None:
                final = self.criterion(rule.test, level)
        if not layers:
            return final
        state_parts = [self.define(level, s.cast(CODE)) for s, _, _ in layers]
        state = pl.coalesce([*state_parts, final.state])
        date_: pl.Expr | None = final.date
        if any(d is not None for _, d, _ in layers) or final.date is not None:
            date_ = final.date if final.date is not None else _no_date()
            for s_n, (_, d_n, _) in reversed(list(zip(state_parts, layers, strict=True))):
                date_ = (
                    pl.when(s_n.is_not_null())
                    .then(d_n if d_n is not None else _no_date())
                    .otherwise(date_)
                )
        decided = pl.coalesce(
            [pl.when(s.is_not_null()).then(_typed(n, pl.Int8)) for n, s in enumerate(state_parts)]
            + [_typed(len(layers), pl.Int8)]
        )
        leaves: list[Leaf] = []
        if final.leaves or any(ls for _, _, ls in layers):
            decided_by = self.define(level, decided)
            for n, (_, _, layer_leaves) in enumerate(layers):
                _add_cond(layer_leaves, level, decided_by == n)
                leaves += layer_leaves
            _add_cond(final.leaves, level, decided_by == len(layers))
            leaves += final.leaves
        figure = None
        if final.figure is not None:
            figure = pl.when(pl.coalesce(state_parts).is_null()).then(final.figure)
        return self.node(
            level, state, date_, leaves=leaves, figure=figure, direction=final.direction
        )

    def wait(self, step: WaitStep) -> tuple[pl.Expr, pl.Expr, tuple[Leaf, ...]]:
        """``wait``: pending while E - period < A, earliest the first D with D - period >= A."""
        period = step.wait.period
        waiting = self.e_minus(period) < pl.col("A")
        return (
            pl.when(waiting).then(_code(PENDING)),
            pl.when(waiting).then(self.bound("after", period, rows=False)),
            (),
        )

    def scoped(self, rule: Rule, identified: pl.Expr | None = None) -> tuple[Node, Node | None]:
        """A rule for its scope, as one result per family (and per person, when for people)."""
        scope = rule.for_
        if scope == "family":
            return self.rule(rule, "F"), None
        if "people" not in self.loaded:
            return self.const("F", UNKNOWN), None
        in_scope: pl.Expr | None
        if scope == "identified_people":
            assert identified is not None
            in_scope = identified
            how: Literal["all", "any"] = "all"
        else:
            assert isinstance(scope, PeopleScope)
            in_scope = self.people_of(scope.people)
            how = scope.combine
        per_person = self.rule(rule, "P")
        _add_cond(per_person.leaves, "P", in_scope)
        scoped = Node(
            "P",
            per_person.state
            if in_scope is None
            else self.define("P", _within(in_scope, per_person.state)),
            per_person.date,
            per_person.flips,
            per_person.leaves,
            per_person.figure,
            per_person.direction,
        )
        return self.group(how, per_person, in_scope), scoped


def _within(in_scope: pl.Expr | None, e: pl.Expr) -> pl.Expr:
    """``e`` for the people in scope, null for the others (None: everyone is)."""
    return e if in_scope is None else pl.when(in_scope).then(e)


def _week(d: pl.Expr) -> pl.Expr:
    """ISO week number counted from the week of 1970-01-01 (weeks start on Monday)."""
    return _week_of_day(_days(d))


# Weeks of day numbers (days since 1970-01-01, a Thursday), as numbers, arrays or expressions.
_Days = TypeVar("_Days", int, NDArray[np.int64], pl.Expr)


def _week_of_day(n: _Days) -> _Days:
    """The week holding day ``n``."""
    return (n + 3) // 7


def _first_week_from_day(n: _Days) -> _Days:
    """The first week whose Monday is on or after day ``n``."""
    return (n + 9) // 7


def _last_week_to_day(n: _Days) -> _Days:
    """The last week whose Sunday is on or before day ``n``."""
    return (n - 3) // 7


def _monday(w: pl.Expr) -> pl.Expr:
    return (w * 7 - 3).cast(pl.Int32).cast(pl.Date)


def _sunday(w: pl.Expr) -> pl.Expr:
    return (w * 7 + 3).cast(pl.Int32).cast(pl.Date)


_BEST_SCHEMA = {
    "_p": pl.get_index_type(),  # as P numbers people
    "_best": pl.Int64,
    "_start": pl.Int64,
    "_shown": pl.Int64,
}
_LOW = (1 << 32) - 1


def _at(i: NDArray[np.int64], x: NDArray[np.int64]) -> NDArray[np.int64]:
    """Person ``i``'s day or week ``x`` as one sortable number (people in order, then x)."""
    at: NDArray[np.int64] = i * (1 << 32) + (x + _BIG)
    return at


def _best_windows(span: pl.DataFrame, work: pl.DataFrame, claims: pl.DataFrame) -> pl.DataFrame:
    """Weeks in work, per person of ``span`` (``_p``; weeks ``_first``..``_last``; ``_wk``
    weeks needed out of ``_wm``): the most weeks in work in any window of ``_wm`` weeks inside
    the span (``_best``), and the window the reference evaluator reports (``_start``, with
    ``_shown`` weeks in work in it): the first with ``_wk`` weeks, else the first with the most.

    ``work`` and ``claims`` are employment and out-of-work spells (``_p``, day numbers ``_s``
    and ``_e``). A week is in work when merged employment covers its seven days and no
    out-of-work spell touches any of them. The weeks in work come in runs, and the work
    follows the number of spells, not of weeks:

    * the runs: the employment spells are merged, and each person's full weeks of
      employment and weeks touched by a claim are swept in one sorted pass of their starts
      and ends, counting how many of each are open;
    * the count f(c) of weeks in work in the window starting at week c changes by at most
      one from one c to the next, and its slope changes only where c or c + m meets a run's
      start or end: at rs - m, rs, re - m + 1 and re + 1. Evaluated at those points
      (clamped to the windows that fit), f gives the maximum; the first window with
      min(k, maximum) weeks is the first such point or lies up the slope from the point
      before it.
    """
    p = span.get_column("_p")
    first, last, k, m = (
        span.get_column(c).to_numpy().astype(np.int64) for c in ("_first", "_last", "_wk", "_wm")
    )
    n = len(p)
    if not n:
        return pl.DataFrame(schema=_BEST_SCHEMA)
    # span rows are people 0..n-1; ``who`` finds a _p's number
    subjects = p.to_numpy().astype(np.int64)
    who = np.full(int(subjects.max()) + 1, -1, dtype=np.int64)
    who[subjects] = np.arange(n)

    def spells(
        frame: pl.DataFrame,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """The spells of people in the span: person number, start and end day."""
        q = frame.get_column("_p").to_numpy().astype(np.int64)
        i = np.where(q < len(who), who[np.minimum(q, len(who) - 1)], -1)
        ours = i >= 0
        s, e = (frame.get_column(c).to_numpy().astype(np.int64)[ours] for c in ("_s", "_e"))
        return i[ours], s, e

    # employment spells that overlap or touch merge: sorted, a running maximum of the ends
    wi, ws, we = spells(work)
    # the sorts are stable ones: the keys come nearly sorted (by person, then by date), and
    # numpy's stable sort makes use of that
    order = np.argsort(_at(wi, ws), kind="stable")
    wi, ws, we = wi[order], ws[order], we[order]
    if len(wi):
        reach = np.maximum.accumulate(_at(wi, we))
        merged = np.flatnonzero(np.r_[True, _at(wi, ws)[1:] > reach[:-1] + 1])
        wi, ws, we = wi[merged], ws[merged], np.maximum.reduceat(we, merged)
    wa, wb = (
        np.maximum(_first_week_from_day(ws), first[wi]),
        np.minimum(_last_week_to_day(we), last[wi]),
    )
    ci, cs, ce = spells(claims)
    ca, cb = np.maximum(_week_of_day(cs), first[ci]), np.minimum(_week_of_day(ce), last[ci])
    # the sweep: +1/-1 where a run of weeks employed (claimed) starts/ends
    okw, okc = wa <= wb, ca <= cb
    nw, nc = int(okw.sum()), int(okc.sum())
    at = np.concatenate(
        [_at(wi, wa)[okw], _at(wi, wb + 1)[okw], _at(ci, ca)[okc], _at(ci, cb + 1)[okc]]
    )
    one = np.ones(1, dtype=np.int64)
    employed = np.repeat(np.r_[one, -one, 0 * one], [nw, nw, 2 * nc])
    claimed = np.repeat(np.r_[0 * one, one, -one], [2 * nw, nc, nc])
    # ties: only the state after the last of them is read
    order = np.argsort(at, kind="stable")
    at, employed, claimed = at[order], np.cumsum(employed[order]), np.cumsum(claimed[order])
    in_work = (employed[:-1] > 0) & (claimed[:-1] == 0) & (at[1:] > at[:-1])
    rs, length = at[:-1][in_work], (at[1:] - at[:-1])[in_work]
    before = np.zeros(len(rs) + 1, dtype=np.int64)
    np.cumsum(length, out=before[1:])

    def weeks_before(x: NDArray[np.int64]) -> NDArray[np.int64]:
        """Weeks in work before each ``_at`` number (counted over everyone before it: the
        difference of two numbers of one person is that person's)."""
        if not len(rs):
            return np.zeros(len(x), dtype=np.int64)
        j = np.searchsorted(rs, x, side="left") - 1
        r = np.maximum(j, 0)
        found: NDArray[np.int64] = np.where(j >= 0, before[r] + np.clip(x - rs[r], 0, length[r]), 0)
        return found

    # the points where f's slope can change, per person, clamped to the windows that fit
    last_start = last - m + 1
    run_of = rs >> 32
    r0 = (rs & _LOW) - _BIG
    r1, mr = r0 + length, m[run_of]  # r1: the first week after the run
    everyone = np.arange(n)
    who_c = np.concatenate([everyone, everyone, run_of, run_of, run_of, run_of])
    c = np.concatenate([first, last_start, r0 - mr, r0, r1 - mr, r1])
    c = np.minimum(np.maximum(c, first[who_c]), last_start[who_c])
    points = np.sort(_at(who_c, c), kind="stable")
    points = points[np.r_[True, points[1:] != points[:-1]]]
    who_c, c = points >> 32, (points & _LOW) - _BIG
    f = weeks_before(points + m[who_c]) - weeks_before(points)
    starts = np.flatnonzero(np.r_[True, who_c[1:] != who_c[:-1]])  # everyone has points
    most = np.maximum.reduceat(f, starts)
    aim = np.minimum(k, most)
    hits = np.flatnonzero(f >= aim[who_c])
    j = hits[np.searchsorted(hits, starts)]  # each person's first point reaching aim
    at_first = j == starts
    prev = np.maximum(j - 1, 0)
    return pl.DataFrame(
        {
            "_p": p,
            "_best": most,
            "_start": np.where(at_first, c[j], c[prev] + aim - f[prev]),
            "_shown": np.where(at_first, f[j], aim),
        },
        schema=_BEST_SCHEMA,
    )


_LEAVES: dict[type[BaseModel], Callable[..., Node]] = {
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


# ---------------------------------------------------------------------------
# the plan


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating a plan at E: one row per family, sorted by family_id.

    ``families`` has, in this order:

    * family_id, locality, attached_on, attached, eligible, identified (headline
      codes), claimed (null = unknown), claimable, basis, insufficient_evidence;
    * for every state key of :meth:`rules.results.FamilyResult.states`
      (``eligibility``, ``ssp``, ``ce``, ``<headline>``, ``<headline>.outcome``,
      ``<headline>.<indicator>`` and ``<headline>.<indicator>.outcome``) a
      ``state:<key>`` column (Enum) and an ``earliest:<key>`` column (Date).
      Outcome keys are null for headlines (indicators) that were not identified;
    * ``people:<headline>.<indicator>``: the people who identified each
      person-scoped indicator (sorted person ids);
    * ``rows:<key>`` for every key except ``eligibility`` and ``ssp``: the
      evidence rows, a sorted list of structs ``{table, row_no}``. They are
      exactly the rows the reference evaluator's result for that key lists
      (``Result.all_rows()``): the rows of every leaf under the step that
      settled the state (or the test), for every person in scope. Null where the
      state is null. Eligibility's rows are its headlines' rows, and SSP's are
      the identified headlines' outcome rows;
    * ``figure:<key>`` for every indicator and outcome key (and ``ce``) whose
      rule has a figure: the primary figure compared, taken from the first leaf of
      the rule's test that has one, and null when a step before the test (a
      wait, a missing table, a guard) settled the state. Per leaf: ``count`` the
      number of events, ``reduction`` the reduction in percent (null for a
      baseline of 0), ``spell`` the number of spells, ``term_rate`` the rate in
      percent (2 decimals, for reading only), ``terms_recorded`` the number of
      terms, ``snapshot_total`` the total, ``snapshot_vs_baseline`` the current
      total, ``weeks_in_work`` the weeks in work in the window judged (none for
      ``age``, ``spell_open``, ``spell_completed`` and the other snapshot
      tests). Under ``not`` the figure is the inner one. For a rule judged per
      person, the figure is the person's that decides: with ``any``, the one
      nearest to met; with ``all``, the one nearest to not_met. The thresholds
      are the plan's; ``figures`` says in plain English what each ``figure:<key>`` holds.
    """

    plan_name: str
    plan_hash: str
    as_of: date
    families: pl.DataFrame
    figures: dict[str, str] = field(default_factory=dict)

    def states(self) -> dict[str, dict[str, tuple[State, date | None]]]:
        """Per family, every state and earliest date, keyed as FamilyResult.states()."""
        out: dict[str, dict[str, tuple[State, date | None]]] = {}
        keys = [c.removeprefix("state:") for c in self.families.columns if c.startswith("state:")]
        frame = self.families.select(
            "family_id", *[f"state:{k}" for k in keys], *[f"earliest:{k}" for k in keys]
        )
        for row in frame.iter_rows(named=True):
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


@dataclass
class _Key:
    """One state key's columns on ``F``."""

    state: pl.Expr
    date: pl.Expr | None = None
    leaves: tuple[Leaf, ...] = ()
    figure: pl.Expr | None = None
    rows: bool = True


@dataclass
class _Plan:
    keys: dict[str, _Key] = field(default_factory=dict)
    people: dict[str, pl.Expr] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    # the rows of a key count for these keys too (indicator -> headline, and a per-indicator
    # outcome -> its headline's outcome)
    also: dict[str, str] = field(default_factory=dict)


def _mask(c: _Compiler, node: Node, shown: pl.Expr) -> tuple[pl.Expr, pl.Expr | None]:
    """A family-level node's state and date where ``shown``, null elsewhere."""
    state = c.define("F", pl.when(shown).then(node.state))
    date_ = None if node.date is None else c.define("F", pl.when(shown).then(node.date))
    return state, date_


def _outcome(c: _Compiler, outcome: Outcome, identified: pl.Expr | None) -> Node:
    if not outcome.in_effect(c.e):
        return c.const("F", NOT_MET)
    node, _ = c.scoped(outcome, identified)
    return node


def _figure_text(rule: Rule, node: Node) -> str | None:
    if node.figure is None:
        return None
    scope = rule.for_
    who = ""
    if scope != "family":
        how = "all" if scope == "identified_people" else getattr(scope, "combine", "any")
        nearest = "met" if how == "any" else "not_met"
        who = f"; of the people in scope, the one nearest to {nearest}"
    return f"{primitive_name(rule.test)} figure of the rule's test{who}"


def _indicator(
    c: _Compiler, key: str, ind: Indicator, out: _Plan
) -> tuple[pl.Expr, pl.Expr | None]:
    """An indicator at A: its per-family state, and (per person) whether the person identified it."""
    in_effect = _in_effect_at_a(ind)
    family, person = c.scoped(ind)
    state = c.define("F", pl.when(in_effect).then(family.state).otherwise(_code(NOT_MET)))
    date_ = None
    if family.date is not None:
        date_ = c.define("F", pl.when(in_effect & (state == _code(PENDING))).then(family.date))
    _add_cond(family.leaves, "F", in_effect)
    figure = None if family.figure is None else pl.when(in_effect).then(family.figure)
    out.keys[key] = _Key(state, date_, family.leaves, figure)
    text = _figure_text(ind, family)
    if text:
        out.figures[key] = text
    if person is None:
        return state, None
    who = c.define("P", (person.state == _code(MET)) & in_effect)
    out.people[key] = who
    return state, who


def _headline(c: _Compiler, h: Headline, out: _Plan) -> tuple[pl.Expr, Node]:
    """A headline: identification (any over indicators) and its outcome (neutral, met, where
    the headline was not identified)."""
    indicators = [_indicator(c, f"{h.code}.{i.code}", i, out) for i in h.indicators]
    identification = c.combine("any", [Node("F", s) for s, _ in indicators], "F")
    out.keys[h.code] = _Key(identification.state, rows=False)
    identified = c.define("F", identification.state == _code(MET))
    if h.outcome is not None:
        flags = [who for _, who in indicators]
        everyone = None
        if all(f is not None for f in flags):
            everyone = c.define("P", pl.any_horizontal([f for f in flags if f is not None]))
        outcome = _outcome(c, h.outcome, everyone)
        _add_cond(outcome.leaves, "F", identified)
        text = _figure_text(h.outcome, outcome)
        if text:
            out.figures[f"{h.code}.outcome"] = text
        figure = outcome.figure
    else:
        parts = []
        for (state, who), ind in zip(indicators, h.indicators, strict=True):
            assert ind.outcome is not None
            mine = c.define("F", state == _code(MET))
            o = _outcome(c, ind.outcome, who)
            _add_cond(o.leaves, "F", mine)
            s, d = _mask(c, o, mine)
            figure_i = None if o.figure is None else pl.when(mine).then(o.figure)
            out.keys[f"{h.code}.{ind.code}.outcome"] = _Key(s, d, o.leaves, figure_i)
            text = _figure_text(ind.outcome, o)
            if text:
                out.figures[f"{h.code}.{ind.code}.outcome"] = text
            out.also[f"{h.code}.{ind.code}.outcome"] = f"{h.code}.outcome"
            neutral = c.define("F", s.fill_null(_code(MET)))
            parts.append(Node("F", neutral, d))
        outcome = c.combine("all", parts, "F")
        figure = None
    s, d = _mask(c, outcome, identified)
    figure = None if figure is None else pl.when(identified).then(figure)
    out.keys[f"{h.code}.outcome"] = _Key(s, d, outcome.leaves, figure)
    neutral_state = c.define("F", s.fill_null(_code(MET)))
    return identified, Node("F", neutral_state, d)


def _state_keys(plan: Plan) -> list[str]:
    keys = ["eligibility", "ssp", "ce"]
    for h in plan.headlines:
        keys += [h.code, f"{h.code}.outcome"]
        for ind in h.indicators:
            keys.append(f"{h.code}.{ind.code}")
            if ind.outcome is not None:
                keys.append(f"{h.code}.{ind.code}.outcome")
    return keys


def evaluate(plan: Plan, sources: Sources, as_of: date) -> Evaluation:
    """Evaluate every family at E = ``as_of`` with polars; see :class:`Evaluation`."""
    c = _Compiler(sources, as_of)
    with ThreadPoolExecutor(1) as pool:
        # the families and their people do not depend on the plan: read while it compiles
        reading = pool.submit(c.subjects)
        out, eligible = _compile(c, plan)
        reading.result()
    c.read()
    frame = _assemble(c, plan, out, _state_keys(plan), eligible)
    return Evaluation(plan.name, plan.content_hash, as_of, frame, out.figures)


def _compile(c: _Compiler, plan: Plan) -> tuple[_Plan, pl.Expr]:
    """Compile the plan: every key's columns on F (and P), and the evidence leaves."""
    as_of = c.e
    out = _Plan()
    headlines = [_headline(c, h, out) for h in plan.headlines]
    # eligibility: attached, in effect at A, at least min_headlines identified
    n_identified = pl.sum_horizontal([ident.cast(pl.Int32) for ident, _ in headlines])
    eligible = c.define(
        "F", _in_effect_at_a(plan.eligibility) & (n_identified >= plan.eligibility.min_headlines)
    )
    out.keys["eligibility"] = _Key(c.define("F", _met_if(eligible).cast(CODE)), rows=False)
    # SSP: all over identified headlines' outcomes, for eligible families
    ssp = c.combine("all", [o for _, o in headlines], "F")
    out.keys["ssp"] = _Key(
        c.define("F", pl.when(eligible).then(ssp.state).otherwise(_code(NOT_MET))),
        None if ssp.date is None else c.define("F", pl.when(eligible).then(ssp.date)),
        rows=False,
    )
    ce_rule = plan.continuous_employment
    if ce_rule is None or not ce_rule.in_effect(as_of):
        out.keys["ce"] = _Key(_code(NOT_MET))
    else:
        ce, _ = c.scoped(ce_rule)
        out.keys["ce"] = _Key(ce.state, ce.date, ce.leaves, ce.figure)
        text = _figure_text(ce_rule, ce)
        if text:
            out.figures["ce"] = text
    for k, key in out.keys.items():
        for leaf in key.leaves:
            leaf.key = k
    return out, eligible


def _aligned(
    keys: pl.Series, frame: pl.DataFrame, key: str, exprs: Sequence[pl.Expr] | None = None
) -> pl.LazyFrame:
    """The rows of ``frame`` (one per ``key``) for each of ``keys``, in that order, null rows
    for keys it lacks: its columns but ``key`` (or ``exprs`` of them). A left join on the
    integer key, in a query, so that it runs inside the one it is put in, side by side with
    the others and without the interpreter: that costs less in the whole evaluation than an
    index computed with numpy beforehand and gathered, though the join alone hashes."""
    rows = frame.lazy() if exprs is None else frame.lazy().select(key, *exprs)
    return keys.to_frame().lazy().join(rows, on=key, how="left", maintain_order="left").drop(key)


def _named(exprs: dict[str, pl.Expr]) -> list[pl.Expr]:
    return [e.alias(n) for n, e in exprs.items()]


def _aggregated(
    rows: pl.DataFrame, group: str, aggs: dict[str, pl.Expr], sums: dict[str, pl.Expr]
) -> pl.LazyFrame:
    """The aggregates of ``rows`` per ``group``, one row per group.

    Where the rows are sorted by ``group`` and every aggregate is a sum of integers (the
    attendance terms of each person), each sum is the difference of the running total at
    the group's last row and at the previous group's: polars' ``group_by`` pays a cost per
    group and aggregate, many times that of the running totals.
    """
    frame = rows.lazy()
    if rows.get_column(group).flags["SORTED_ASC"] and all(n in sums for n in aggs):
        values = {n: sums[n] for n in aggs}
        # the values' types and their sums' (a schema only: nothing is computed)
        types = frame.select(
            **values, **{f"{n}:sum": e.sum() for n, e in values.items()}
        ).collect_schema()
        if all(types[n].is_integer() or types[n] == pl.Boolean for n in values):
            g = pl.col(group)
            last = (g != g.shift(-1)).fill_null(True)
            # running totals: null values add nothing (as sum skips them)
            totals = [e.cum_sum().forward_fill().fill_null(0).alias(n) for n, e in values.items()]
            return (
                frame.select(group, *totals)
                .filter(last)
                .select(
                    group,
                    *[
                        (pl.col(n) - pl.col(n).shift(1).fill_null(0)).cast(types[f"{n}:sum"])
                        for n in values
                    ],
                )
            )
    return frame.group_by(group).agg(*_named(aggs))


def _aggregates(c: _Compiler, level: Level, source: str, group: str) -> pl.LazyFrame:
    """The level's aggregates of a source's rows (a table's or a derived frame's) per
    ``group``, one row per group."""
    spec = c.frames[level]
    aggs = spec.aggs[(source, group)]
    if source in c.derived:
        return c.derived[source].frame().group_by(group).agg(*_named(aggs))
    return _aggregated(c.data(source), group, aggs, spec.sums)


def _frame(
    c: _Compiler,
    level: Level,
    base: pl.DataFrame,
    needed: Sequence[pl.Expr],
    alongside: Sequence[tuple[pl.DataFrame, str]] = (),
    computed: Callable[[], object] | None = None,
) -> pl.DataFrame:
    """A subject frame: its base, the aggregates, keyed frames and frames ``alongside``
    (each with its key) put alongside, then the columns; only the columns ``needed``
    reads are kept. Given ``computed`` (a wait for the computed frames still being
    computed, on another thread), the aggregates and keyed frames that can be are
    collected first, then the others."""
    spec = c.frames[level]
    # each piece: the computed frames it needs, its query (built once they are there), key
    pieces: list[tuple[frozenset[str], Callable[[], pl.LazyFrame], str]] = [
        (
            c.derived[source].needs if source in c.derived else frozenset(),
            partial(_aggregates, c, level, source, group),
            group,
        )
        for source, group in spec.aggs
    ]
    pieces += [(frame.needs, frame.frame, key) for frame, key in spec.keyed]

    def collected(batch: list[int]) -> dict[int, pl.DataFrame]:
        queries = [pieces[i][1]() for i in batch]
        frames = pl.collect_all(queries, engine=_ENGINE) if batch else []
        return dict(zip(batch, frames, strict=True))

    grouped = collected([i for i, (needs, _, _) in enumerate(pieces) if c.ready(needs)])
    if computed is not None:
        computed()  # the other computed frames are there from now on
    grouped |= collected([i for i in range(len(pieces)) if i not in grouped])
    keyed = [*[(grouped[i], on) for i, (_, _, on) in enumerate(pieces)], *alongside]
    # each piece's rows put alongside the base's by left joins in the frame's own query
    frame = pl.concat(
        [base.lazy(), *[_aligned(base.get_column(on), g, on) for g, on in keyed]],
        how="horizontal",
    )
    names = [*base.columns, *[n for g, on in keyed for n in g.columns if n != on]]
    for stage in sorted(spec.stages):
        frame = frame.with_columns(*[e.alias(n) for n, e in spec.stages[stage].items()])
        names += spec.stages[stage]  # fresh names: each stage only adds columns
    keep = {"_f", "_p", "person_id"} | {r for e in needed for r in e.meta.root_names()}
    # the names are known, so polars is not asked to resolve the whole query's schema
    return frame.select([n for n in names if n in keep]).collect(engine=_ENGINE)


_MAX_PASSES = 16  # families of up to this many people are combined by gathers (_to_families)


def _to_families(
    p_frame: pl.DataFrame, p2f: dict[str, tuple[str, Literal["max", "min", "any"]]]
) -> pl.DataFrame:
    """Per-person columns aggregated over each family's people (P is sorted by ``_f``): one
    row per family in P, ``_f`` and one column per ``p2f`` entry.

    As polars aggregates, nulls are skipped: ``max`` and ``min`` of no values are null and
    ``any`` of no values is false. With at most K people to a family, K gathers from each
    column (pass k: each family's k-th person, or its last if it has fewer) are combined by
    one horizontal max, min or any: one query of whole-column operations, which polars
    runs side by side and without the interpreter, where a ``group_by`` pays a cost per
    group and column many times that. A family of more than ``_MAX_PASSES`` people (a
    data error, most likely) makes it a ``group_by``, as the passes would grow with it.
    """
    f = p_frame.get_column("_f").to_numpy()
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]]) if len(f) else np.zeros(0, np.int64)
    ends = np.append(starts[1:], len(f)) - 1 if len(f) else starts  # each family's last row
    passes = int((ends - starts).max(initial=0)) + 1
    if passes > _MAX_PASSES:
        how_of = {"max": pl.Expr.max, "min": pl.Expr.min, "any": pl.Expr.any}
        aggs = [how_of[how](pl.col(column)).alias(n) for n, (column, how) in p2f.items()]
        return p_frame.group_by("_f", maintain_order=True).agg(aggs)
    # literal series all of one type: where polars' subexpression elimination takes two
    # that compare equal for one, they hold the same values
    nth = [
        pl.lit(pl.Series(f"_{k}", np.minimum(starts + k, ends), dtype=pl.UInt32))
        for k in range(passes)
    ]
    combine = {"max": pl.max_horizontal, "min": pl.min_horizontal, "any": pl.any_horizontal}
    columns = [pl.lit(pl.Series("_f", f[starts], dtype=pl.UInt32)).alias("_f")]
    for name, (column, how) in p2f.items():
        combined = combine[how]([pl.col(column).gather(i) for i in nth])
        columns.append((combined.fill_null(False) if how == "any" else combined).alias(name))
    return p_frame.lazy().select(columns).collect(engine=_ENGINE)


def _holds(conds: Sequence[pl.Expr]) -> pl.Expr:
    return pl.all_horizontal(conds).fill_null(False) if conds else pl.lit(True)


def _grouped(
    found: pl.LazyFrame, value: pl.Expr, width: int, n_keys: int, n_families: int
) -> pl.DataFrame:
    """Long rows (``_f`` below ``n_families``, ``_key`` below ``n_keys``, ``_v``) grouped into
    one list per key and family: columns ``_kf`` (key << 32 | family, ascending) and ``_list``.

    ``_v`` is a non-negative integer below 2**width. The rows are sorted and de-duplicated
    on one integer (key, family, value), 64-bit when the three fit, and grouped on its sorted
    (key, family) prefix.
    """
    fam_bits = max(n_families - 1, 0).bit_length()
    low_bits = fam_bits + width
    wide = max(n_keys - 1, 0).bit_length() + low_bits > 63
    dtype = pl.Int128 if wide else pl.UInt64

    def lit(n: int) -> pl.Expr:
        return pl.lit(n, dtype)

    g = pl.col("_g")
    combined = (
        pl.col("_key").cast(dtype) * lit(1 << low_bits)
        + pl.col("_f").cast(dtype) * lit(1 << width)
        + pl.col("_v").cast(dtype)
    )
    key = (g // lit(1 << low_bits)).cast(pl.UInt64)
    family = ((g // lit(1 << width)) % lit(1 << fam_bits)).cast(pl.UInt64)
    return (
        found.select(combined.alias("_g"))
        .sort("_g")
        .filter((g != g.shift(1)).fill_null(True))
        .select(
            (key * (1 << 32) + family).set_sorted().alias("_kf"),
            (g % lit(1 << width)).cast(pl.Int64).alias("_v"),
        )
        .select("_kf", value.alias("_list"))
        .group_by("_kf", maintain_order=True)
        .agg(pl.col("_list"))
        .collect(engine=_ENGINE)
    )


def _spread(
    grouped: pl.DataFrame, empty: Sequence[np.ndarray], dtype: pl.DataType
) -> list[pl.Series]:
    """One list column per key from :func:`_grouped`, in ``_f`` order. A family without rows
    for key ``k`` gets an empty list where ``empty[k]`` holds, null elsewhere."""
    kf = grouped.get_column("_kf").to_numpy()
    keys, families = kf >> 32, (kf & 0xFFFFFFFF).astype(np.int64)
    n = grouped.height
    # the lists, then an empty list (at n) and a null (at n + 1)
    lists = pl.concat(
        [grouped.get_column("_list"), pl.Series([[], None], dtype=pl.List(dtype))]
    ).rechunk()
    bounds = np.searchsorted(keys, np.arange(len(empty) + 1))
    wheres = []
    for k in range(len(empty)):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        where = np.where(empty[k], n, n + 1)
        where[families[lo:hi]] = np.arange(lo, hi)
        wheres.append(pl.Series(str(k), where))
    # the gathers in one query, so that polars runs them side by side
    every = pl.lit(lists)
    out = pl.DataFrame(wheres).select(every.gather(pl.col(w.name)).alias(w.name) for w in wheres)
    return [out.to_series(k) for k in range(len(wheres))]


def _evidence_rows(
    leaves: Sequence[Leaf],
    key_no: dict[str, int],
    p_frame: pl.DataFrame,
    families: NDArray[np.bool_] | None = None,
) -> pl.LazyFrame:
    """Every evidence leaf's rows (``_i`` the leaf's number in ``leaves``, ``_key`` its key's
    number, ``_f`` the family, ``_v`` the row key), a person's rows kept where the person's
    conditions hold and, given ``families`` (``families[i, f]``: leaf ``i``'s family
    conditions for family ``f``), a family's where the family's do."""
    p_ok = p_frame.select(
        "_f",
        *[
            _holds(leaf.p_conds).alias(f"_ok{i}")
            for i, leaf in enumerate(leaves)
            if leaf.level == "P"
        ],
    )
    parts: list[pl.LazyFrame] = []
    for i, leaf in enumerate(leaves):
        rows = leaf.frame.frame()
        if leaf.level == "P":
            # by _p: the person's conditions
            rows = rows.filter(pl.lit(p_ok.get_column(f"_ok{i}")).gather(pl.col("_p")))
        if families is not None:
            rows = rows.filter(pl.lit(pl.Series(families[i])).gather(pl.col("_f")))
        parts.append(
            rows.select(
                _typed(i, pl.UInt32).alias("_i"),
                _typed(key_no[leaf.key], pl.UInt32).alias("_key"),
                "_f",
                pl.col("_k").alias("_v"),
            )
        )
    if not parts:
        schema = {"_i": pl.UInt32, "_key": pl.UInt32, "_f": pl.UInt32, "_v": pl.Int64}
        return pl.LazyFrame(schema=schema)
    return pl.concat(parts)


def _evidence(
    c: _Compiler,
    out: _Plan,
    leaves: Sequence[Leaf],
    key_no: dict[str, int],
    f_frame: pl.DataFrame,
    *,
    found: pl.DataFrame | None = None,
    p_frame: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The evidence rows of every family and key (numbered as in :func:`_row_keys`), sorted and
    grouped by :func:`_grouped`; :func:`_spread` makes them one list column per key.

    Each leaf's rows count for the subjects whose conditions hold (the step that settled
    the rule, the people in scope, the key's context). Those conditions are evaluated on
    P and F, and each leaf's rows are kept by looking their subject up (P is numbered by
    ``_p`` and families by ``_f``, so a lookup is a gather). Either the rows kept by the
    people's conditions were read already, as soon as P was built (``found``, from
    :func:`_evidence_rows`), and are kept here by the families'; or (``p_frame``) one query
    keeps them by both, and nothing is held in memory but the rows kept (a large council).
    ``key_no`` numbers the keys that list rows (:func:`_row_keys`).
    """
    n_families = c.n_families
    f_ok = f_frame.select(
        "_f", *[_holds(leaf.f_conds).alias(f"_ok{i}") for i, leaf in enumerate(leaves)]
    )
    # holds[i, f]: leaf i's family conditions for family f
    holds = np.zeros((max(len(leaves), 1), n_families), dtype=bool)
    if leaves:
        holds[:, f_ok.get_column("_f").to_numpy()] = f_ok.drop("_f").to_numpy().T
    if found is not None:
        keep = holds[found.get_column("_i").to_numpy(), found.get_column("_f").to_numpy()]
        rows = found.filter(keep).lazy()
    else:
        assert p_frame is not None
        rows = _evidence_rows(leaves, key_no, p_frame, holds)
    # a headline's outcome judged per indicator: the rows of every indicator's outcome
    also = {key_no[k]: key_no[h] for k, h in out.also.items() if k in key_no and h in key_no}
    if also:
        rows = pl.concat(
            [
                rows,
                rows.filter(pl.col("_key").is_in(list(also))).with_columns(
                    pl.col("_key").replace_strict(also, return_dtype=pl.UInt32)
                ),
            ]
        )
    ref = pl.struct(
        _TABLE_OF_NUMBER.gather(pl.col("_v") // (1 << _ROW_BITS)).alias("table"),
        (pl.col("_v") & _ROW_MASK).alias("row_no"),
    )
    return _grouped(rows, ref, _ROW_KEY_BITS, len(key_no), n_families)


def _row_keys(out: _Plan) -> list[str]:
    """The keys that list evidence rows, in the order they are numbered."""
    return [k for k, key in out.keys.items() if key.rows]


def _people(out: _Plan, p_frame: pl.DataFrame, n_families: int) -> dict[str, pl.Series]:
    """Per person-scoped indicator, the people who identified it (sorted ids, ``_f`` order)."""
    if not out.people:
        return {}
    # P's rows are its people in _p order, which is by family, then id (see subjects): within
    # a family, sorting the numbers sorts the ids
    found = pl.concat(
        [
            p_frame.lazy()
            .filter(who)
            .select(
                "_f", pl.col("_p").cast(pl.Int64).alias("_v"), _typed(i, pl.UInt32).alias("_key")
            )
            for i, who in enumerate(out.people.values())
        ]
    )
    ids = pl.lit(p_frame.get_column("person_id"))
    everyone = np.ones(n_families, dtype=bool)
    grouped = _grouped(found, ids.gather(pl.col("_v")), 32, len(out.people), n_families)
    columns = _spread(grouped, [everyone] * len(out.people), pl.String())
    return dict(zip(out.people, columns, strict=True))


def _identified(plan: Plan) -> pl.Expr:
    """``identified``, from the headlines' state codes (null: not attached): the codes of the
    headlines met, in plan order."""
    codes = [h.code for h in plan.headlines]
    met = [(pl.col(f"state:{h}") == _code(MET)).fill_null(False) for h in codes]
    if len(codes) > 12:
        return pl.concat_list(
            [pl.when(m).then(pl.lit(h)) for m, h in zip(met, codes, strict=True)]
        ).list.drop_nulls()
    # one bit a headline; each of the (few) combinations is looked up
    mask = pl.sum_horizontal([m.cast(pl.UInt32) * (1 << i) for i, m in enumerate(met)])
    return pl.lit(_combinations(tuple(codes))).gather(mask)


@cache
def _combinations(codes: tuple[str, ...]) -> pl.Series:
    """Each subset of ``codes`` (in order), at the number whose bits pick it: built once per
    plan's headlines (a list series built from Python lists costs about a millisecond)."""
    return pl.Series(
        [[h for i, h in enumerate(codes) if m >> i & 1] for m in range(1 << len(codes))],
        dtype=pl.List(pl.String),
    )


def _result(
    c: _Compiler,
    plan: Plan,
    out: _Plan,
    keys: list[str],
    results: dict[str, pl.Expr],
    f_frame: pl.DataFrame,
) -> tuple[pl.LazyFrame, list[str], list[str], list[str]]:
    """The result's query, one row per family (every family, attached or not): attachment,
    claim fields, every key's state, date and figure; and its column names (the front,
    the states and dates, the figures)."""
    # every family, in family_id order (_f numbers them so), with its row of F (if attached)
    families = c.data("families")
    computed = _aligned(families.get_column("_f"), f_frame, "_f", _named(results))
    frame = pl.concat([families.lazy(), computed], how="horizontal")
    attached = pl.col("_eligible").is_not_null()
    columns: list[pl.Expr] = [
        pl.col("family_id"),
        pl.col("locality"),
        pl.col("A").alias("attached_on"),
        attached.alias("attached"),
        pl.col("_eligible").fill_null(False).alias("eligible"),
    ]
    named: list[pl.Expr] = []
    states: list[str] = []
    for k in keys:
        fill = None if k.endswith(".outcome") else NOT_MET  # not attached: nothing identified
        code = pl.col(f"state:{k}").cast(CODE)
        if fill is not None:
            code = code.fill_null(fill)
        named += [_state_enum(code).alias(f"state:{k}"), pl.col(f"earliest:{k}")]
        states += [f"state:{k}", f"earliest:{k}"]
    figures = [pl.col(f"figure:{k}") for k in keys if out.keys[k].figure is not None]
    frame = frame.select(*columns, _identified(plan).alias("identified"), *named, *figures)
    # claimed before: the claims extract or a batch this system submitted; unknown without either
    submitted = pl.col("family_id").is_in(sorted(c.sources.claimed_family_ids))
    claims = c.sources.tables.get("claims")
    if claims is not None:
        frame = frame.join(
            claims.select("family_id").unique().with_columns(pl.lit(True).alias("_claimed")),
            on="family_id",
            how="left",
            maintain_order="left",
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
        )
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
    figure_names = [f"figure:{k}" for k in keys if out.keys[k].figure is not None]
    return frame.select(*front, *states, *figure_names), front, states, figure_names


T = TypeVar("T")


class _Later(Generic[T]):
    """A call made when its result is first asked for (in the caller's thread)."""

    def __init__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._call: Callable[[], T] | None = lambda: fn(*args, **kwargs)
        self._value: T | None = None

    def result(self) -> T:
        if self._call is not None:
            self._value, self._call = self._call(), None
        return cast(T, self._value)


def _assemble(
    c: _Compiler, plan: Plan, out: _Plan, keys: list[str], eligible: pl.Expr
) -> pl.DataFrame:
    """One row per family: attachment, claim fields, every state and date, people, evidence."""
    # F columns: every key's state, date and figure
    results: dict[str, pl.Expr] = {"_eligible": eligible}
    for k in keys:
        key = out.keys[k]
        results[f"state:{k}"] = key.state
        results[f"earliest:{k}"] = key.date if key.date is not None else _no_date()
        if key.figure is not None:
            results[f"figure:{k}"] = key.figure
    leaves = [leaf for leaf in c.leaves if leaf.key]
    p_needed = [
        *[pl.col(column) for column, _ in c.p2f.values()],
        *out.people.values(),
        *[e for leaf in leaves for e in leaf.p_conds],
    ]
    # the evidence rows are gathered alongside (polars releases the GIL while it works):
    # the people's half as soon as P is built, the families' half after F, and the lists
    # of people who identified indicators in between; for a large council, after the
    # result, so that the two do not add up in memory
    row_keys = _row_keys(out)
    key_no = {k: i for i, k in enumerate(row_keys)}
    with ThreadPoolExecutor(1) as pool:
        # the frames computed from computed frames (weeks in work's, for one) on the second
        # thread, while P's other aggregates are collected
        computing = pool.submit(c.compute)
        p_frame = _frame(c, "P", c.data("p_base"), p_needed, computed=computing.result)
        by_people = (
            None
            if c.big
            else pool.submit(
                lambda: _evidence_rows(leaves, key_no, p_frame).collect(
                    engine=_ENGINE, optimizations=_LEAN
                )
            )
        )
        who = (
            _Later(_people, out, p_frame, c.n_families)
            if c.big
            else pool.submit(_people, out, p_frame, c.n_families)
        )
        people = [(_to_families(p_frame, c.p2f), "_f")] if c.p2f else []
        f_needed = [*results.values(), *[e for leaf in leaves for e in leaf.f_conds]]
        f_frame = _frame(c, "F", c.data("f_base"), f_needed, people)
        evidence = (
            _Later(_evidence, c, out, leaves, key_no, f_frame, p_frame=p_frame)
            if by_people is None
            else pool.submit(
                lambda: _evidence(c, out, leaves, key_no, f_frame, found=by_people.result())
            )
        )
        query, front, states, figure_names = _result(c, plan, out, keys, results, f_frame)
        result = query.collect(engine=_ENGINE)
        # evidence where the key has a state (a non-attached family: no rows), null elsewhere
        shown = result.select(
            *[
                (
                    pl.col(f"state:{k}").is_not_null()
                    if k.endswith(".outcome")
                    else pl.col(f"state:{k}").is_not_null() | ~pl.col("attached")
                ).alias(k)
                for k in row_keys
            ]
        )
        extra = [people.alias(f"people:{k}") for k, people in who.result().items()]
        grouped = evidence.result()
    row_lists = _spread(grouped, [shown.get_column(k).to_numpy() for k in row_keys], ROW_REF)
    extra += [rows.alias(f"rows:{k}") for k, rows in zip(row_keys, row_lists, strict=True)]
    return pl.concat(
        [result.select(*front, *states), pl.DataFrame(extra), result.select(figure_names)],
        how="horizontal",
    )
