"""What a claim batch's output files are made from: plain data, no database.

``claims.batch`` builds these from the warehouse and the rules engine;
``claims.outputs`` writes them to files. Output schema version 1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import rules

OUTPUT_SCHEMA_VERSION = 1

CLAIM_BASIS_NAMES = {"ssp": "significant_sustained_progress", "ce": "continuous_employment"}


@dataclass(frozen=True)
class BatchInfo:
    """Identifies a batch and everything needed to reproduce it."""

    window: str  # YYYY-MM
    as_of: dt.date  # E
    la_code: str
    plan_name: str
    plan_hash: str
    seed: str
    rate: Decimal
    strata: tuple[str, ...]
    software_version: str
    load_batches: dict[str, int]  # extract table -> load batch id
    load_files: dict[int, dict[str, str]]  # load batch id -> {file name: sha256}
    generated_at: dt.datetime
    schema_version: int = OUTPUT_SCHEMA_VERSION


@dataclass(frozen=True)
class Member:
    """A family member, as the auditor's list names them (personal data)."""

    person_id: str
    role: str
    given_name: str | None
    family_name: str | None
    birth_date: dt.date | None


@dataclass(frozen=True)
class Verification:
    """An auditor's result for a sampled claim (all None until recorded)."""

    result: str | None = None  # pass | fail
    note: str | None = None
    auditor: str | None = None
    checked_on: dt.date | None = None


@dataclass(frozen=True)
class SampledClaim:
    """One row of the auditor's verification list, with the evidence for the claim."""

    family_id: str
    locality: str
    lead_worker: str | None
    basis: str  # ssp | ce
    reason: str  # random | escalation | rule:<name>
    stratum: str
    attached_on: dt.date
    as_of: dt.date
    headlines: tuple[str, ...]
    members: tuple[Member, ...]
    evidence: rules.FamilyResult
    verification: Verification = field(default_factory=Verification)


@dataclass(frozen=True)
class ClaimRow:
    """One row of the MHCLG claim file (family reference only: no personal data)."""

    family_id: str
    claim_basis: str  # ssp | ce; written as CLAIM_BASIS_NAMES[...]
    attached_on: dt.date
    evaluated_on: dt.date
    headline_count: int
    headlines: tuple[str, ...]
    verification: str  # sampled_passed | not_sampled


@dataclass(frozen=True)
class MissingEvidence:
    """One row of the insufficient-evidence list: an outcome held back by a missing source."""

    family_id: str
    locality: str
    lead_worker: str | None
    outcome: str  # e.g. "education.outcome" or "worklessness.debt.outcome"
    person_id: str | None
    source: str  # the table (or data) that is missing
    detail: str  # what exactly is missing, in words


@dataclass(frozen=True)
class BatchStats:
    """Counts for the claim summary and the manifest."""

    eligible: int
    claimable: int
    claimable_by_basis: dict[str, int]
    sampled: int
    passed: int
    failed: int
    submitted: int
    submitted_by_basis: dict[str, int]
    payment_per_claim: Decimal
    escalations: int

    @property
    def payment_due(self) -> Decimal:
        """Results payments due for the submitted claims."""
        return self.payment_per_claim * self.submitted
