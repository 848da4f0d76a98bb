"""The plan language: an Outcome Plan as validated data.

A plan is a YAML file. Its shape is checked by the pydantic models below; its
meaning (tables, columns, codes, anchors, scopes) is checked by
:func:`check_plan`, which names the key path of every problem. The loader in
``rules.loader`` turns both kinds of problem into a :class:`~rules.loader.PlanError`.

The language is a small set of composable primitives over the source tables.
A *rule* (an indicator, an outcome, continuous employment) is evaluated for a
*subject* -- the whole family or one person -- at an evaluation date E for a
family attached on A. It runs its ``steps`` in order (wait for a window to
elapse, require tables, guards that settle the state early) and then its
``test``, a tree of criteria:

=========================  ====================================================
``all`` / ``any`` / ``not``  combine states (see ``rules.states``)
``each_person``              the test for each family member with a role
``count``                    events in a window, compared with a threshold
``reduction``                percentage fall in events between two windows
``spell``                    a spell covering a date or any day of a window
``spell_open``               a spell open at E that started at least N before E
``spell_completed``          a spell that ended with a given reason at least N
                             before E, with no later spell
``term_rate``                a rate summed over the most recent terms
``terms_recorded``           at least K terms recorded in a selection
``age``                      age in whole years on A or E
``snapshot_total``           sum of the latest snapshot of each kind in a window
``snapshot_vs_baseline``     that sum now against the same sum at A
``snapshot_kinds_missing``   a kind in the baseline with no snapshot now
``snapshot_dated_before``    a snapshot summed now that predates the sustain date
``weeks_in_work``            K weeks in work out of M consecutive ISO weeks
=========================  ====================================================

Every threshold, window, code and list lives in the plan file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rules.dates import Period
from rules.sources import TABLES
from rules.states import State

__all__ = [
    "Age",
    "Anchor",
    "Count",
    "Criterion",
    "EachPerson",
    "Eligibility",
    "GuardStep",
    "Headline",
    "Indicator",
    "NeedsStep",
    "Outcome",
    "PeopleScope",
    "PeriodSpec",
    "Plan",
    "Reduction",
    "Requirement",
    "Role",
    "Rule",
    "Scope",
    "SinceAttachment",
    "SnapshotDatedBefore",
    "SnapshotKindsMissing",
    "SnapshotTotal",
    "SnapshotVsBaseline",
    "Spell",
    "SpellCompleted",
    "SpellOpen",
    "SpellSource",
    "State",
    "Step",
    "TermRate",
    "TermSelection",
    "TermsRecorded",
    "WaitStep",
    "WeeksInWork",
    "Window",
    "check_plan",
    "describe_codes",
    "iter_criteria",
    "node_spec",
    "primitive_name",
    "tables_read",
]

Anchor = Literal["A", "E"]
Role = Literal["adult", "child", "member"]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


def _decimal(value: Any) -> Any:
    # YAML reads 33.5 as a float; its shortest repr is the text the author wrote.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


Num = Annotated[Decimal, BeforeValidator(_decimal)]
Percent = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=100)]
Where = dict[str, list[str]]


def describe_codes(where: Mapping[str, Sequence[str]] | None) -> str:
    """A row filter in plain English, as it follows a table's name: " (kind ASB, offence)"."""
    if not where:
        return ""
    return " (" + "; ".join(f"{c} {', '.join(v)}" for c, v in where.items()) + ")"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------------------
# periods, windows and term selections


class PeriodSpec(_Model):
    """A length of time: ``months: N`` or ``days: N`` (exactly one)."""

    months: int | None = Field(default=None, gt=0)
    days: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_unit(self) -> PeriodSpec:
        if (self.months is None) == (self.days is None):
            raise PydanticCustomError("period", "give exactly one of 'months' or 'days'")
        return self

    @property
    def period(self) -> Period:
        """The period as date arithmetic understands it."""
        return Period(months=self.months or 0, days=self.days or 0)


class Window(PeriodSpec):
    """ "The N months (or days) up to the anchor": (anchor - N, anchor]."""

    anchor: Anchor

    def describe(self) -> str:
        """Plain English."""
        return f"the {self.period} up to {self.anchor}"


class SinceAttachment(_Model):
    """The days after attachment up to E: (A, E]."""

    after: Literal["A"]

    def describe(self) -> str:
        """Plain English."""
        return "after A (up to E)"


class TermSelection(_Model):
    """Terms of one child, most recent first (by term_end, then term_start).

    Terms with 0 possible sessions are always ignored, and so are terms that
    end after E. ``window`` keeps terms whose term_end falls in it;
    ``start_on_or_after: A`` keeps terms that start on or after A; ``last``
    keeps the N most recent of those.
    """

    last: int | None = Field(default=None, gt=0)
    window: Window | None = None
    start_on_or_after: Literal["A"] | None = None

    def describe(self) -> str:
        """Plain English."""
        parts = [f"the {self.last} most recent terms" if self.last else "terms"]
        if self.start_on_or_after:
            parts.append("that start on or after A and end on or before E")
        if self.window:
            parts.append(f"ending in {self.window.describe()}")
        return " ".join(parts)


class InTerms(_Model):
    """Dates within selected terms (between a term's start and end, inclusive)."""

    in_terms: TermSelection

    def describe(self) -> str:
        """Plain English."""
        return f"within {self.in_terms.describe()}"


def _keyed_tag(names: dict[str, str]) -> Any:
    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            for key, name in names.items():
                if key in value:
                    return f"<{name}>"
            return None
        return f"<{type(value).__name__}>"

    return tag


EventWindow = Annotated[
    Annotated[Window, Tag("<Window>")]
    | Annotated[SinceAttachment, Tag("<SinceAttachment>")]
    | Annotated[InTerms, Tag("<InTerms>")],
    Discriminator(
        _keyed_tag({"anchor": "Window", "after": "SinceAttachment", "in_terms": "InTerms"}),
        custom_error_type="window",
        custom_error_message=(
            "a window is {anchor: A|E, months: N} or {anchor: A|E, days: N}, "
            "{after: A} or {in_terms: ...}"
        ),
    ),
]


# ---------------------------------------------------------------------------
# thresholds


class _Threshold(_Model):
    at_least: Num | None = None
    at_most: Num | None = None
    fewer_than: Num | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> _Threshold:
        given = [n for n in ("at_least", "at_most", "fewer_than") if getattr(self, n) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "threshold", "give exactly one of 'at_least', 'at_most' or 'fewer_than'"
            )
        return self

    def passes(self, value: Decimal | int) -> bool:
        """Compare ``value`` with the threshold, exactly."""
        if self.at_least is not None:
            return value >= self.at_least
        if self.at_most is not None:
            return value <= self.at_most
        assert self.fewer_than is not None
        return value < self.fewer_than

    def describe_threshold(self) -> str:
        """Plain English."""
        if self.at_least is not None:
            return f">= {self.at_least}"
        if self.at_most is not None:
            return f"<= {self.at_most}"
        return f"< {self.fewer_than}"


# ---------------------------------------------------------------------------
# leaf primitives


class _Source(_Model):
    table: str
    where: Where = Field(default_factory=dict)


class Count(_Source, _Threshold):
    """The number of events in a window, compared with a threshold."""

    window: EventWindow


class Reduction(_Source):
    """Events in ``later`` are at least ``at_least_percent`` fewer than in ``baseline``.

    Exact: met when 100 * later <= (100 - p) * baseline, so a baseline of 0
    requires a later count of 0.
    """

    baseline: Window
    later: Window
    at_least_percent: Percent


class Spell(_Source):
    """A spell covering a date (``covers: A|E``) or any day of a window (``overlaps``)."""

    covers: Anchor | None = None
    overlaps: Window | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Spell:
        if (self.covers is None) == (self.overlaps is None):
            raise PydanticCustomError("spell", "give exactly one of 'covers' or 'overlaps'")
        return self


class SpellOpen(_Source):
    """Met when a spell open at E started on or before E - ``since``.

    Pending when a spell open at E started later (earliest: the first day D with
    D - since >= its start). Open at E means ended_on is null or >= E.
    """

    since: PeriodSpec


class SpellCompleted(_Source):
    """Met when a spell ended (``ended_with``) after A and on or before E - ``since``,
    and no other spell (of ``where``) started on or after its end date.

    Pending when such a spell ended after E - ``since`` (earliest: the first day
    D with D - since >= its end date).
    """

    ended_with: Where
    since: PeriodSpec


class TermRate(_Model):
    """Unauthorised sessions as a percentage of possible sessions, summed over terms.

    ``unknown`` when no term is selected. Exactly one of ``at_least_percent``
    or ``below_percent``.
    """

    table: str = "attendance"
    terms: TermSelection
    at_least_percent: Percent | None = None
    below_percent: Percent | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> TermRate:
        if (self.at_least_percent is None) == (self.below_percent is None):
            raise PydanticCustomError(
                "threshold", "give exactly one of 'at_least_percent' or 'below_percent'"
            )
        return self


class TermsRecorded(_Model):
    """At least ``at_least`` terms (with possible sessions) in a selection."""

    table: str = "attendance"
    terms: TermSelection
    at_least: int = Field(default=1, gt=0)


class Age(_Model):
    """Age in whole years at A or E, within [at_least, at_most]; unknown without a birth date."""

    at: Anchor
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Age:
        if self.at_least is None and self.at_most is None:
            raise PydanticCustomError("threshold", "give 'at_least', 'at_most' or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise PydanticCustomError("threshold", "'at_least' is above 'at_most'")
        return self


class SnapshotTotal(_Model):
    """The sum, over kinds, of the latest snapshot of each kind in a window."""

    table: str
    window: Window
    at_least: Num = Field(ge=0)


class SnapshotVsBaseline(_Model):
    """The snapshot sum in ``current`` is at most ``at_most_percent`` of the sum in ``baseline``."""

    table: str
    baseline: Window
    current: Window
    at_most_percent: Percent


class SnapshotKindsMissing(_Model):
    """Some kind in the baseline (a snapshot above 0 in ``baseline``) has no snapshot in
    ``current``."""

    table: str
    baseline: Window
    current: Window


class SnapshotDatedBefore(_Model):
    """A snapshot summed in ``window`` is dated before the first day D with D - sustain >= A.

    When met, its date is that day D.
    """

    table: str
    window: Window
    sustain: PeriodSpec


class SpellSource(_Source):
    """Spells of one table, optionally filtered by codes."""


class Requirement(_Model):
    """Weeks in work required, for spells (covering A) that match ``when``."""

    when: Where
    weeks: int = Field(gt=0)
    out_of: int = Field(gt=0)

    @model_validator(mode="after")
    def _fits(self) -> Requirement:
        if self.weeks > self.out_of:
            raise PydanticCustomError("requirement", "'weeks' is more than 'out_of'")
        return self


class WeeksInWork(_Model):
    """At least K weeks in work in some window of M consecutive ISO weeks after A.

    The requirement (K, M) comes from the out-of-work spells covering A: the
    longest applies. A week is in work when employment covers all seven days
    and no out-of-work spell covers any of them. The window's first Monday is
    later than A and its last Sunday is on or before E. Pending while no window
    fits (earliest: the Sunday ending the first window).
    """

    employment: SpellSource
    out_of_work: SpellSource
    requirements: list[Requirement] = Field(min_length=1)


# ---------------------------------------------------------------------------
# criterion nodes: each is a mapping with exactly one key, the primitive's name


class AllNode(_Model):
    """``all: [...]``."""

    all: list[Criterion] = Field(min_length=1)


class AnyNode(_Model):
    """``any: [...]``."""

    any_: list[Criterion] = Field(alias="any", min_length=1)


class NotNode(_Model):
    """``not: ...``: met and not_met swap; pending and unknown stay."""

    not_: Criterion = Field(alias="not")


class EachPerson(_Model):
    """The test for each family member with ``role``, combined with ``combine``."""

    role: Role
    combine: Literal["all", "any"]
    test: Criterion


class EachPersonNode(_Model):
    """``each_person: {...}``."""

    each_person: EachPerson


class CountNode(_Model):
    """``count: {...}``."""

    count: Count


class ReductionNode(_Model):
    """``reduction: {...}``."""

    reduction: Reduction


class SpellNode(_Model):
    """``spell: {...}``."""

    spell: Spell


class SpellOpenNode(_Model):
    """``spell_open: {...}``."""

    spell_open: SpellOpen


class SpellCompletedNode(_Model):
    """``spell_completed: {...}``."""

    spell_completed: SpellCompleted


class TermRateNode(_Model):
    """``term_rate: {...}``."""

    term_rate: TermRate


class TermsRecordedNode(_Model):
    """``terms_recorded: {...}``."""

    terms_recorded: TermsRecorded


class AgeNode(_Model):
    """``age: {...}``."""

    age: Age


class SnapshotTotalNode(_Model):
    """``snapshot_total: {...}``."""

    snapshot_total: SnapshotTotal


class SnapshotVsBaselineNode(_Model):
    """``snapshot_vs_baseline: {...}``."""

    snapshot_vs_baseline: SnapshotVsBaseline


class SnapshotKindsMissingNode(_Model):
    """``snapshot_kinds_missing: {...}``."""

    snapshot_kinds_missing: SnapshotKindsMissing


class SnapshotDatedBeforeNode(_Model):
    """``snapshot_dated_before: {...}``."""

    snapshot_dated_before: SnapshotDatedBefore


class WeeksInWorkNode(_Model):
    """``weeks_in_work: {...}``."""

    weeks_in_work: WeeksInWork


_NODES: dict[str, type[_Model]] = {
    "all": AllNode,
    "any": AnyNode,
    "not": NotNode,
    "each_person": EachPersonNode,
    "count": CountNode,
    "reduction": ReductionNode,
    "spell": SpellNode,
    "spell_open": SpellOpenNode,
    "spell_completed": SpellCompletedNode,
    "term_rate": TermRateNode,
    "terms_recorded": TermsRecordedNode,
    "age": AgeNode,
    "snapshot_total": SnapshotTotalNode,
    "snapshot_vs_baseline": SnapshotVsBaselineNode,
    "snapshot_kinds_missing": SnapshotKindsMissingNode,
    "snapshot_dated_before": SnapshotDatedBeforeNode,
    "weeks_in_work": WeeksInWorkNode,
}
_NODE_NAMES: dict[type[BaseModel], str] = {cls: name for name, cls in _NODES.items()}


def primitive_name(node: BaseModel) -> str:
    """The plan-language name of a criterion node (``count``, ``all``, ...)."""
    return _NODE_NAMES[type(node)]


def node_spec(node: BaseModel) -> Any:
    """The body of a criterion node: the value under its single key."""
    name = _NODE_NAMES[type(node)]
    return getattr(node, {"any": "any_", "not": "not_"}.get(name, name))


def _node_tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return f"<{next(iter(value))}>"
    if isinstance(value, BaseModel) and type(value) in _NODE_NAMES:
        return f"<{_NODE_NAMES[type(value)]}>"
    return None


def _check_node(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            keys = ", ".join(str(k) for k in value) or "none"
            raise PydanticCustomError(
                "one_primitive",
                "a criterion has exactly one key, the primitive's name; got {keys}",
                {"keys": keys},
            )
        key = next(iter(value))
        if key not in _NODES:
            raise PydanticCustomError(
                "unknown_primitive",
                "unknown primitive '{key}'; expected one of: {names}",
                {"key": str(key), "names": ", ".join(_NODES)},
            )
    elif not isinstance(value, BaseModel):
        raise PydanticCustomError(
            "criterion", "a criterion is a mapping such as {count: {...}} or {all: [...]}"
        )
    return value


Criterion = Annotated[
    Annotated[AllNode, Tag("<all>")]
    | Annotated[AnyNode, Tag("<any>")]
    | Annotated[NotNode, Tag("<not>")]
    | Annotated[EachPersonNode, Tag("<each_person>")]
    | Annotated[CountNode, Tag("<count>")]
    | Annotated[ReductionNode, Tag("<reduction>")]
    | Annotated[SpellNode, Tag("<spell>")]
    | Annotated[SpellOpenNode, Tag("<spell_open>")]
    | Annotated[SpellCompletedNode, Tag("<spell_completed>")]
    | Annotated[TermRateNode, Tag("<term_rate>")]
    | Annotated[TermsRecordedNode, Tag("<terms_recorded>")]
    | Annotated[AgeNode, Tag("<age>")]
    | Annotated[SnapshotTotalNode, Tag("<snapshot_total>")]
    | Annotated[SnapshotVsBaselineNode, Tag("<snapshot_vs_baseline>")]
    | Annotated[SnapshotKindsMissingNode, Tag("<snapshot_kinds_missing>")]
    | Annotated[SnapshotDatedBeforeNode, Tag("<snapshot_dated_before>")]
    | Annotated[WeeksInWorkNode, Tag("<weeks_in_work>")],
    Discriminator(_node_tag),
    BeforeValidator(_check_node),
]


# ---------------------------------------------------------------------------
# steps, scopes and rules


class WaitStep(_Model):
    """``wait: {months: N}``: pending while E - N < A; earliest: the first D with D - N >= A."""

    wait: PeriodSpec


class NeedsStep(_Model):
    """``needs: [tables]``: unknown when any of the tables was never loaded."""

    needs: list[str] = Field(min_length=1)


class GuardStep(_Model):
    """``if: <criterion>`` (or ``unless:``) with ``then: <state>``.

    The rule takes state ``then`` when the criterion is met (``if``) or not met
    (``unless``). When the criterion itself is pending or unknown, so is the rule.
    """

    if_: Criterion | None = Field(default=None, alias="if")
    unless: Criterion | None = None
    then: State

    @model_validator(mode="after")
    def _one_condition(self) -> GuardStep:
        if (self.if_ is None) == (self.unless is None):
            raise PydanticCustomError("guard", "give exactly one of 'if' or 'unless'")
        return self


Step = Annotated[
    Annotated[WaitStep, Tag("<WaitStep>")]
    | Annotated[NeedsStep, Tag("<NeedsStep>")]
    | Annotated[GuardStep, Tag("<GuardStep>")],
    Discriminator(
        _keyed_tag(
            {"wait": "WaitStep", "needs": "NeedsStep", "if": "GuardStep", "unless": "GuardStep"}
        ),
        custom_error_type="step",
        custom_error_message="a step is {wait: ...}, {needs: [...]}, or {if|unless: ..., then: ...}",
    ),
]


class PeopleScope(_Model):
    """Evaluate for each family member with ``people`` role, combined with ``combine``."""

    people: Role
    combine: Literal["all", "any"] = "any"


def _scope_tag(value: Any) -> str | None:
    if isinstance(value, str | PeopleScope):
        return "<PeopleScope>" if isinstance(value, PeopleScope) else "<name>"
    if isinstance(value, dict):
        return "<PeopleScope>"
    return None


Scope = Annotated[
    Annotated[Literal["family", "identified_people"], Tag("<name>")]
    | Annotated[PeopleScope, Tag("<PeopleScope>")],
    Discriminator(
        _scope_tag,
        custom_error_type="scope",
        custom_error_message="'for' is family, identified_people or {people: adult|child|member}",
    ),
]


class _Effective(_Model):
    reference: str = Field(min_length=1)
    effective_from: date
    effective_to: date | None = None
    description: str = ""

    @model_validator(mode="after")
    def _dates_in_order(self) -> _Effective:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise PydanticCustomError("dates", "'effective_to' is before 'effective_from'")
        return self

    def in_effect(self, on: date) -> bool:
        """Whether the rule applies on ``on`` (both ends inclusive)."""
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


class Rule(_Effective):
    """A rule: for a scope, ordered steps, then a test."""

    for_: Scope = Field(alias="for")
    steps: list[Step] = Field(default_factory=list)
    test: Criterion


class Outcome(Rule):
    """An outcome, judged at E. In effect when E lies in its effective dates."""


class Indicator(Rule):
    """An indicator, judged at attachment. In effect when A lies in its effective dates.

    ``outcome`` is set when the headline has one outcome per indicator.
    """

    code: Code
    name: str = Field(min_length=1)
    outcome: Outcome | None = None


class Headline(_Model):
    """A headline problem: its indicators (combined with any) and its outcome."""

    code: Code
    name: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    indicators: list[Indicator] = Field(min_length=1)
    outcome: Outcome | None = None


class Eligibility(_Effective):
    """At least ``min_headlines`` distinct headlines identified at attachment."""

    min_headlines: int = Field(gt=0)


class Plan(_Model):
    """An Outcome Plan."""

    name: Code
    title: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    description: str = ""
    code_lists: dict[str, list[str]] = Field(default_factory=dict)
    eligibility: Eligibility
    headlines: list[Headline] = Field(min_length=1)
    continuous_employment: Outcome | None = None

    _source: str = PrivateAttr(default="<string>")
    _content_hash: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """Where the plan was read from."""
        return self._source

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the plan file's canonical bytes."""
        return self._content_hash


AllNode.model_rebuild()
AnyNode.model_rebuild()
NotNode.model_rebuild()
EachPerson.model_rebuild()
GuardStep.model_rebuild()
Rule.model_rebuild()
Outcome.model_rebuild()
Indicator.model_rebuild()
Headline.model_rebuild()
Plan.model_rebuild()


# ---------------------------------------------------------------------------
# meaning: tables, codes, anchors and scopes

Path = tuple[str | int, ...]
Problem = tuple[Path, str]

_SHAPES: dict[type[BaseModel], tuple[str, ...]] = {
    Count: ("event",),
    Reduction: ("event",),
    Spell: ("spell",),
    SpellOpen: ("spell",),
    SpellCompleted: ("spell",),
    SpellSource: ("spell",),
    TermRate: ("term",),
    TermsRecorded: ("term",),
    SnapshotTotal: ("snapshot",),
    SnapshotVsBaseline: ("snapshot",),
    SnapshotKindsMissing: ("snapshot",),
    SnapshotDatedBefore: ("snapshot",),
}
_PERSON_ONLY = (Age, WeeksInWork)
_AFTER_ATTACHMENT = (
    SpellOpen,
    SpellCompleted,
    SnapshotVsBaseline,
    SnapshotKindsMissing,
    SnapshotDatedBefore,
    WeeksInWork,
)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path, reason: str) -> None:
        self.problems.append((path, reason))

    def table(self, path: Path, name: str, shapes: tuple[str, ...]) -> bool:
        if name not in TABLES:
            self.add(path, f"unknown table '{name}'; expected one of: {', '.join(TABLES)}")
            return False
        if TABLES[name].shape not in shapes:
            self.add(
                path, f"table '{name}' holds {TABLES[name].shape}s, not {' or '.join(shapes)}s"
            )
            return False
        return True

    def where(self, path: Path, table: str, where: Where) -> None:
        codes = TABLES[table].codes
        for column, values in where.items():
            if column not in codes:
                allowed = ", ".join(codes) or "none"
                self.add(
                    (*path, column),
                    f"table '{table}' has no code column '{column}' (code columns: {allowed})",
                )
                continue
            if not values:
                self.add((*path, column), "an empty list of codes matches nothing")
            for i, value in enumerate(values):
                if value not in codes[column]:
                    self.add(
                        (*path, column, i),
                        f"'{value}' is not a code of {table}.{column}; "
                        f"expected one of: {', '.join(codes[column])}",
                    )

    def anchor(self, path: Path, anchor: str, phase: str) -> None:
        if phase == "indicator" and anchor != "A":
            self.add(path, "indicators are judged at attachment: only anchor A is allowed")

    def window(self, path: Path, window: BaseModel, phase: str) -> None:
        if isinstance(window, Window):
            self.anchor((*path, "anchor"), window.anchor, phase)
        elif isinstance(window, SinceAttachment):
            if phase == "indicator":
                self.add((*path, "after"), "indicators are judged at attachment: no window after A")
        elif isinstance(window, InTerms):
            self.terms((*path, "in_terms"), window.in_terms, phase)

    def terms(self, path: Path, terms: TermSelection, phase: str) -> None:
        if terms.window is not None:
            self.window((*path, "window"), terms.window, phase)
        if terms.start_on_or_after is not None and phase == "indicator":
            self.add((*path, "start_on_or_after"), "indicators cannot select terms after A")

    def criterion(self, path: Path, node: BaseModel, phase: str, subject: str) -> None:
        name = primitive_name(node)
        here = (*path, name)
        spec = node_spec(node)
        if isinstance(node, AllNode | AnyNode):
            for i, part in enumerate(spec):
                self.criterion((*here, i), part, phase, subject)
            return
        if isinstance(node, NotNode):
            self.criterion(here, spec, phase, subject)
            return
        if isinstance(node, EachPersonNode):
            if subject != "family":
                self.add(here, "each_person is only allowed where the subject is the family")
            self.criterion((*here, "test"), spec.test, phase, "person")
            return
        if isinstance(spec, _PERSON_ONLY) and subject != "person":
            self.add(
                here, f"{name} needs a person: use it under 'for: {{people: ...}}' or each_person"
            )
        if isinstance(spec, _AFTER_ATTACHMENT) and phase == "indicator":
            self.add(here, f"{name} judges progress after attachment; indicators are judged at A")
        shapes = _SHAPES.get(type(spec))
        if shapes is not None and self.table((*here, "table"), spec.table, shapes):
            if isinstance(spec, _Source):
                self.where((*here, "where"), spec.table, spec.where)
            if isinstance(spec, SpellCompleted):
                self.where((*here, "ended_with"), spec.table, spec.ended_with)
        for field_name in ("window", "baseline", "later", "current", "overlaps"):
            window = getattr(spec, field_name, None)
            if isinstance(window, BaseModel):
                self.window((*here, field_name), window, phase)
        if isinstance(spec, Spell) and spec.covers is not None:
            self.anchor((*here, "covers"), spec.covers, phase)
        if isinstance(spec, Age):
            self.anchor((*here, "at"), spec.at, phase)
        if isinstance(spec, TermRate | TermsRecorded):
            self.terms((*here, "terms"), spec.terms, phase)
        if isinstance(spec, WeeksInWork):
            self.weeks_in_work(here, spec)

    def weeks_in_work(self, path: Path, spec: WeeksInWork) -> None:
        for key in ("employment", "out_of_work"):
            source: SpellSource = getattr(spec, key)
            if self.table((*path, key, "table"), source.table, ("spell",)):
                self.where((*path, key, "where"), source.table, source.where)
        table = spec.out_of_work.table
        if table not in TABLES:
            return
        seen: dict[tuple[str, str], int] = {}
        for i, req in enumerate(spec.requirements):
            here = (*path, "requirements", i, "when")
            self.where(here, table, req.when)
            for column, values in req.when.items():
                allowed = spec.out_of_work.where.get(column)
                for value in values:
                    if allowed is not None and value not in allowed:
                        self.add((*here, column), f"'{value}' is not an out-of-work code")
                    if (column, value) in seen:
                        self.add(
                            (*here, column),
                            f"'{value}' is already in requirements[{seen[column, value]}]",
                        )
                    seen[column, value] = i

    def steps(self, path: Path, steps: list[Any], phase: str, subject: str) -> None:
        for i, step in enumerate(steps):
            here = (*path, i)
            if isinstance(step, WaitStep) and phase == "indicator":
                self.add(
                    (*here, "wait"), "indicators are judged at attachment: nothing to wait for"
                )
            elif isinstance(step, NeedsStep):
                for j, table in enumerate(step.needs):
                    if table not in TABLES:
                        self.add(
                            (*here, "needs", j),
                            f"unknown table '{table}'; expected one of: {', '.join(TABLES)}",
                        )
            elif isinstance(step, GuardStep):
                key = "if" if step.if_ is not None else "unless"
                condition = step.if_ if step.if_ is not None else step.unless
                assert condition is not None
                self.criterion((*here, key), condition, phase, subject)

    def rule(self, path: Path, rule: Rule, phase: str, people_scoped: bool | None) -> None:
        scope = rule.for_
        if scope == "identified_people":
            if phase != "outcome":
                self.add((*path, "for"), "only an outcome can be for the identified people")
            elif not people_scoped:
                self.add(
                    (*path, "for"),
                    "'identified_people' needs every indicator it follows to be for people, "
                    "not the family",
                )
        subject = "family" if scope == "family" else "person"
        self.steps((*path, "steps"), rule.steps, phase, subject)
        self.criterion((*path, "test"), rule.test, phase, subject)


def _people_scoped(rule: Rule) -> bool:
    return isinstance(rule.for_, PeopleScope)


def check_plan(plan: Plan) -> list[Problem]:
    """Check the meaning of a structurally valid plan; return (key path, reason) problems."""
    c = _Checker()
    if plan.eligibility.min_headlines > len(plan.headlines):
        c.add(
            ("eligibility", "min_headlines"),
            f"needs {plan.eligibility.min_headlines} headlines but the plan has "
            f"{len(plan.headlines)}",
        )
    seen: dict[str, int] = {}
    for h, headline in enumerate(plan.headlines):
        hp: Path = ("headlines", h)
        if headline.code in seen:
            c.add(
                (*hp, "code"),
                f"headline code '{headline.code}' is already headlines[{seen[headline.code]}]",
            )
        seen.setdefault(headline.code, h)
        per_indicator = [i.outcome is not None for i in headline.indicators]
        if headline.outcome is not None and any(per_indicator):
            c.add(
                (*hp, "outcome"),
                "give one outcome for the headline or one per indicator, not both",
            )
        elif headline.outcome is None and not all(per_indicator):
            missing = per_indicator.index(False)
            c.add(
                (*hp, "indicators", missing, "outcome"),
                "every indicator needs an outcome when the headline has no outcome of its own",
            )
        codes: dict[str, int] = {}
        for i, indicator in enumerate(headline.indicators):
            ip = (*hp, "indicators", i)
            if indicator.code in codes:
                c.add(
                    (*ip, "code"),
                    f"indicator code '{indicator.code}' is already indicators[{codes[indicator.code]}]",
                )
            codes.setdefault(indicator.code, i)
            if isinstance(indicator.for_, str) and indicator.for_ != "family":
                c.add((*ip, "for"), "an indicator is for the family or for {people: ...}")
            c.rule(ip, indicator, "indicator", None)
            if indicator.outcome is not None:
                c.rule((*ip, "outcome"), indicator.outcome, "outcome", _people_scoped(indicator))
        if headline.outcome is not None:
            scoped = all(_people_scoped(i) for i in headline.indicators)
            c.rule((*hp, "outcome"), headline.outcome, "outcome", scoped)
    if plan.continuous_employment is not None:
        ce = plan.continuous_employment
        if not isinstance(ce.for_, PeopleScope):
            c.add(("continuous_employment", "for"), "continuous employment is for {people: ...}")
        c.rule(("continuous_employment",), ce, "outcome", False)
    return c.problems


def iter_criteria(node: BaseModel) -> Iterator[BaseModel]:
    """Yield every criterion spec under ``node`` (depth first), combinators included."""
    spec = node_spec(node)
    yield spec
    if isinstance(node, AllNode | AnyNode):
        for part in spec:
            yield from iter_criteria(part)
    elif isinstance(node, NotNode):
        yield from iter_criteria(spec)
    elif isinstance(node, EachPersonNode):
        yield from iter_criteria(spec.test)


def tables_read(rule: Rule) -> set[str]:
    """Every table a rule's test and guard steps read.

    ``people`` is read by ages, by ``each_person`` and by every person-level
    table (its rows reach a family through ``people``).
    """
    nodes = [rule.test] + [
        s.if_ if s.if_ is not None else s.unless for s in rule.steps if isinstance(s, GuardStep)
    ]
    used: set[str] = set()
    for node in nodes:
        assert node is not None
        for spec in iter_criteria(node):
            if isinstance(spec, Age | EachPerson):
                used.add("people")
            elif isinstance(spec, WeeksInWork):
                used.update((spec.employment.table, spec.out_of_work.table, "people"))
            else:
                table = getattr(spec, "table", None)
                if isinstance(table, str):
                    used.add(table)
                    if TABLES[table].key == "person_id":
                        used.add("people")
                if isinstance(getattr(spec, "window", None), InTerms):
                    used.add("attendance")
    return used
