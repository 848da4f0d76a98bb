"""The synthetic council: a full, deterministic set of warehouse extracts.

``synthesise`` writes one file per contract table for an imaginary council with
three localities (North, Mid, South) and as many families as asked for. The
data is built to exercise every indicator and outcome of the default Outcome
Plan (``shared/spec/outcome-plan-phase2.md``), including the awkward cases.

Stories
-------
Each family draws a *story*, which decides its attachment date A and what
happens after it:

``progress``
    Attached 2015-04 .. 2017-12. Every headline it had at attachment improves:
    offending, anti-social behaviour and domestic abuse stop within three months
    of A, attendance recovers through the three terms after A and exclusions
    stop, child-in-need / child-protection episodes close (often stepping down
    to early help), NEET spells end, arrears fall to at most half, and health
    episodes are either completed or stay open (sustained engagement). Adults
    on out-of-work benefits leave them for work: half of them for one
    continuous job, half for a run of short contracts (enough for SSP, rarely
    for CE).
``employment``
    Attached 2015-04 .. 2017-12 with the worklessness headline identified by an
    adult's benefit spell covering A. That adult leaves benefit and starts
    continuous work a few weeks to five months after A, under both benefit
    groups (``jsa``/``uc_not_working`` need 26 weeks in work out of 30,
    ``esa``/``income_support``/``incapacity_benefit`` 13 out of 16). The other
    headlines improve only half the time, so CE is met more often than SSP.
``no_progress``
    Attached 2015-04 .. 2017-12; at least one headline does not improve:
    events carry on at their baseline rate, absence stays high, episodes stay
    open, and health episodes end disengaged or transferred. Worklessness never
    improves: adults stay on benefit, or lose a short job and go back on it.
``recent``
    Attached 2018-01 .. 2018-06: too recent to judge for most evaluation dates.
    Each headline improves with probability 0.6.
``unattached`` (about 13%)
    Identified but never attached (``attached_on`` null); its problems sit
    around an identification date in 2015-04 .. 2019-03.

A family has 1-4 headline problems at attachment (97% have 2-4; the few with
one are ineligible), drawn with realistic weights. Adults, young people aged
16-24 (for NEET) and children are generated around A; a small share of people
have no birth date.

Near-boundary cases and missing data, each a few percent: events dated on A
itself, attendance at exactly 10%, arrears of exactly GBP 1,000.00 (and
GBP 999.99), arrears falling to exactly half or to nothing, a young person who
turns 16 on A or 25 on A, 29 February birth dates, a benefit that ends on the
day employment starts, employment with a one-day gap, spells of both benefit
groups covering A, terms with 0 possible sessions, children whose attendance
stops arriving (no rows for recent terms; in 6% of families for every child, a
few months after A, and such a family was never claimed before: its progress
could not be evidenced), a debt kind whose snapshots stop, and NEET young
people with no birth date.

The ``claims`` table holds earlier claims: progress and employment families
whose outcomes were met, claimed shortly afterwards, before 2018-01-01 (about
900 for 3,000 families, rising month by month with attachments).

Determinism and scale
---------------------
Families are generated in chunks, vectorised with numpy, and each chunk is
appended to the open files. Random numbers are counter-based: every item
(family, person, event) of every named stream owns a fixed block of uniforms
from a Philox generator keyed by (seed, stream name), at an offset given by the
item's global ordinal. The files are therefore byte-identical for the same
(families, seed, fmt), whatever the chunk size, and no ``hash()`` or set order
is ever involved. Rows are sorted within each chunk by every column, so the
row order does not depend on the chunking either.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from warehouse.contract import TABLES, Column, Table, table

__all__ = ["DEFAULT_CHUNK_SIZE", "SynthSummary", "synthesise"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Rows = dict[str, IntArray]
TextFormat = Callable[[pl.Expr], pl.Expr]

DEFAULT_CHUNK_SIZE = 25_000


@dataclass(frozen=True)
class SynthSummary:
    """What ``synthesise`` wrote."""

    families: int
    rows: dict[str, int]
    files: list[Path]


# ----------------------------------------------------------------------------- calendar


def _day(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int(np.datetime64(iso, "D").astype(np.int64))


def _ymd(year: IntArray, month: int, day: int) -> IntArray:
    months = (year - 1970) * 12 + (month - 1)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first + (day - 1)


def _add_months(days: IntArray, months: int) -> IntArray:
    """Same day ``months`` calendar months later, clamped to the month's end."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    day_of_month = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + np.timedelta64(months, "M")
    first = target.astype("datetime64[D]").astype(np.int64)
    length = (target + np.timedelta64(1, "M")).astype("datetime64[D]").astype(np.int64) - first
    return np.asarray(first + np.minimum(day_of_month, length - 1), dtype=np.int64)


def _year(days: IntArray) -> IntArray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _monday_on_or_after(days: IntArray) -> IntArray:
    # 1970-01-01 was a Thursday; (days + 3) % 7 is 0 on Mondays.
    return days + (-(days + 3)) % 7


PROGRAMME_START = _day("2015-04-01")
CLAIMS_BEFORE = _day("2018-01-01")
UC_FROM = _day("2016-06-01")
#: The extract was taken at the end of July 2019: nothing is dated later.
HORIZON = _day("2019-07-31")
#: An end date past the horizon: written as null (still open).
OPEN = 1_000_000_000
YEAR = 365.25
SCHOOL_FROM = 1461  # days of age at a term's start: reception ...
SCHOOL_TO = 5844  # ... to the end of year 11


def _school_terms() -> tuple[IntArray, IntArray]:
    """Three terms a school year, spring 2013 to summer 2019."""
    starts: list[int] = []
    ends: list[int] = []
    for year in range(2012, 2019):
        for first, last in (
            (f"{year}-09-01", f"{year}-12-20"),
            (f"{year + 1}-01-05", f"{year + 1}-03-31"),
            (f"{year + 1}-04-15", f"{year + 1}-07-22"),
        ):
            if first >= "2013-01-01":
                starts.append(_day(first))
                ends.append(_day(last))
    return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


TERM_START, TERM_END = _school_terms()


@dataclass(frozen=True)
class _Months:
    """A weighted choice of calendar months, then a uniform day within one."""

    start: IntArray
    length: IntArray
    cumulative: FloatArray

    @classmethod
    def build(cls, first: str, last: str, weight: Callable[[int], float]) -> _Months:
        months = np.arange(np.datetime64(first, "M"), np.datetime64(last, "M") + 1)
        start = months.astype("datetime64[D]").astype(np.int64)
        length = (months + 1).astype("datetime64[D]").astype(np.int64) - start
        years = months.astype("datetime64[Y]").astype(np.int64) + 1970
        w = np.array([weight(int(y)) for y in years], dtype=np.float64)
        return cls(start, length, np.cumsum(w) / w.sum())

    def pick(self, month_u: FloatArray, day_u: FloatArray) -> IntArray:
        i = np.minimum(np.searchsorted(self.cumulative, month_u, side="right"), self.start.size - 1)
        return self.start[i] + (day_u * self.length[i]).astype(np.int64)


# More attachments in 2016-2017 than in the programme's first months.
_MAIN_MONTHS = _Months.build("2015-04", "2017-12", lambda y: 0.6 if y == 2015 else 1.0)
_RECENT_MONTHS = _Months.build("2018-01", "2018-06", lambda y: 1.0)
_IDENTIFIED_MONTHS = _Months.build("2015-04", "2019-03", lambda y: 1.0)


# ----------------------------------------------------------------------------- codes


def _codes(table_name: str, column: str) -> dict[str, int]:
    choices = table(table_name).column(column).choices
    if choices is None:
        raise ValueError(f"{table_name}.{column} has no code list")
    return {c: i for i, c in enumerate(choices)}


ROLE = _codes("people", "role")
OFFENCE = _codes("offences", "kind")
EXCLUSION = _codes("exclusions", "kind")
EPISODE = _codes("social_care", "episode")
BENEFIT = _codes("benefits", "benefit")
ABUSE = _codes("domestic_abuse", "kind")
ABUSE_ROLE = _codes("domestic_abuse", "role")
SERVICE = _codes("health", "service")
END_REASON = _codes("health", "end_reason")
DEBT = _codes("debt", "kind")
BASIS = _codes("claims", "basis")

# Headlines of the default plan, in plan order.
CRIME, EDUCATION, CARE, WORK, ABUSE_H, HEALTH = range(6)
HEADLINE_WEIGHTS = (0.30, 0.45, 0.35, 0.60, 0.30, 0.40)
HEADLINE_COUNT_SHARES = (0.03, 0.45, 0.35, 0.17)  # 1, 2, 3 or 4 headlines

PROGRESS, EMPLOYMENT, NO_PROGRESS, RECENT, UNATTACHED = range(5)
ATTACHED_SHARE = 0.87
_STORY_ORDER = np.array([RECENT, PROGRESS, EMPLOYMENT, NO_PROGRESS], dtype=np.int64)
_STORY_SHARES = (0.12, 0.88 * 0.55, 0.88 * 0.17, 0.88 * 0.28)
CLAIM_SHARE = 0.95  # share of eligible early successes already claimed
DATA_GAP_SHARE = 0.06  # families whose children's attendance stops arriving after A

ADULT, YOUNG, CHILD = range(3)
CHILDREN_SHARES = (0.08, 0.30, 0.30, 0.18, 0.09, 0.05)  # 0..5 children

CRIME_OFFENCES, CRIME_ASB, CRIME_BOTH = range(3)
EDU_ABSENCE, EDU_EXCLUSIONS, EDU_BOTH = range(3)

_BENEFIT_ORDER = np.array(
    [BENEFIT[b] for b in ("jsa", "uc_not_working", "esa", "income_support", "incapacity_benefit")],
    dtype=np.int64,
)
_BENEFIT_SHARES = (0.35, 0.20, 0.25, 0.15, 0.05)
_LONG_GROUP = np.array([BENEFIT["jsa"], BENEFIT["uc_not_working"]], dtype=np.int64)

LOCALITIES = ("North", "Mid", "South")
LOCALITY_SHARES = (0.44, 0.21, 0.35)

GIVEN_NAMES = (
    "Aaliyah", "Adam", "Aisha", "Alfie", "Amelia", "Amir", "Ava", "Bartosz", "Bethany",
    "Callum", "Chantelle", "Charlie", "Chloe", "Connor", "Daniel", "Darren", "Demi",
    "Dylan", "Ellie", "Emily", "Ethan", "Faith", "Freya", "George", "Grace", "Harry",
    "Hassan", "Isla", "Jack", "Jade", "Jake", "Jayden", "Jessica", "Joshua", "Kayleigh",
    "Kyle", "Leah", "Liam", "Lily", "Łukasz", "Mason", "Mia", "Mohammed", "Nathan",
    "Niamh", "Noah", "Olivia", "Oscar", "Paige", "Reece", "Riley", "Ruby", "Ryan",
    "Sadia", "Shannon", "Siobhán", "Sophie", "Tyler", "Zoë", "Zuzanna",
)  # fmt: skip
FAMILY_NAMES = (
    "Ahmed", "Ali", "Atkinson", "Bailey", "Begum", "Bennett", "Brown", "Campbell", "Clarke",
    "Cooper", "Davies", "Doherty", "Evans", "Fletcher", "Green", "Hall", "Harris",
    "Hughes", "Hussain", "Jackson", "Johnson", "Jones", "Kaur", "Kowalski", "Lewis",
    "Martin", "Mitchell", "Moore", "Murphy", "Nowak", "O'Brien", "O'Neill", "Parker",
    "Patel", "Roberts", "Robinson", "Shaw", "Smith", "Smith-Jones", "Taylor", "Thomas",
    "Thompson", "Turner", "Walker", "Ward", "Watson", "White", "Williams", "Wilson", "Wright",
)  # fmt: skip
WORKERS_PER_LOCALITY = 8
LEAD_WORKERS = (
    # North
    "Angela Foster", "Brian Holt", "Carol Pryce", "Dev Mistry", "Fiona Grant",
    "Gareth Lloyd", "Helen Marsh", "Imran Qureshi",
    # Mid
    "Janet Cole", "Karen Hobbs", "Lee Dawson", "Marcia Reid", "Nadia Rahman",
    "Owen Pritchard", "Pauline Webb", "Rachel Tan",
    # South
    "Sam Okafor", "Sandra Birch", "Tom Whitfield", "Una Byrne", "Vikram Shah",
    "Wendy Nash", "Yasmin Khan", "Zara Holloway",
)  # fmt: skip


# ----------------------------------------------------------------------------- randomness


class _Draws:
    """A block of uniforms, one row per item, handed out a column at a time."""

    def __init__(self, u: FloatArray) -> None:
        self._u = u
        self._next = 0

    def u(self) -> FloatArray:
        if self._next >= self._u.shape[1]:
            raise RuntimeError("stream width exhausted: widen the stream")
        col = self._u[:, self._next]
        self._next += 1
        return col

    def below(self, p: float | FloatArray) -> BoolArray:
        return self.u() < p

    def uniform(self, lo: float, hi: float) -> FloatArray:
        return lo + self.u() * (hi - lo)

    def integers(self, lo: int | IntArray, hi: int | IntArray) -> IntArray:
        """Integers in [lo, hi)."""
        return lo + (self.u() * (np.asarray(hi) - lo)).astype(np.int64)

    def choice(self, shares: Sequence[float]) -> IntArray:
        cumulative = np.cumsum(np.asarray(shares, dtype=np.float64))
        cumulative /= cumulative[-1]
        i = np.searchsorted(cumulative, self.u(), side="right")
        return np.minimum(i, len(shares) - 1).astype(np.int64)


class _Streams:
    """Counter-based uniforms: item i of a stream always gets the same numbers.

    Each stream name is keyed separately and remembers how many items it has
    handed out, so a chunk continues where the previous chunk stopped. A stream
    may be drawn once per chunk only, which keeps its items in family order.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed % 2**64
        self._position: dict[str, int] = {}
        self._width: dict[str, int] = {}
        self._used: list[str] = []
        self._keys: dict[int, str] = {}

    def begin_chunk(self) -> None:
        self._used = []

    def draws(self, stream: str, items: int, width: int) -> _Draws:
        if stream in self._used:
            raise RuntimeError(f"stream {stream!r} drawn twice in one chunk")
        self._used.append(stream)
        if self._width.setdefault(stream, width) != width:
            raise RuntimeError(f"stream {stream!r} used with two widths")
        first = self._position.get(stream, 0)
        self._position[stream] = first + items
        position = first * width
        crc = zlib.crc32(stream.encode())
        if self._keys.setdefault(crc, stream) != stream:
            raise RuntimeError(f"streams {stream!r} and {self._keys[crc]!r} share a key")
        key = np.array([self._seed, crc], dtype=np.uint64)
        # Philox yields four 64-bit words per counter step, one per double.
        generator = np.random.Generator(np.random.Philox(key=key, counter=position // 4))
        skip = position % 4
        u = generator.random(skip + items * width)[skip:]
        return _Draws(u.reshape(items, width))


def _expand(counts: IntArray) -> tuple[IntArray, IntArray]:
    """Owner and rank within owner of ``sum(counts)`` items, owners in order."""
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size, dtype=np.int64) - starts[owner]


def _pick(mask: BoolArray, value: int | IntArray, other: int | IntArray = 0) -> IntArray:
    return np.where(mask, value, other).astype(np.int64)


def _sort_rows(rows: Rows) -> Rows:
    """Sort rows by every column in order, so ties are identical rows."""
    order = np.lexsort(tuple(reversed(list(rows.values()))))
    return {k: v[order] for k, v in rows.items()}


def _concat(parts: Sequence[Rows]) -> Rows:
    names = list(parts[0])
    return {k: np.concatenate([p[k] for p in parts]).astype(np.int64) for k in names}


def _keep(rows: Rows, mask: BoolArray) -> Rows:
    return {k: v[mask] for k, v in rows.items()}


def _hours(u: FloatArray) -> IntArray:
    """Hours a week in hundredths: quarter hours 8-40, a few zero or unknown."""
    quarters = np.minimum(((u - 0.06) / 0.94 * 129).astype(np.int64), 128)
    return np.select([u < 0.04, u < 0.06], [-1, 0], 800 + 25 * quarters).astype(np.int64)


# ----------------------------------------------------------------------------- families


@dataclass(frozen=True)
class _Families:
    """One chunk of families: who they are and how their story unfolds."""

    n: int
    story: IntArray
    attached: BoolArray
    ref: IntArray  # A, or the identification date of an unattached family
    locality: IntArray
    surname: IntArray
    worker: IntArray
    closed_on: IntArray
    headline: BoolArray  # (n, 6)
    improves: BoolArray  # (n, 6): identified and improving after A
    settle: IntArray  # last day of post-attachment events on an improving headline
    n_adults: IntArray
    has_young: IntArray
    n_children: IntArray
    size: IntArray
    first_person: IntArray  # chunk-local index of the family's first member
    crime_mode: IntArray
    edu_mode: IntArray
    edu_second: BoolArray
    care_cp: BoolArray
    care_prior_cin: BoolArray
    care_step_down: BoolArray
    care_end: IntArray
    work_benefit: BoolArray
    work_neet: BoolArray
    work_debt: BoolArray
    on_benefit: BoolArray  # (n, 2): adult 1 / adult 2 identified by a benefit spell
    benefit: IntArray  # (n, 2)
    job: IntArray  # (n, 2) job start after A
    end_variant: IntArray  # (n, 2) 0 day before job, 1 day job starts, 2 weeks before
    continuous: BoolArray  # (n, 2) one continuous job (else short contracts)
    gap_day: BoolArray  # (n, 2)
    gap_at: IntArray  # (n, 2)
    job_end: IntArray  # (n, 2)
    double_group: BoolArray  # (n, 2) spells of both benefit groups cover A
    short_job: BoolArray  # (n, 2) no progress: a short job, then benefit again
    neet_end: IntArray
    health_person: IntArray  # slot within the family
    health_episodes: IntArray  # 0, 1 or 2 (both services)
    health_service: IntArray  # (n, 2)
    health_start: IntArray  # (n, 2)
    health_end: IntArray  # (n, 2)
    health_reason: IntArray  # (n, 2), -1 while open
    claimed: BoolArray
    claimed_on: IntArray
    basis: IntArray
    data_gap: BoolArray  # the children's attendance stops arriving a few months after A


def _draw_headlines(d: _Draws, story: IntArray) -> BoolArray:
    """1-4 distinct headlines per family (Gumbel top-k over the weights)."""
    count = 1 + d.choice(HEADLINE_COUNT_SHARES)
    keys = np.column_stack(
        [np.log(w) - np.log(-np.log(np.clip(d.u(), 1e-12, 1 - 1e-12))) for w in HEADLINE_WEIGHTS]
    )
    keys[story == EMPLOYMENT, WORK] = np.inf
    rank = np.argsort(np.argsort(-keys, axis=1, kind="stable"), axis=1, kind="stable")
    return np.asarray(rank < count[:, None])


def _draw_improvement(d: _Draws, story: IntArray, headline: BoolArray) -> BoolArray:
    p = np.select([story == PROGRESS, story == EMPLOYMENT, story == RECENT], [1.0, 0.5, 0.6], 0.3)
    improves = np.column_stack([d.u() for _ in range(6)]) < p[:, None]
    improves[story == EMPLOYMENT, WORK] = True
    improves[story == NO_PROGRESS, WORK] = False  # nobody finds work either
    # A family with no progress keeps at least one of its problems.
    stuck = (story == NO_PROGRESS) & np.all(improves | ~headline, axis=1)
    first = np.argmax(headline, axis=1)
    improves[np.flatnonzero(stuck), first[stuck]] = False
    return np.asarray(improves & headline)


def _draw_adult_work(d: _Draws, story: IntArray, ref: IntArray) -> dict[str, IntArray]:
    """One adult's benefit and job trajectory (used for both adult slots)."""
    benefit = _BENEFIT_ORDER[d.choice(_BENEFIT_SHARES)]
    benefit = np.where(
        (benefit == BENEFIT["uc_not_working"]) & (ref < UC_FROM), BENEFIT["jsa"], benefit
    )
    job = ref + d.integers(14, 165)
    gap_at = job + d.integers(20, 151)
    job_end = np.where(d.below(0.7), OPEN, job + d.integers(300, 901))
    return {
        "benefit": benefit.astype(np.int64),
        "job": job,
        "end_variant": d.choice((0.8, 0.1, 0.1)),
        "continuous": ((story == EMPLOYMENT) | (d.below(0.5) & (story != NO_PROGRESS))).astype(
            np.int64
        ),
        "gap_day": d.below(0.15).astype(np.int64),
        "gap_at": gap_at,
        "job_end": job_end,
        "double_group": d.below(0.05).astype(np.int64),
        "short_job": d.below(0.4).astype(np.int64),
    }


def _draw_health(d: _Draws, ref: IntArray, improving: BoolArray) -> dict[str, IntArray]:
    """One treatment episode: open, completed, disengaged, transferred..."""
    start = ref - d.integers(20, 521)
    v = d.u()
    after = ref + d.integers(30, 231)
    before = np.maximum(ref - d.integers(10, 311), start + 10)
    end = np.where(
        improving,
        np.where(v < 0.4, OPEN, after),
        np.select([v < 0.5, v < 0.7], [after, before], after),
    )
    reason = np.where(
        improving,
        END_REASON["completed"],
        np.select(
            [v < 0.5, v < 0.7],
            [END_REASON["disengaged"], END_REASON["other"]],
            END_REASON["transferred"],
        ),
    )
    reason = np.where(end > HORIZON, -1, reason)
    return {"start": start, "end": end.astype(np.int64), "reason": reason.astype(np.int64)}


def _draw_families(streams: _Streams, n: int) -> _Families:
    d = streams.draws("family", n, 96)
    attached = d.below(ATTACHED_SHARE)
    story = np.where(attached, _STORY_ORDER[d.choice(_STORY_SHARES)], UNATTACHED)
    month_u, day_u = d.u(), d.u()
    ref = np.select(
        [story == RECENT, attached],
        [_RECENT_MONTHS.pick(month_u, day_u), _MAIN_MONTHS.pick(month_u, day_u)],
        _IDENTIFIED_MONTHS.pick(month_u, day_u),
    ).astype(np.int64)
    locality = d.choice(LOCALITY_SHARES)
    surname = d.integers(0, len(FAMILY_NAMES))
    worker = locality * WORKERS_PER_LOCALITY + d.integers(0, WORKERS_PER_LOCALITY)
    worker = _pick(attached & ~d.below(0.01), worker, -1)
    p_close = np.select(
        [(story == PROGRESS) | (story == EMPLOYMENT), story == NO_PROGRESS, story == RECENT],
        [0.6, 0.4, 0.15],
        0.0,
    )
    closed_on = _pick(d.below(p_close), ref + d.integers(120, 721), OPEN)

    headline = _draw_headlines(d, story)
    improves = _draw_improvement(d, story, headline)
    settle = ref + d.integers(1, 91)

    work = headline[:, WORK]
    work_benefit = work & ((story == EMPLOYMENT) | d.below(0.7))
    work_neet = work & d.below(0.25)
    work_debt = work & d.below(0.35)
    work_benefit |= work & ~(work_benefit | work_neet | work_debt)

    n_adults = 1 + d.below(0.45).astype(np.int64)
    has_young = (work_neet | d.below(0.18)).astype(np.int64)
    edu = headline[:, EDUCATION]
    edu_second = edu & d.below(0.2)
    needs_children = (edu | headline[:, CARE]).astype(np.int64) + edu_second
    n_children = np.maximum(d.choice(CHILDREN_SHARES), needs_children)
    size = n_adults + has_young + n_children

    crime_mode = d.choice((0.55, 0.25, 0.20))
    edu_mode = d.choice((0.60, 0.25, 0.15))
    care_cp = d.below(0.4)
    care_prior_cin = care_cp & d.below(0.3)
    care_step_down = d.below(0.5)
    care_end = np.where(
        improves[:, CARE],
        ref + d.integers(20, 151),
        _pick(d.below(0.5), ref + d.integers(240, 641), OPEN),
    )

    adults = [_draw_adult_work(d, story, ref) for _ in range(2)]
    second_on_benefit = d.below(0.3) & (n_adults == 2)

    def slots(name: str) -> IntArray:
        return np.column_stack([a[name] for a in adults])

    on_benefit = np.column_stack([work_benefit, work_benefit & second_on_benefit])

    neet_end = np.where(
        improves[:, WORK],
        ref + d.integers(14, 165),
        _pick(d.below(0.6), OPEN, ref + d.integers(200, 501)),
    )

    health_person = np.select(
        [d.below(0.7), n_adults == 2, has_young == 1], [0, 1, n_adults], 0
    ).astype(np.int64)
    first_service = _pick(d.below(0.35), SERVICE["substance_misuse"], SERVICE["mental_health"])
    health_episodes = headline[:, HEALTH] * (1 + d.below(0.1))
    episodes = [_draw_health(d, ref, improves[:, HEALTH]) for _ in range(2)]

    fam = _Families(
        n=n,
        story=story.astype(np.int64),
        attached=attached,
        ref=ref,
        locality=locality,
        surname=surname,
        worker=worker,
        closed_on=closed_on,
        headline=headline,
        improves=improves,
        settle=settle,
        n_adults=n_adults,
        has_young=has_young,
        n_children=n_children,
        size=size,
        first_person=np.cumsum(size) - size,
        crime_mode=crime_mode,
        edu_mode=edu_mode,
        edu_second=edu_second,
        care_cp=care_cp,
        care_prior_cin=care_prior_cin,
        care_step_down=care_step_down,
        care_end=care_end.astype(np.int64),
        work_benefit=work_benefit,
        work_neet=work_neet,
        work_debt=work_debt,
        on_benefit=on_benefit,
        benefit=slots("benefit"),
        job=slots("job"),
        end_variant=slots("end_variant"),
        continuous=slots("continuous").astype(bool),
        gap_day=slots("gap_day").astype(bool),
        gap_at=slots("gap_at"),
        job_end=slots("job_end"),
        double_group=slots("double_group").astype(bool),
        short_job=slots("short_job").astype(bool),
        neet_end=neet_end.astype(np.int64),
        health_person=health_person,
        health_episodes=health_episodes.astype(np.int64),
        health_service=np.column_stack([first_service, 1 - first_service]),
        health_start=np.column_stack([e["start"] for e in episodes]),
        health_end=np.column_stack([e["end"] for e in episodes]),
        health_reason=np.column_stack([e["reason"] for e in episodes]),
        claimed=np.zeros(n, dtype=bool),
        claimed_on=np.zeros(n, dtype=np.int64),
        basis=np.zeros(n, dtype=np.int64),
        data_gap=streams.draws("family.data_gap", n, 1).below(DATA_GAP_SHARE),
    )
    return _with_claims(fam, d)


def _ssp_met_from(fam: _Families) -> IntArray:
    """Roughly the first day every identified outcome is met (progress stories)."""
    h = fam.headline
    met = np.full(fam.n, PROGRAMME_START, dtype=np.int64)

    def need(mask: BoolArray, date: IntArray) -> None:
        np.maximum(met, np.where(mask, date, 0), out=met)

    first_post = np.searchsorted(TERM_START, fam.ref, side="left")
    third = first_post + 2
    third_end = np.where(
        third < TERM_END.size, TERM_END[np.minimum(third, TERM_END.size - 1)], OPEN
    )
    need(h[:, CRIME] | h[:, ABUSE_H], fam.settle + 184)
    need(h[:, EDUCATION], third_end + 3)
    need(h[:, CARE], fam.care_end + 184)
    for slot in range(2):
        need(fam.on_benefit[:, slot], fam.job[:, slot] + 92)
    need(fam.work_neet, fam.neet_end + 92)
    need(fam.work_debt, fam.ref + 250)
    for e in range(2):
        open_ = fam.health_end[:, e] >= OPEN
        date = np.where(open_, fam.ref + 92, fam.health_end[:, e] + 184)
        need(h[:, HEALTH] & (fam.health_episodes > e), date)
    return met


def _ce_met_from(fam: _Families) -> IntArray:
    """First Sunday adult 1 could meet continuous employment (ISO weeks)."""
    long_group = np.isin(fam.benefit[:, 0], _LONG_GROUP) | fam.double_group[:, 0]
    weeks = np.where(long_group, 30, 16)
    needed = np.where(long_group, 26, 13)
    first_monday = _monday_on_or_after(fam.job[:, 0] + (fam.end_variant[:, 0] == 1))
    window_start = np.maximum(_monday_on_or_after(fam.ref + 1), first_monday - 7 * (weeks - needed))
    return np.asarray(window_start + 7 * weeks - 1 + 7 * fam.gap_day[:, 0], dtype=np.int64)


def _with_claims(fam: _Families, d: _Draws) -> _Families:
    """Earlier claims: successes met and claimed before 2018."""
    met = np.where(fam.story == EMPLOYMENT, _ce_met_from(fam), _ssp_met_from(fam))
    claimed_on = met + d.integers(1, 92)
    eligible = fam.headline.sum(axis=1) >= 2
    success = (fam.story == PROGRESS) | (fam.story == EMPLOYMENT)
    # A family whose data stopped arriving could not have had its progress evidenced.
    claimed = (
        eligible & success & ~fam.data_gap & (claimed_on < CLAIMS_BEFORE) & d.below(CLAIM_SHARE)
    )
    basis = _pick(fam.story == EMPLOYMENT, BASIS["ce"], BASIS["ssp"])
    return replace(fam, claimed=claimed, claimed_on=claimed_on, basis=basis)


# ----------------------------------------------------------------------------- people


@dataclass(frozen=True)
class _People:
    n: int
    family: IntArray
    kind: IntArray
    role_child: BoolArray
    birth: IntArray  # always known here; ``birth_known`` says whether it is written
    birth_known: BoolArray
    given: IntArray
    surname: IntArray
    edu_child: BoolArray  # a child who identifies the education headline
    school_offset: IntArray  # days by which the child's school calendar differs
    r0: FloatArray  # usual unauthorised absence rate
    r1: FloatArray  # absence rate while a problem
    exact10: BoolArray  # absence exactly 10% in the terms before A
    attendance_until: IntArray  # attendance stops arriving after this date


def _draw_people(streams: _Streams, fam: _Families) -> _People:
    family, slot = _expand(fam.size)
    n = family.size
    d = streams.draws("person", n, 20)
    ref = fam.ref[family]
    n_adults = fam.n_adults[family]
    young = fam.has_young[family]
    kind = np.select([slot < n_adults, slot < n_adults + young], [ADULT, YOUNG], CHILD)
    child_rank = slot - n_adults - young
    edu_child = (
        (kind == CHILD)
        & fam.headline[family, EDUCATION]
        & ((child_rank == 0) | ((child_rank == 1) & fam.edu_second[family]))
    )
    age = np.select(
        [kind == ADULT, kind == YOUNG, edu_child],
        [d.uniform(19, 52), d.uniform(16, 25), d.uniform(6, 14)],
        d.uniform(0, 16),
    )
    birth = ref - np.rint(age * YEAR).astype(np.int64)
    boundary = d.u()
    birth = np.select(
        [(kind == YOUNG) & (boundary < 0.04), (kind == YOUNG) & (boundary < 0.07)],
        [_add_months(ref, -300), _add_months(ref, -192)],  # 25 on A; 16 on A
        birth,
    )
    leap_day = _ymd(_year(birth) - _year(birth) % 4, 2, 29)
    birth = np.where((kind == ADULT) & (boundary > 0.996), leap_day, birth)
    neet_young = (kind == YOUNG) & fam.work_neet[family]
    birth_known = ~d.below(np.where(neet_young, 0.06, 0.02))
    role_child = (kind == CHILD) | ((kind == YOUNG) & (_add_months(birth, 216) > ref))
    given = d.integers(0, len(GIVEN_NAMES))
    own_surname = d.integers(0, len(FAMILY_NAMES))
    surname = np.where((slot == 0) | d.below(0.8), fam.surname[family], own_surname)
    return _People(
        n=n,
        family=family,
        kind=kind.astype(np.int64),
        role_child=role_child,
        birth=birth.astype(np.int64),
        birth_known=birth_known,
        given=given,
        surname=surname.astype(np.int64),
        edu_child=edu_child,
        school_offset=np.array([0, 2, -3], dtype=np.int64)[d.choice((0.8, 0.1, 0.1))],
        r0=d.uniform(0.005, 0.065),
        r1=d.uniform(0.12, 0.30),
        exact10=d.below(0.06),
        attendance_until=np.where(
            role_child & fam.data_gap[family],
            ref + d.integers(30, 151),
            _pick(d.below(0.03), ref + d.integers(-60, 441), OPEN),
        ).astype(np.int64),
    )


# ----------------------------------------------------------------------------- tables


def _families_rows(fam: _Families) -> Rows:
    return {
        "family_id": np.arange(fam.n, dtype=np.int64),
        "locality": fam.locality,
        "attached_on": _pick(fam.attached, fam.ref, OPEN),
        "lead_worker": fam.worker,
        "closed_on": fam.closed_on,
    }


def _people_rows(ppl: _People) -> Rows:
    return {
        "person_id": np.arange(ppl.n, dtype=np.int64),
        "family_id": ppl.family,
        "role": _pick(ppl.role_child, ROLE["child"], ROLE["adult"]),
        "birth_date": _pick(ppl.birth_known, ppl.birth, OPEN),
        "given_name": ppl.given,
        "family_name": ppl.surname,
    }


def _event(person: IntArray, date: IntArray, kind: IntArray | int) -> Rows:
    kinds = np.broadcast_to(np.asarray(kind, dtype=np.int64), person.shape)
    return {"person_id": person, "date": date, "kind": kinds}


def _offences_rows(streams: _Streams, fam: _Families, person_offset: int) -> Rows:
    """Baseline offending / ASB before A, then a settling period or more of the same."""
    d = streams.draws("offences.family", fam.n, 12)
    crime = fam.headline[:, CRIME]
    improving = fam.improves[:, CRIME]
    offending = crime & (fam.crime_mode != CRIME_ASB)
    asb = crime & (fam.crime_mode != CRIME_OFFENCES)
    offender = fam.first_person + d.integers(0, fam.n_adults + fam.has_young)
    recent = _pick(offending, d.integers(1, 4))
    older = _pick(offending & d.below(0.3), np.ones(fam.n, np.int64))
    incidents = _pick(asb, d.integers(1, 5))
    interventions = _pick(asb & d.below(0.4), np.ones(fam.n, np.int64))
    on_attachment = d.below(0.08)
    settling = _pick(crime & improving & d.below(0.3), np.ones(fam.n, np.int64))
    gap = 180.0 / np.maximum(recent + incidents, 1) * d.uniform(0.6, 1.4)
    continuing = _pick(
        crime & ~improving, np.clip((HORIZON - fam.ref) // gap, 0, 100).astype(np.int64)
    )
    noise = _pick(~crime & d.below(0.12), d.integers(1, 3))
    ref = fam.ref
    offence_or_caution = np.array([OFFENCE["offence"], OFFENCE["caution"]], dtype=np.int64)
    parts: list[Rows] = []

    f, r = _expand(recent)  # in the 6 months up to A; sometimes on A itself
    e = streams.draws("offences.recent", f.size, 2)
    date = np.where(on_attachment[f] & (r == 0), ref[f], ref[f] - e.integers(0, 176))
    parts.append(_event(offender[f], date, offence_or_caution[e.choice((0.7, 0.3))]))

    f, r = _expand(older)  # 6-12 months before A
    e = streams.draws("offences.older", f.size, 2)
    date = ref[f] - e.integers(185, 335)
    parts.append(_event(offender[f], date, offence_or_caution[e.choice((0.7, 0.3))]))

    for name, counts, asb_code in (
        ("offences.asb", incidents, OFFENCE["asb_incident"]),
        ("offences.intervention", interventions, OFFENCE["asb_intervention"]),
    ):
        f, r = _expand(counts)
        e = streams.draws(name, f.size, 1)
        date = np.where(on_attachment[f] & (r == 0), ref[f], ref[f] - e.integers(0, 176))
        parts.append(_event(offender[f], date, asb_code))

    f, r = _expand(settling)  # one last event before things settle down
    e = streams.draws("offences.settling", f.size, 1)
    date = ref[f] + 1 + (e.u() * (fam.settle[f] - ref[f])).astype(np.int64)
    kind = _pick(offending[f], OFFENCE["offence"], OFFENCE["asb_incident"])
    parts.append(_event(offender[f], date, kind))

    f, r = _expand(continuing)  # no progress: the same again, on and on
    e = streams.draws("offences.continuing", f.size, 4)
    date = ref[f] + 1 + (gap[f] * (r + e.u())).astype(np.int64)
    any_kind = e.choice((0.35, 0.15, 0.40, 0.10))
    off_kind = offence_or_caution[e.choice((0.7, 0.3))]
    asb_kind = np.where(e.below(0.85), OFFENCE["asb_incident"], OFFENCE["asb_intervention"])
    mode = fam.crime_mode[f]
    kind = np.select([mode == CRIME_BOTH, mode == CRIME_OFFENCES], [any_kind, off_kind], asb_kind)
    parts.append(_event(offender[f], date, kind))

    f, r = _expand(noise)  # other families: old history, or trouble after A
    e = streams.draws("offences.noise", f.size, 4)
    date = np.where(e.below(0.5), ref[f] - e.integers(400, 1200), ref[f] + e.integers(1, 900))
    parts.append(_event(offender[f], date, e.choice((0.4, 0.2, 0.35, 0.05))))

    rows = _concat(parts)
    rows = _keep(rows, rows["date"] <= HORIZON)
    # A source reference such as "16/123456", derived from the row itself.
    number = (
        (rows["person_id"] + person_offset) * 7919 + rows["date"] * 104_729 + rows["kind"]
    ) % 999_983
    reference = np.where(number % 25 == 0, -1, (_year(rows["date"]) % 100) * 1_000_000 + number)
    return _sort_rows(
        {
            "person_id": rows["person_id"],
            "occurred_on": rows["date"],
            "kind": rows["kind"],
            "reference": reference.astype(np.int64),
        }
    )


def _attendance_rows(streams: _Streams, fam: _Families, ppl: _People) -> Rows:
    """One row per child per term of school age, up to the horizon."""
    kids = np.flatnonzero(ppl.role_child)
    offset = ppl.school_offset[kids]
    starts = TERM_START[None, :] + offset[:, None]
    ends = TERM_END[None, :] + offset[:, None]
    age = starts - ppl.birth[kids][:, None]
    until = np.minimum(ppl.attendance_until[kids], HORIZON)
    keep = (age >= SCHOOL_FROM) & (age < SCHOOL_TO) & (ends <= until[:, None])
    ci, ti = np.nonzero(keep)
    d = streams.draws("attendance", ci.size, 4)
    person = kids[ci]
    f = ppl.family[person]
    ref = fam.ref[f]
    start = starts[ci, ti]
    end = ends[ci, ti]
    first_post = np.searchsorted(TERM_START, fam.ref[ppl.family[kids]] - offset, side="left")
    post_rank = ti - first_post[ci]
    post = post_rank >= 0

    absentee = ppl.edu_child[person] & (fam.edu_mode[f] != EDU_EXCLUSIONS)
    improving = fam.improves[f, EDUCATION]
    r0 = ppl.r0[person]
    r1 = ppl.r1[person]
    possible = d.integers(120, 141)
    noise = d.uniform(0.8, 1.2)
    stuck = d.uniform(0.85, 1.15)
    zero = d.below(0.006)
    rate = np.select(
        [
            absentee & ~post & (end > ref - 730),
            absentee & ~post,
            absentee & post & improving & (post_rank == 0),
            absentee & post & improving,
            absentee & post,
        ],
        [r1, (r0 + r1) / 2, np.full(r0.shape, 0.10), r0 * 0.8, r1 * stuck],
        r0,
    )
    unauthorised = np.minimum(possible, np.rint(rate * possible * noise).astype(np.int64))
    exact = absentee & ppl.exact10[person] & ~post & (end > ref - 365)
    possible = np.where(exact, 130, np.where(zero, 0, possible))
    unauthorised = np.where(exact, 13, np.where(zero, 0, unauthorised))
    return {
        "person_id": person,
        "term_start": start,
        "term_end": end,
        "possible_sessions": possible.astype(np.int64),
        "unauthorised_sessions": unauthorised.astype(np.int64),
    }


def _exclusions_rows(streams: _Streams, fam: _Families, ppl: _People) -> Rows:
    d = streams.draws("exclusions.child", ppl.n, 12)
    f = ppl.family
    ref = fam.ref[f]
    excluded = ppl.edu_child & (fam.edu_mode[f] != EDU_ABSENCE)
    improving = fam.improves[f, EDUCATION]
    permanent_variant = d.below(0.25)
    fixed = _pick(excluded, np.where(permanent_variant, d.integers(0, 3), d.integers(3, 6)))
    permanent = _pick(excluded & permanent_variant, np.ones(ppl.n, np.int64))
    on_attachment = d.below(0.1)
    settling = _pick(excluded & improving & d.below(0.3), np.ones(ppl.n, np.int64))
    gap = d.uniform(40, 90)
    leaves = ppl.birth + SCHOOL_TO
    continuing = _pick(
        excluded & ~improving,
        np.clip((np.minimum(HORIZON, leaves) - ref) // gap, 0, 30).astype(np.int64),
    )
    late_permanent = _pick(excluded & ~improving & d.below(0.12), np.ones(ppl.n, np.int64))
    school_age = ppl.role_child & (ref - ppl.birth >= 7 * YEAR)
    noise = _pick(~excluded & school_age & d.below(0.04), d.integers(1, 3))
    fixed_term, perm = EXCLUSION["fixed_term"], EXCLUSION["permanent"]
    parts: list[Rows] = []

    p, r = _expand(fixed)
    e = streams.draws("exclusions.fixed", p.size, 1)
    date = np.where(on_attachment[p] & (r == 0), ref[p], ref[p] - e.integers(0, 331))
    parts.append(_event(p, date, fixed_term))
    p, r = _expand(permanent)
    e = streams.draws("exclusions.permanent", p.size, 1)
    parts.append(_event(p, ref[p] - e.integers(0, 331), perm))
    p, r = _expand(settling)
    e = streams.draws("exclusions.settling", p.size, 1)
    parts.append(_event(p, ref[p] + e.integers(30, 331), fixed_term))
    p, r = _expand(continuing)
    e = streams.draws("exclusions.continuing", p.size, 1)
    parts.append(_event(p, ref[p] + 1 + (gap[p] * (r + e.u())).astype(np.int64), fixed_term))
    p, r = _expand(late_permanent)
    e = streams.draws("exclusions.late_permanent", p.size, 1)
    parts.append(_event(p, ref[p] + e.integers(30, 401), perm))
    p, r = _expand(noise)  # one or two, never three in a year
    e = streams.draws("exclusions.noise", p.size, 1)
    parts.append(_event(p, ref[p] + e.integers(-700, HORIZON - ref[p] + 1), fixed_term))

    rows = _concat(parts)
    age = rows["date"] - ppl.birth[rows["person_id"]]
    rows = _keep(rows, (rows["date"] <= HORIZON) & (age >= SCHOOL_FROM) & (age < SCHOOL_TO))
    return _sort_rows(
        {"person_id": rows["person_id"], "excluded_on": rows["date"], "kind": rows["kind"]}
    )


def _spell(person: IntArray, code: IntArray | int, start: IntArray, end: IntArray) -> Rows:
    codes = np.broadcast_to(np.asarray(code, dtype=np.int64), person.shape)
    return {"person_id": person, "code": codes, "started_on": start, "ended_on": end}


def _social_care_rows(streams: _Streams, fam: _Families, ppl: _People) -> Rows:
    d = streams.draws("social_care.family", fam.n, 28)
    ref = fam.ref
    has_child = fam.n_children > 0
    first_child = fam.first_person + fam.n_adults + fam.has_young

    def a_child() -> IntArray:
        return first_child + d.integers(0, np.maximum(fam.n_children, 1))

    care = fam.headline[:, CARE]
    child = a_child()
    birth = ppl.birth[np.minimum(child, ppl.n - 1)]
    start = np.maximum(ref - d.integers(30, 531), birth)
    episode = _pick(fam.care_cp, EPISODE["cp"], EPISODE["cin"])
    prior_start = start - d.integers(60, 301)
    step_down_end = _pick(d.below(0.3), OPEN, fam.care_end + d.integers(60, 301))
    referral = fam.care_end + d.integers(30, 151)  # no progress: referred again
    re_referred = care & ~fam.improves[:, CARE] & (fam.care_end < OPEN)
    parts = [
        _keep(_spell(child, episode, start, fam.care_end), care),
        _keep(_spell(child, EPISODE["cin"], prior_start, start - 1), care & fam.care_prior_cin),
        _keep(
            _spell(child, EPISODE["early_help"], fam.care_end + 1, step_down_end),
            fam.improves[:, CARE] & fam.care_step_down,
        ),
        _keep(_spell(child, EPISODE["cp"], referral, np.full(fam.n, OPEN)), re_referred),
    ]
    # Other families: early help, a looked-after spell, or a long-closed episode.
    child = a_child()
    eh_start = ref + d.integers(-400, 401)
    eh_end = _pick(d.below(0.2), OPEN, eh_start + d.integers(60, 361))
    parts.append(
        _keep(_spell(child, EPISODE["early_help"], eh_start, eh_end), has_child & d.below(0.15))
    )
    child = a_child()
    lac_start = ref + d.integers(-300, 601)
    lac_end = _pick(d.below(0.5), OPEN, lac_start + d.integers(100, 601))
    parts.append(
        _keep(_spell(child, EPISODE["lac"], lac_start, lac_end), has_child & d.below(0.03))
    )
    child = a_child()
    old_start = ref - d.integers(700, 1201)
    old_end = old_start + d.integers(30, 201)
    old = ~care & has_child & d.below(0.05)
    parts.append(_keep(_spell(child, EPISODE["cin"], old_start, old_end), old))

    rows = _concat(parts)
    ok = (
        (rows["started_on"] <= HORIZON)
        & (rows["started_on"] >= ppl.birth[np.minimum(rows["person_id"], ppl.n - 1)])
        & (rows["ended_on"] >= rows["started_on"])
    )
    rows = _keep(rows, ok)
    return _sort_rows(
        {
            "person_id": rows["person_id"],
            "episode": rows["code"],
            "started_on": rows["started_on"],
            "ended_on": rows["ended_on"],
        }
    )


def _other_group(code: IntArray) -> IntArray:
    return np.where(np.isin(code, _LONG_GROUP), BENEFIT["esa"], BENEFIT["jsa"]).astype(np.int64)


def _work_rows(streams: _Streams, fam: _Families, ppl: _People) -> tuple[Rows, Rows]:
    """Benefit and employment spells, adult by adult."""
    ref = fam.ref
    improving = fam.improves[:, WORK]
    benefits: list[Rows] = []
    jobs: list[Rows] = []
    for slot in range(2):
        d = streams.draws(f"work.adult{slot}", fam.n, 20)
        exists = fam.n_adults > slot
        person = fam.first_person + slot
        birth = ppl.birth[np.minimum(person, ppl.n - 1)]
        on = fam.on_benefit[:, slot]
        benefit = fam.benefit[:, slot]
        job = fam.job[:, slot]
        variant = fam.end_variant[:, slot]
        short = fam.short_job[:, slot]
        start = np.maximum(ref - d.integers(60, 1461), birth + 6575)
        end_if_improving = np.select(
            [variant == 0, variant == 1], [job - 1, job], job - d.integers(2, 31)
        )
        end = np.where(improving, end_if_improving, np.where(short, job - 1, OPEN))
        short_end = job + d.integers(30, 80)  # under 12 full weeks: never CE
        benefits.append(_keep(_spell(person, benefit, start, end), on))
        benefits.append(
            _keep(
                _spell(person, benefit, short_end + 1, np.full(fam.n, OPEN)),
                on & ~improving & short,
            )
        )
        double_start = ref - d.integers(30, 331)
        double = on & fam.double_group[:, slot]
        benefits.append(_keep(_spell(person, _other_group(benefit), double_start, end), double))

        steady = on & improving & fam.continuous[:, slot]
        split = steady & fam.gap_day[:, slot]
        gap_at = fam.gap_at[:, slot]
        job_end = fam.job_end[:, slot]
        hours = _hours(d.u())
        hours2 = _hours(d.u())
        jobs.append(_keep(_job(person, job, np.where(split, gap_at - 1, job_end), hours), steady))
        jobs.append(_keep(_job(person, gap_at + 1, job_end, hours2), split))
        next_job = job_end + d.integers(1, 15)  # a change of job, not a return to benefit
        open_end = np.full(fam.n, OPEN)
        jobs.append(
            _keep(_job(person, next_job, open_end, _hours(d.u())), steady & (job_end < OPEN))
        )
        jobs.append(_keep(_job(person, job, short_end, hours), on & ~improving & short))

        # Short contracts with gaps: off benefit and in work, but not continuously.
        contracts = _pick(on & improving & ~fam.continuous[:, slot], d.integers(2, 5))
        f, r = _expand(contracts)
        e = streams.draws(f"work.contracts{slot}", f.size, 3)
        length = e.integers(30, 81)
        step = length + e.integers(5, 21)
        before = np.cumsum(step) - step
        first = np.cumsum(contracts) - contracts
        c_start = job[f] + before - before[first[f]]
        last = r == contracts[f] - 1
        c_end = np.where(last, OPEN, c_start + length - 1)
        jobs.append(_job(person[f], c_start, c_end, _hours(e.u())))

        # Everyone else: old benefit history, and work for some.
        others = exists & ~on
        old_start = np.maximum(ref - d.integers(500, 2001), birth + 6575)
        old_end = old_start + d.integers(30, 231)
        old_benefit = _BENEFIT_ORDER[d.choice(_BENEFIT_SHARES)]
        old_benefit = np.where(
            (old_benefit == BENEFIT["uc_not_working"]) & (old_start < UC_FROM),
            BENEFIT["jsa"],
            old_benefit,
        )
        old = others & d.below(0.2) & (old_end < ref)
        benefits.append(_keep(_spell(person, old_benefit, old_start, old_end), old))
        work_start = np.maximum(ref - d.integers(100, 2101), birth + SCHOOL_TO)
        work_end = _pick(
            d.below(0.6), OPEN, np.maximum(work_start + 30, ref + d.integers(-30, 871))
        )
        working = others & d.below(0.4) & (work_start < ref)
        jobs.append(_keep(_job(person, work_start, work_end, _hours(d.u())), working))

    b = _concat(benefits)
    b = _keep(b, (b["started_on"] <= HORIZON) & (b["ended_on"] >= b["started_on"]))
    j = _concat(jobs)
    j = _keep(j, (j["started_on"] <= HORIZON) & (j["ended_on"] >= j["started_on"]))
    benefit_rows = _sort_rows(
        {
            "person_id": b["person_id"],
            "benefit": b["code"],
            "started_on": b["started_on"],
            "ended_on": b["ended_on"],
        }
    )
    return benefit_rows, _sort_rows(j)


def _job(person: IntArray, start: IntArray, end: IntArray, hours: IntArray) -> Rows:
    return {"person_id": person, "started_on": start, "ended_on": end, "hours_per_week": hours}


def _neet_rows(streams: _Streams, fam: _Families, ppl: _People) -> Rows:
    d = streams.draws("neet.family", fam.n, 8)
    ref = fam.ref
    young = fam.has_young == 1
    identified = young & fam.work_neet
    person = fam.first_person + fam.n_adults
    sixteen = _add_months(ppl.birth[np.minimum(person, ppl.n - 1)], 192)
    start = np.clip(ref - d.integers(30, 631), sixteen, ref)
    restart = fam.neet_end + d.integers(30, 91)
    old_start = ref - d.integers(400, 701)
    old_end = old_start + d.integers(30, 231)
    parts = [
        _keep(_spell(person, 0, start, fam.neet_end), identified),
        _keep(
            _spell(person, 0, restart, np.full(fam.n, OPEN)),
            identified & ~fam.improves[:, WORK] & (fam.neet_end < OPEN),
        ),
        _keep(
            _spell(person, 0, old_start, old_end),
            young & ~identified & d.below(0.3) & (old_start >= sixteen),
        ),
    ]
    rows = _concat(parts)
    rows = _keep(rows, rows["started_on"] <= HORIZON)
    return _sort_rows(
        {
            "person_id": rows["person_id"],
            "started_on": rows["started_on"],
            "ended_on": rows["ended_on"],
        }
    )


def _domestic_abuse_rows(streams: _Streams, fam: _Families) -> Rows:
    d = streams.draws("domestic_abuse.family", fam.n, 8)
    ref = fam.ref
    abuse = fam.headline[:, ABUSE_H]
    improving = fam.improves[:, ABUSE_H]
    baseline = _pick(abuse, d.integers(1, 5))
    on_attachment = d.below(0.05)
    settling = _pick(abuse & improving & d.below(0.3), np.ones(fam.n, np.int64))
    gap = d.uniform(45, 200)
    continuing = _pick(abuse & ~improving, np.clip((HORIZON - ref) // gap, 0, 100).astype(np.int64))
    noise = _pick(~abuse & d.below(0.08), np.ones(fam.n, np.int64))
    victim_slot = _pick((fam.n_adults == 2) & d.below(0.15), np.ones(fam.n, np.int64))

    owners: list[IntArray] = []
    dates: list[IntArray] = []
    f, r = _expand(baseline)
    e = streams.draws("domestic_abuse.baseline", f.size, 1)
    owners.append(f)
    dates.append(np.where(on_attachment[f] & (r == 0), ref[f], ref[f] - e.integers(0, 331)))
    f, r = _expand(settling)
    e = streams.draws("domestic_abuse.settling", f.size, 1)
    owners.append(f)
    dates.append(ref[f] + 1 + (e.u() * (fam.settle[f] - ref[f])).astype(np.int64))
    f, r = _expand(continuing)
    e = streams.draws("domestic_abuse.continuing", f.size, 1)
    owners.append(f)
    dates.append(ref[f] + 1 + (gap[f] * (r + e.u())).astype(np.int64))
    f, r = _expand(noise)
    e = streams.draws("domestic_abuse.noise", f.size, 1)
    owners.append(f)
    dates.append(ref[f] - e.integers(400, 1400))

    # Every (family, date) event has a victim, often a perpetrator, sometimes a child.
    f = np.concatenate(owners)
    date = np.concatenate(dates)
    order = np.lexsort((date, f))
    f, date = f[order], date[order]
    keep = date <= HORIZON
    f, date = f[keep], date[keep]
    e = streams.draws("domestic_abuse.event", f.size, 4)
    kind = np.array([ABUSE["incident"], ABUSE["crime"], ABUSE["marac_referral"]])[
        e.choice((0.7, 0.2, 0.1))
    ]
    perp_u, other_u, role_u = e.u(), e.u(), e.u()
    victim = fam.first_person[f] + victim_slot[f]
    perpetrator = fam.first_person[f] + 1 - victim_slot[f]
    child = fam.first_person[f] + fam.n_adults[f] + fam.has_young[f]
    rows = _concat(
        [
            {"person_id": victim, "date": date, "kind": kind,
             "role": _pick(role_u < 0.04, -1, ABUSE_ROLE["victim"])},
            _keep(
                {"person_id": perpetrator, "date": date, "kind": kind,
                 "role": np.full(f.size, ABUSE_ROLE["perpetrator"], np.int64)},
                (fam.n_adults[f] == 2) & (perp_u < 0.6),
            ),
            _keep(
                {"person_id": child, "date": date, "kind": kind,
                 "role": np.full(f.size, ABUSE_ROLE["other"], np.int64)},
                (fam.n_children[f] > 0) & (other_u < 0.25),
            ),
        ]
    )  # fmt: skip
    return _sort_rows(
        {
            "person_id": rows["person_id"],
            "occurred_on": rows["date"],
            "kind": rows["kind"],
            "role": rows["role"],
        }
    )


def _health_rows(streams: _Streams, fam: _Families) -> Rows:
    d = streams.draws("health.family", fam.n, 6)
    person = fam.first_person + fam.health_person
    parts: list[Rows] = []
    for e in range(2):
        rows = _spell(
            person, fam.health_service[:, e], fam.health_start[:, e], fam.health_end[:, e]
        )
        rows["end_reason"] = fam.health_reason[:, e]
        parts.append(_keep(rows, fam.health_episodes > e))
    # Long-closed episodes in other families.
    old_start = fam.ref - d.integers(900, 1401)
    old_end = old_start + d.integers(60, 211)
    old = _spell(fam.first_person, d.choice((0.7, 0.3)), old_start, old_end)
    old["end_reason"] = d.choice((0.5, 0.3, 0.1, 0.1))
    parts.append(_keep(old, (fam.health_episodes == 0) & d.below(0.1)))
    rows = _concat(parts)
    rows = _keep(rows, rows["started_on"] <= HORIZON)
    return _sort_rows(
        {
            "person_id": rows["person_id"],
            "service": rows["code"],
            "started_on": rows["started_on"],
            "ended_on": rows["ended_on"],
            "end_reason": rows["end_reason"],
        }
    )


def _debt_rows(streams: _Streams, fam: _Families) -> Rows:
    """Two-monthly arrears snapshots per kind, from before A to the horizon."""
    d = streams.draws("debt.family", fam.n, 20)
    ref = fam.ref
    indicator = fam.work_debt
    improving = fam.improves[:, WORK]
    background = ~indicator & d.below(0.2)
    rent = d.below(np.where(indicator, 0.85, 0.6))
    council_tax = d.below(0.6)
    rent |= ~council_tax
    total = np.where(
        indicator,
        _pick(d.below(0.06), np.full(fam.n, 100_000, np.int64), d.integers(100_000, 500_001)),
        _pick(d.below(0.06), np.full(fam.n, 99_999, np.int64), d.integers(5_000, 95_001)),
    )
    split = np.where(rent & council_tax, d.uniform(0.45, 0.85), np.where(rent, 1.0, 0.0))
    rent_base = (total * split).astype(np.int64)
    base = np.column_stack([rent_base, total - rent_base])
    present = np.column_stack([rent, council_tax]) & (indicator | background)[:, None]
    v = d.u()
    end_fraction = np.select([v < 0.1, v < 0.2], [0.5, 0.0], 0.1 + v * 0.35)
    payoff = d.integers(90, 181)
    growth = d.uniform(-0.1, 0.4) / 365.0
    first = ref - d.integers(150, 211)
    stops = d.below(0.08)
    stopping_kind = np.where(rent & council_tax, d.below(0.5), np.where(rent, 0, 1))
    cutoff = ref + d.integers(30, 431)

    parts: list[Rows] = []
    for k, kind in enumerate((DEBT["rent_arrears"], DEBT["council_tax_arrears"])):
        until = np.where(stops & (stopping_kind == k), np.minimum(cutoff, HORIZON), HORIZON)
        counts = _pick(present[:, k], (until - first) // 61 + 1)
        f, r = _expand(counts)
        t = first[f] + 61 * r
        amount_base = base[f, k]
        since = (t - ref[f]).astype(np.float64)
        ramp = 0.7 + 0.3 * (t - first[f]) / np.maximum(ref[f] - first[f], 1)
        before = np.where(t > ref[f] - 61, amount_base, (amount_base * ramp).astype(np.int64))
        falling = (amount_base * np.maximum(end_fraction[f], 1 - since / payoff[f])).astype(
            np.int64
        )
        drifting = np.maximum(np.rint(amount_base * (1 + growth[f] * since)), 0).astype(np.int64)
        after = np.where(indicator[f] & improving[f], falling, drifting)
        amount = np.where(t <= ref[f], before, after)
        parts.append(
            {
                "family_id": f,
                "recorded_on": t,
                "kind": np.full(f.size, kind, np.int64),
                "amount": amount,
            }
        )
    return _sort_rows(_concat(parts))


def _claims_rows(fam: _Families) -> Rows:
    f = np.flatnonzero(fam.claimed).astype(np.int64)
    return {
        "family_id": f,
        "claimed_on": fam.claimed_on[f],
        "claim_window": fam.claimed_on[f],
        "basis": fam.basis[f],
    }


# ----------------------------------------------------------------------------- output


def _lookup(values: Sequence[str]) -> TextFormat:
    def fmt(e: pl.Expr) -> pl.Expr:
        return e.replace_strict(
            list(range(len(values))), list(values), default=None, return_dtype=pl.String
        )

    return fmt


def _reference(e: pl.Expr) -> pl.Expr:
    return (
        pl.when(e >= 0)
        .then(
            pl.format(
                "{}/{}",
                (e // 1_000_000).cast(pl.String).str.zfill(2),
                (e % 1_000_000).cast(pl.String).str.zfill(6),
            )
        )
        .otherwise(None)
    )


def _claim_window(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Int32).cast(pl.Date).dt.strftime("%Y-%m")


_TEXT: dict[tuple[str, str], TextFormat] = {
    ("families", "locality"): _lookup(LOCALITIES),
    ("families", "lead_worker"): _lookup(LEAD_WORKERS),
    ("people", "given_name"): _lookup(GIVEN_NAMES),
    ("people", "family_name"): _lookup(FAMILY_NAMES),
    ("offences", "reference"): _reference,
    ("claims", "claim_window"): _claim_window,
}


def _column_expr(tbl: Table, col: Column, first_family: int, first_person: int) -> pl.Expr:
    e = pl.col(col.name)
    if col.name == "family_id":
        out = (e + (first_family + 1)).cast(pl.String).str.zfill(7)
    elif col.name == "person_id":
        out = pl.format("P{}", (e + (first_person + 1)).cast(pl.String).str.zfill(8))
    elif col.choices is not None:
        out = _lookup(col.choices)(e)
    elif col.type == "date":
        out = pl.when(e <= HORIZON).then(e).otherwise(None).cast(pl.Int32).cast(pl.Date)
    elif col.type == "int":
        out = e.cast(pl.Int64)
    elif col.type == "decimal":
        pounds = (e // 100).cast(pl.String)
        pence = (e % 100).cast(pl.String).str.zfill(2)
        out = pl.when(e >= 0).then(pl.format("{}.{}", pounds, pence)).otherwise(None)
    else:
        out = _TEXT[(tbl.name, col.name)](e)
    return out.alias(col.name)


def _frame(tbl: Table, rows: Rows, first_family: int, first_person: int) -> pl.DataFrame:
    """Turn a table's integer-coded rows into its contract columns, in order."""
    if tuple(rows) != tbl.column_names:
        raise RuntimeError(f"{tbl.name}: built {tuple(rows)}, contract {tbl.column_names}")
    for c in tbl.columns:
        if c.type == "date" and c.required and rows[c.name].size and rows[c.name].max() > HORIZON:
            raise RuntimeError(f"{tbl.name}.{c.name}: a required date after the horizon")
    raw = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Int64) for k, v in rows.items()})
    return raw.select([_column_expr(tbl, c, first_family, first_person) for c in tbl.columns])


def _schema(tbl: Table, fmt: Literal["csv", "parquet"]) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    for c in tbl.columns:
        if c.type == "date":
            schema[c.name] = pl.Date()
        elif c.type == "int":
            schema[c.name] = pl.Int64()
        elif c.type == "decimal" and fmt == "parquet":
            precision, scale = c.decimal or (12, 2)
            schema[c.name] = pl.Decimal(precision, scale)
        else:
            schema[c.name] = pl.String()
    return schema


class _CsvSink:
    def __init__(self, out_dir: Path, tbl: Table) -> None:
        self.path = out_dir / f"{tbl.name}.csv"
        self.rows = 0
        self._file: IO[bytes] = self.path.open("wb")
        pl.DataFrame(schema=_schema(tbl, "csv")).write_csv(self._file, include_header=True)

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            frame.write_csv(self._file, include_header=False)
            self.rows += frame.height

    def close(self) -> Path:
        self._file.close()
        return self.path

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class _ParquetSink:
    """Each chunk goes to a part file; ``close`` streams the parts into one file."""

    def __init__(self, out_dir: Path, tbl: Table) -> None:
        self.path = out_dir / f"{tbl.name}.parquet"
        self.rows = 0
        self._schema = _schema(tbl, "parquet")
        self._parts_dir = out_dir / f".{tbl.name}.parts"
        shutil.rmtree(self._parts_dir, ignore_errors=True)
        self._parts_dir.mkdir()
        self._parts: list[Path] = []

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            part = self._parts_dir / f"part-{len(self._parts):05d}.parquet"
            frame.cast(self._schema).write_parquet(part)  # type: ignore[arg-type]
            self._parts.append(part)
            self.rows += frame.height

    def close(self) -> Path:
        if self._parts:
            pl.scan_parquet(self._parts).sink_parquet(self.path)
        else:
            pl.DataFrame(schema=self._schema).write_parquet(self.path)
        shutil.rmtree(self._parts_dir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._parts_dir, ignore_errors=True)


def _chunk_rows(
    streams: _Streams, fam: _Families, ppl: _People, first_person: int
) -> dict[str, Rows]:
    benefits, employment = _work_rows(streams, fam, ppl)
    return {
        "families": _families_rows(fam),
        "people": _people_rows(ppl),
        "offences": _offences_rows(streams, fam, first_person),
        "attendance": _attendance_rows(streams, fam, ppl),
        "exclusions": _exclusions_rows(streams, fam, ppl),
        "social_care": _social_care_rows(streams, fam, ppl),
        "benefits": benefits,
        "employment": employment,
        "neet": _neet_rows(streams, fam, ppl),
        "domestic_abuse": _domestic_abuse_rows(streams, fam),
        "health": _health_rows(streams, fam),
        "debt": _debt_rows(streams, fam),
        "claims": _claims_rows(fam),
    }


def synthesise(
    out_dir: Path,
    families: int = 3000,
    seed: int = 2018,
    fmt: Literal["csv", "parquet"] = "csv",
    progress: Callable[[int], None] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SynthSummary:
    """Write a synthetic council of ``families`` families into ``out_dir``.

    One ``<table>.csv`` (or ``.parquet``) per contract table. The same
    (families, seed, fmt) always gives byte-identical files, whatever
    ``chunk_size``. ``progress(n)`` is called after each chunk of ``n``
    families.
    """
    if families < 0:
        raise ValueError("families must not be negative")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams = _Streams(seed)
    sinks: dict[str, _CsvSink | _ParquetSink] = {}
    try:
        for t in TABLES:
            sinks[t.name] = _CsvSink(out_dir, t) if fmt == "csv" else _ParquetSink(out_dir, t)
        person_offset = 0
        for first in range(0, families, chunk_size):
            n = min(chunk_size, families - first)
            streams.begin_chunk()
            fam = _draw_families(streams, n)
            ppl = _draw_people(streams, fam)
            for name, rows in _chunk_rows(streams, fam, ppl, person_offset).items():
                sinks[name].write(_frame(table(name), rows, first, person_offset))
            person_offset += ppl.n
            if progress is not None:
                progress(n)
        files = [sinks[t.name].close() for t in TABLES]
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return SynthSummary(
        families=families, rows={t.name: sinks[t.name].rows for t in TABLES}, files=files
    )
