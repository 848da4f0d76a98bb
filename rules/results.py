"""Evaluation results with their evidence.

A :class:`Result` is the state of one criterion, rule, indicator or outcome,
with the figures compared (counts, rates, amounts, thresholds, windows), the
source rows behind it (table and ``row_no``) and the results it was combined
from. A :class:`FamilyResult` holds everything the engine decided about one
family at one evaluation date E.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from rules.states import State

__all__ = [
    "Basis",
    "FamilyResult",
    "Figure",
    "HeadlineResult",
    "IndicatorResult",
    "Result",
    "RowRef",
]

Figure = int | Decimal | date | str | None
Basis = Literal["ssp", "ce"]


@dataclass(frozen=True, order=True)
class RowRef:
    """A source row: the extract table and the row's 1-based file row number."""

    table: str
    row_no: int

    def __str__(self) -> str:
        return f"{self.table}#{self.row_no}"


@dataclass(frozen=True)
class Result:
    """The state of one criterion or rule, with its evidence.

    ``earliest`` is the first day a pending result could be met if nothing
    changes (None when unknown). ``flips_on`` is, for a criterion used in a
    guard step, the day its answer is expected to change (for example the day
    a snapshot stops being too early); it is not an earliest date.
    """

    state: State
    what: str
    earliest: date | None = None
    figures: Mapping[str, Figure] = field(default_factory=dict)
    rows: tuple[RowRef, ...] = ()
    parts: tuple[Result, ...] = ()
    person_id: str | None = None
    flips_on: date | None = None

    @property
    def met(self) -> bool:
        """Whether the state is ``met``."""
        return self.state == "met"

    def all_rows(self) -> tuple[RowRef, ...]:
        """Every source row behind this result and its parts, sorted, without repeats."""
        found: set[RowRef] = set(self.rows)
        for part in self.parts:
            found.update(part.all_rows())
        return tuple(sorted(found))

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Result]]:
        """Yield (depth, result) for this result and its parts, depth first."""
        yield depth, self
        for part in self.parts:
            yield from part.walk(depth + 1)

    def explain(self, indent: str = "  ") -> str:
        """A readable tree of states, figures, dates and rows."""
        return "\n".join(f"{indent * depth}{r.line()}" for depth, r in self.walk())

    def line(self) -> str:
        """This result alone, on one line: state, what, person, earliest date, figures, rows."""
        text = f"[{self.state}] {self.what}"
        if self.person_id:
            text += f" (person {self.person_id})"
        if self.earliest:
            text += f"; earliest {self.earliest.isoformat()}"
        if self.figures:
            text += "; " + ", ".join(f"{k}={_show(v)}" for k, v in self.figures.items())
        if self.rows:
            text += "; rows " + ", ".join(str(x) for x in self.rows)
        return text


def _show(value: Figure) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class IndicatorResult:
    """One indicator: its state at attachment, the people it identified, its own outcome."""

    headline: str
    code: str
    identification: Result
    people: tuple[str, ...] = ()
    outcome: Result | None = None

    @property
    def identified(self) -> bool:
        """Whether the indicator is met at attachment."""
        return self.identification.met


@dataclass(frozen=True)
class HeadlineResult:
    """One headline: identification (any over indicators) and its outcome at E if identified."""

    code: str
    identification: Result
    indicators: tuple[IndicatorResult, ...]
    outcome: Result | None = None

    @property
    def identified(self) -> bool:
        """Whether the headline was identified at attachment."""
        return self.identification.met

    def indicator(self, code: str) -> IndicatorResult:
        """The indicator called ``code``."""
        for i in self.indicators:
            if i.code == code:
                return i
        raise KeyError(code)


@dataclass(frozen=True)
class FamilyResult:
    """Everything decided about one family at E.

    ``claimed`` is True when the family was claimed before (the ``claims``
    table or a batch this system submitted), False when it was not, and None
    when that cannot be known because the ``claims`` table was never loaded.
    """

    family_id: str
    as_of: date
    attached_on: date | None
    attached: bool
    headlines: tuple[HeadlineResult, ...]
    eligibility: Result
    ssp: Result
    ce: Result
    claimed: bool | None
    claimable: bool
    basis: Basis | None
    locality: str | None = None

    @property
    def eligible(self) -> bool:
        """Attached, with at least the plan's minimum number of headlines identified."""
        return self.eligibility.met

    @property
    def identified_headlines(self) -> tuple[str, ...]:
        """Codes of the headlines identified at attachment, in plan order."""
        return tuple(h.code for h in self.headlines if h.identified)

    @property
    def insufficient_evidence(self) -> bool:
        """Eligible, not claimed, not claimable, and held back only by unknowns (SSP unknown)."""
        return (
            self.eligible
            and self.claimed is not True
            and not self.claimable
            and self.ssp.state == "unknown"
        )

    def headline(self, code: str) -> HeadlineResult:
        """The headline called ``code``."""
        for h in self.headlines:
            if h.code == code:
                return h
        raise KeyError(code)

    def results(self) -> dict[str, Result]:
        """Every result, flat, keyed by a dotted name.

        Keys: ``eligibility``, ``ssp``, ``ce``, ``<headline>``,
        ``<headline>.outcome``, ``<headline>.<indicator>`` and
        ``<headline>.<indicator>.outcome`` (an outcome only where it was judged).
        """
        out: dict[str, Result] = {"eligibility": self.eligibility, "ssp": self.ssp, "ce": self.ce}
        for h in self.headlines:
            out[h.code] = h.identification
            if h.outcome is not None:
                out[f"{h.code}.outcome"] = h.outcome
            for i in h.indicators:
                out[f"{h.code}.{i.code}"] = i.identification
                if i.outcome is not None:
                    out[f"{h.code}.{i.code}.outcome"] = i.outcome
        return out

    def states(self) -> dict[str, tuple[State, date | None]]:
        """Every state and earliest date, keyed as :meth:`results`; a date only for SSP, CE
        and outcomes (eligibility and identification are judged at A and have none). Used
        to compare evaluators."""
        return {
            k: (r.state, r.earliest if k in ("ssp", "ce") or k.endswith(".outcome") else None)
            for k, r in self.results().items()
        }

    def explain(self) -> str:
        """Why the family is or is not eligible and claimable, as a readable tree."""
        lines = [
            f"family {self.family_id} at E={self.as_of.isoformat()}, "
            f"A={self.attached_on.isoformat() if self.attached_on else 'none'}",
            f"claimable: {'yes (' + str(self.basis) + ')' if self.claimable else 'no'}; "
            f"claimed before: {_claimed(self.claimed)}",
            "eligibility:",
            _indent(self.eligibility.line()),
        ]
        for h in self.headlines:
            lines.append(f"headline {h.code}:")
            lines.append(_indent(h.identification.explain()))
            if h.outcome is not None:
                lines.append("  outcome at E:")
                lines.append(_indent(h.outcome.explain(), 2))
        lines += ["SSP:", _indent(self.ssp.explain()), "CE:", _indent(self.ce.explain())]
        return "\n".join(lines)


def _claimed(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown (claims table never loaded)"}[value]


def _indent(text: str, levels: int = 1) -> str:
    pad = "  " * levels
    return "\n".join(pad + line for line in text.splitlines())
