"""Sampling settings: the rate, the per-stratum minimum, the strata, the always-verify
rules and the escalation ladder. Every rate is a :class:`~decimal.Decimal`, never a
float, so that ``ceil(rate * n)`` is exact.
"""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import pairwise
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RULE_PREFIX: Final = "rule:"
# the widths the warehouse stores a sample's reason and a rate (as written) in
REASON_WIDTH: Final = 100
RATE_WIDTH: Final = 8

_RULE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class AlwaysRule(BaseModel):
    """A claim joins the sample whatever its rank when ``column`` equals ``equals``.

    The comparison is type-strict: a ``bool`` matches only a Boolean column, an
    ``int`` only an integer column and a ``str`` only a string, categorical or enum
    column; any other pairing is a :class:`ValueError` when the sample is drawn. A
    null never matches. When the claims frame has no column of that name the rule
    matches no claim (the application may not compute every rule's column).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        max_length=REASON_WIDTH - len(RULE_PREFIX),
        description="Shown in the sample as the reason rule:<name>.",
    )
    column: str = Field(min_length=1)
    equals: bool | int | str = True

    @field_validator("name")
    @classmethod
    def _name_is_a_plain_word(cls, v: str) -> str:
        if not _RULE_NAME.match(v):
            raise ValueError("rule name must be letters, digits, '_', '.' or '-' (no spaces)")
        return v


def rate_text(rate: Decimal) -> str:
    """A rate as the plain decimal string stored in the sample frame (never exponent form)."""
    return format(rate, "f")


def _check_written(rate: Decimal, what: str) -> None:
    if len(rate_text(rate)) > RATE_WIDTH:
        raise ValueError(f"{what} is stored as written: use at most {RATE_WIDTH} characters")


def _default_rules() -> tuple[AlwaysRule, ...]:
    return (AlwaysRule(name="manual_override", column="manual_override", equals=True),)


class SamplingSettings(BaseModel):
    """How the verification sample is drawn and how it grows on failures.

    * ``rate``: the starting sampling rate r, with 0 < r <= 1.
    * ``min_per_stratum``: the least sample size of a non-empty stratum (capped at n).
    * ``strata``: the claim frame's columns whose values, joined with ``|``, name a
      stratum. An empty tuple makes the whole batch one stratum named ``""``.
    * ``ladder``: the escalation rates, strictly increasing and ending at 1. The
      starting rate need not be on it: an escalation always moves a stratum to the
      lowest ladder step above its current rate.
    * ``tolerance``: failures allowed in a stratum before it escalates.
    * ``always``: the always-verify rules, tried in order (the first match names
      the reason).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: Decimal = Decimal("0.20")
    min_per_stratum: int = Field(default=1, ge=0)
    strata: tuple[str, ...] = ("basis", "locality")
    ladder: tuple[Decimal, ...] = (Decimal("0.20"), Decimal("0.50"), Decimal("1.00"))
    tolerance: int = Field(default=0, ge=0)
    always: tuple[AlwaysRule, ...] = Field(default_factory=_default_rules)

    @field_validator("rate")
    @classmethod
    def _rate_in_unit_interval(cls, v: Decimal) -> Decimal:
        if not 0 < v <= 1:
            raise ValueError("rate must be greater than 0 and at most 1")
        _check_written(v, "rate")
        return v

    @field_validator("strata")
    @classmethod
    def _strata_distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not c for c in v):
            raise ValueError("strata column names must be non-empty")
        if len(set(v)) != len(v):
            raise ValueError("strata column names must be distinct")
        return v

    @field_validator("ladder")
    @classmethod
    def _ladder_climbs_to_one(cls, v: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if not v:
            raise ValueError("ladder must have at least one step")
        if any(not 0 < step <= 1 for step in v):
            raise ValueError("every ladder step must be greater than 0 and at most 1")
        if any(b <= a for a, b in pairwise(v)):
            raise ValueError("ladder must be strictly increasing")
        if v[-1] != 1:
            raise ValueError("ladder must end at 1 (verify the whole stratum)")
        for step in v:
            _check_written(step, "every ladder step")
        return v

    @model_validator(mode="after")
    def _rule_names_distinct(self) -> Self:
        names = [r.name for r in self.always]
        if len(set(names)) != len(names):
            raise ValueError("always-verify rule names must be distinct")
        return self

    def next_rate(self, current: Decimal) -> Decimal | None:
        """The lowest ladder step above ``current``, or None at the top of the ladder."""
        return next((step for step in self.ladder if step > current), None)
