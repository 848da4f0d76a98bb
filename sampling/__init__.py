"""Verification sampling: pure functions over frames, seed in, sample out; no I/O.

* :func:`draw_sample` ranks each stratum's claims by ``SHA-256("<seed>:<family_id>")``
  and takes the first ``k = min(n, max(min_per_stratum, ceil(rate * n)))``, plus
  the claims that always-verify rules select. The result is a sample frame with the
  columns of :data:`SAMPLE_SCHEMA`.
* :func:`escalate` moves strata with too many failures up the rate ladder and
  extends their sample in the same hash order, logging each step.

Nothing here reads a file, a database or the clock: the seed and the escalation
time are arguments. docs/reperform-sample.md shows an auditor how to redo the
selection without this software.
"""

from sampling.draw import (
    REASON_ESCALATION,
    REASON_RANDOM,
    SAMPLE_SCHEMA,
    STRATUM_SEPARATOR,
    draw_sample,
    sample_hash,
    stratum_size,
)
from sampling.escalation import Escalated, EscalationStep, escalate
from sampling.settings import RULE_PREFIX, AlwaysRule, SamplingSettings, rate_text

__all__ = [
    "REASON_ESCALATION",
    "REASON_RANDOM",
    "RULE_PREFIX",
    "SAMPLE_SCHEMA",
    "STRATUM_SEPARATOR",
    "AlwaysRule",
    "Escalated",
    "EscalationStep",
    "SamplingSettings",
    "draw_sample",
    "escalate",
    "rate_text",
    "sample_hash",
    "stratum_size",
]
