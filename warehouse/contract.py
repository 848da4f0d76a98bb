"""The warehouse extract contract (version 1) as data.

Every other part of the warehouse (models, validation, synthetic council)
reads the table and column definitions from here, so the contract in
``shared/spec/extracts.md`` is written down exactly once in code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSION = 1
# a claim window, YYYY-MM (ASCII digits, as every number): year and month are its groups
WINDOW_PATTERN = r"^([0-9]{4})-(0[1-9]|1[0-2])$"

ColumnType = Literal["str", "date", "int", "decimal"]


@dataclass(frozen=True)
class Column:
    """One column of an extract table."""

    name: str
    type: ColumnType = "str"
    required: bool = False
    unique: bool = False
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    references: Literal["families", "people"] | None = None
    personal: bool = False
    # decimal columns: (precision, scale) as stored in the warehouse
    decimal: tuple[int, int] | None = None
    pattern: str | None = None
    pattern_hint: str | None = None


@dataclass(frozen=True)
class Table:
    """One extract table: its file name stem, columns and keys."""

    name: str
    db_table: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...] = ()
    # (start, end) column pairs where end must not precede start
    spans: tuple[tuple[str, str], ...] = ()
    # (smaller, larger) integer column pairs where smaller <= larger
    not_exceeding: tuple[tuple[str, str], ...] = ()
    # (end column, column that must be null while end is null)
    null_while_open: tuple[tuple[str, str], ...] = ()
    description: str = ""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def keys(self) -> tuple[tuple[str, ...], ...]:
        """Every uniqueness key: the natural key and each unique column."""
        keys: list[tuple[str, ...]] = [(c.name,) for c in self.columns if c.unique]
        if self.natural_key:
            keys.append(self.natural_key)
        return tuple(keys)


def _person() -> Column:
    return Column("person_id", required=True, references="people")


TABLES: tuple[Table, ...] = (
    Table(
        "families",
        "families",
        (
            Column("family_id", required=True, unique=True),
            Column("locality", required=True),
            Column("attached_on", "date"),
            Column("lead_worker", personal=True),
            Column("closed_on", "date"),
        ),
        description="families known to the programme",
    ),
    Table(
        "people",
        "people",
        (
            Column("person_id", required=True, unique=True),
            Column("family_id", required=True, references="families"),
            Column("role", required=True, choices=("adult", "child")),
            Column("birth_date", "date", personal=True),
            Column("given_name", personal=True),
            Column("family_name", personal=True),
        ),
        description="family members",
    ),
    Table(
        "offences",
        "offences",
        (
            _person(),
            Column("occurred_on", "date", required=True),
            Column(
                "kind",
                required=True,
                choices=("offence", "caution", "asb_incident", "asb_intervention"),
            ),
            Column("reference"),
        ),
        description="crime and anti-social behaviour",
    ),
    Table(
        "attendance",
        "attendance",
        (
            _person(),
            Column("term_start", "date", required=True),
            Column("term_end", "date", required=True),
            Column("possible_sessions", "int", required=True, minimum=0),
            Column("unauthorised_sessions", "int", required=True, minimum=0),
        ),
        natural_key=("person_id", "term_start"),
        spans=(("term_start", "term_end"),),
        not_exceeding=(("unauthorised_sessions", "possible_sessions"),),
        description="school attendance, one row per child per term",
    ),
    Table(
        "exclusions",
        "exclusions",
        (
            _person(),
            Column("excluded_on", "date", required=True),
            Column("kind", required=True, choices=("fixed_term", "permanent")),
        ),
        description="school exclusions",
    ),
    Table(
        "social_care",
        "social_care",
        (
            _person(),
            Column("episode", required=True, choices=("early_help", "cin", "cp", "lac")),
            Column("started_on", "date", required=True),
            Column("ended_on", "date"),
        ),
        spans=(("started_on", "ended_on"),),
        description="children who need help",
    ),
    Table(
        "benefits",
        "benefits",
        (
            _person(),
            Column(
                "benefit",
                required=True,
                choices=("jsa", "esa", "income_support", "incapacity_benefit", "uc_not_working"),
            ),
            Column("started_on", "date", required=True),
            Column("ended_on", "date"),
        ),
        spans=(("started_on", "ended_on"),),
        description="out-of-work benefit spells",
    ),
    Table(
        "employment",
        "employment",
        (
            _person(),
            Column("started_on", "date", required=True),
            Column("ended_on", "date"),
            Column("hours_per_week", "decimal", minimum=0, decimal=(6, 2)),
        ),
        spans=(("started_on", "ended_on"),),
        description="employment spells",
    ),
    Table(
        "neet",
        "neet",
        (
            _person(),
            Column("started_on", "date", required=True),
            Column("ended_on", "date"),
        ),
        spans=(("started_on", "ended_on"),),
        description="spells not in education, employment or training",
    ),
    Table(
        "domestic_abuse",
        "domestic_abuse",
        (
            _person(),
            Column("occurred_on", "date", required=True),
            Column("kind", required=True, choices=("incident", "crime", "marac_referral")),
            Column("role", choices=("victim", "perpetrator", "other")),
        ),
        description="domestic abuse incidents, crimes and MARAC referrals",
    ),
    Table(
        "health",
        "health",
        (
            _person(),
            Column("service", required=True, choices=("mental_health", "substance_misuse")),
            Column("started_on", "date", required=True),
            Column("ended_on", "date"),
            Column("end_reason", choices=("completed", "disengaged", "transferred", "other")),
        ),
        spans=(("started_on", "ended_on"),),
        null_while_open=(("ended_on", "end_reason"),),
        description="mental health and substance misuse treatment episodes",
    ),
    Table(
        "debt",
        "debt",
        (
            Column("family_id", required=True, references="families"),
            Column("recorded_on", "date", required=True),
            Column("kind", required=True, choices=("rent_arrears", "council_tax_arrears")),
            Column("amount", "decimal", required=True, minimum=0, decimal=(12, 2)),
        ),
        natural_key=("family_id", "kind", "recorded_on"),
        description="household arrears snapshots",
    ),
    Table(
        "claims",
        "claims_history",
        (
            Column("family_id", required=True, unique=True, references="families"),
            Column("claimed_on", "date", required=True),
            Column(
                "claim_window",
                required=True,
                pattern=WINDOW_PATTERN,
                pattern_hint="YYYY-MM",
            ),
            Column("basis", required=True, choices=("ssp", "ce")),
        ),
        description="results claims made before this system, or outside it",
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

# Load order: referenced tables first, so references resolve against the
# incoming snapshot when both arrive together.
LOAD_ORDER: tuple[str, ...] = tuple(t.name for t in TABLES)


def table(name: str) -> Table:
    """Return the contract for extract table ``name``."""
    return TABLES_BY_NAME[name]
