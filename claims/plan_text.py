"""An Outcome Plan in plain English, generated from the plan file's own data.

Every number, window and code is read from the plan as loaded, so changing a
threshold in the YAML changes what ``tfclaims plan show`` says. The plan
author's own ``name`` and ``description`` are shown beside the generated text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rules

Node = Mapping[str, Any]

_ROLE = {"member": "each family member", "adult": "each adult", "child": "each child"}


def _period(w: Node) -> str:
    return str(rules.Period(months=w.get("months", 0), days=w.get("days", 0)))


def window(w: Node) -> str:
    """A window as the plan says it: 'the 12 months up to A', 'after A', ..."""
    if "anchor" in w:
        return f"the {_period(w)} up to {w['anchor']}"
    if "after" in w:
        return f"after {w['after']}"
    if "in_terms" in w:
        return f"within {terms(w['in_terms'])}"
    return ", ".join(f"{k} {v}" for k, v in w.items())


def within(w: Node) -> str:
    """A window as a phrase after a count: 'in the 12 months up to A', 'dated after A', ..."""
    if "after" in w:
        return f"dated after {w['after']}"
    if "in_terms" in w:
        return f"dated within {terms(w['in_terms'])}"
    return f"in {window(w)}"


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def terms(t: Node) -> str:
    """A selection of school terms."""
    parts = []
    if "last" in t:
        parts.append(f"the {t['last']} most recent terms")
    else:
        parts.append("terms")
    if "window" in t:
        parts.append(f"ending in {window(t['window'])}")
    if "start_on_or_after" in t:
        parts.append(f"starting on or after {t['start_on_or_after']}")
    return " ".join(parts)


def _threshold(spec: Node) -> str:
    for key, words in (
        ("at_least", "at least"),
        ("fewer_than", "fewer than"),
        ("at_most", "at most"),
    ):
        if key in spec:
            return f"{words} {spec[key]}"
    return ""


def _percent(spec: Node) -> str:
    for key, words in (
        ("at_least_percent", "at least"),
        ("below_percent", "below"),
        ("at_most_percent", "at most"),
    ):
        if key in spec:
            return f"{words} {spec[key]}%"
    return ""


def describe(node: Node) -> str:
    """One criterion of the plan language in words."""
    (kind, spec), *_ = node.items()
    if kind in ("all", "any"):
        joiner = " and " if kind == "all" else " or "
        return "(" + joiner.join(describe(n) for n in spec) + ")"
    if kind == "not":
        return f"not {describe(spec)}"
    if kind == "each_person":
        return f"for {_ROLE.get(spec.get('role', 'member'), spec.get('role'))} ({spec.get('combine', 'all')}): {describe(spec['test'])}"
    table = spec.get("table", "")
    if kind == "count":
        return f"{_threshold(spec)} {table}{rules.describe_codes(spec.get('where'))} {within(spec['window'])}"
    if kind == "reduction":
        return (
            f"{table}{rules.describe_codes(spec.get('where'))} in {window(spec['later'])} {_percent(spec)} fewer "
            f"than in {window(spec['baseline'])} (a baseline of 0 needs 0)"
        )
    if kind == "spell":
        when = (
            f"covering {spec['covers']}"
            if "covers" in spec
            else f"covering any day of {window(spec['overlaps'])}"
        )
        return f"{_a(table)} spell{rules.describe_codes(spec.get('where'))} {when}"
    if kind == "spell_open":
        return f"{_a(table)} episode{rules.describe_codes(spec.get('where'))} open at E that started at least {_period(spec['since'])} before E"
    if kind == "spell_completed":
        return (
            f"{_a(table)} episode{rules.describe_codes(spec.get('where'))} that ended{rules.describe_codes(spec.get('ended_with'))} "
            f"after A and at least {_period(spec['since'])} before E, with no later episode"
        )
    if kind == "term_rate":
        return f"unauthorised absence {_percent(spec)} of possible sessions over {terms(spec['terms'])}"
    if kind == "terms_recorded":
        return f"{_threshold(spec) or 'some'} {terms(spec['terms'])} recorded"
    if kind == "age":
        return f"aged {spec.get('at_least')} to {spec.get('at_most')} on {spec.get('at')}"
    if kind == "snapshot_total":
        return f"{table} total (latest snapshot of each kind in {window(spec['window'])}) {_threshold(spec)}"
    if kind == "snapshot_vs_baseline":
        return (
            f"{table} total in {window(spec['current'])} {_percent(spec)} of the total in "
            f"{window(spec['baseline'])}"
        )
    if kind == "snapshot_kinds_missing":
        return f"a {table} kind in the baseline ({window(spec['baseline'])}) has no snapshot in {window(spec['current'])}"
    if kind == "snapshot_dated_before":
        return f"a {table} snapshot in {window(spec['window'])} is dated before the first day {_period(spec['sustain'])} after A"
    if kind == "weeks_in_work":
        reqs = "; ".join(
            f"{', '.join(r['when'].get('benefit', []))}: {r['weeks']} of {r['out_of']} weeks"
            for r in spec.get("requirements", [])
        )
        return (
            "enough ISO weeks in work (employment all 7 days, no out-of-work benefit) in a run of "
            f"consecutive weeks starting after A and ending by E: {reqs}"
        )
    return f"{kind} {spec}"


def _steps(steps: Sequence[Node]) -> list[str]:
    out = []
    for s in steps:
        if "wait" in s:
            out.append(f"pending until {_period(s['wait'])} after A have passed")
        elif "needs" in s:
            out.append(f"unknown if {', '.join(s['needs'])} never loaded")
        elif "if" in s:
            out.append(f"{s['then']} if {describe(s['if'])}")
        elif "unless" in s:
            out.append(f"{s['then']} unless {describe(s['unless'])}")
    return out


def _scope(scope: Any) -> str:
    if scope == "family":
        return "the family"
    if scope == "identified_people":
        return "every person who identified it"
    if isinstance(scope, Mapping):
        return f"{_ROLE.get(scope.get('people', 'member'), scope.get('people'))} (combined with {scope.get('combine', 'any')})"
    return str(scope)


def _rule(label: str, rule: Node) -> list[str]:
    dates = f"from {rule.get('effective_from')}" + (
        f" to {rule['effective_to']}" if rule.get("effective_to") else ""
    )
    lines = [f"{label}  [{rule.get('reference', '')}; in effect {dates}]"]
    if rule.get("name"):
        lines.append(f"    {rule['name']}")
    if rule.get("description"):
        lines.append(f"    {rule['description']}")
    lines.append(f"    for {_scope(rule.get('for'))}:")
    for step in _steps(rule.get("steps", [])):
        lines.append(f"      - {step}")
    lines.append(f"      - met when {describe(rule['test'])}")
    return lines


def plan_text(plan: rules.Plan) -> str:
    """The whole plan in plain English, with every rule's reference and effective dates."""
    d = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    e = d["eligibility"]
    lines = [
        f"{d.get('title') or d['name']} (plan '{d['name']}', hash {plan.content_hash[:12]})",
        f"Reference: {d.get('reference', '')}",
        "",
        f"Eligibility [{e.get('reference', '')}; in effect from {e.get('effective_from')}]:",
        f"  attached, with at least {e['min_headlines']} of the {len(d['headlines'])} headlines identified at A.",
    ]
    for h in d["headlines"]:
        lines += ["", f"Headline {h['code']}: {h['name']}  [{h.get('reference', '')}]"]
        for ind in h["indicators"]:
            lines += ["  " + x for x in _rule(f"indicator {ind['code']}", ind)]
            if ind.get("outcome"):
                lines += ["  " + x for x in _rule(f"outcome of {ind['code']} at E", ind["outcome"])]
        if h.get("outcome"):
            lines += ["  " + x for x in _rule("outcome at E", h["outcome"])]
    ce = d.get("continuous_employment")
    lines.append("")
    if ce:
        lines += _rule("Continuous employment", ce)
    else:
        lines.append("Continuous employment: no such route in this plan.")
    return "\n".join(lines)
