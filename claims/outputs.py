"""The output files of a claim batch, written from the plain data in ``claims.documents``.

Every writer writes atomically (a temporary file renamed into place) and
returns a :class:`WrittenFile`: the path and the SHA-256 of the bytes written,
for the run manifest and the batch record.

* Files naming people (the auditor's verification list as XLSX and HTML, the
  insufficient-evidence list) are created 0600; the others 0644.
* Every text value written to CSV or XLSX that begins with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return is neutralised by :func:`warehouse.neutralise`
  (a leading ``'``); :func:`read_completed_list` removes that quote again.
* Text layouts (the MHCLG claim file, the claim summary CSV, the
  insufficient-evidence list, the HTML evidence pack) are Jinja2 templates that
  a council can override; CSV cells go through the ``csv_cell`` filter, which
  neutralises and quotes, and HTML is autoescaped.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl
import polars as pl
import xlsxwriter

import rules
from claims.documents import (
    CLAIM_BASIS_NAMES,
    BatchInfo,
    BatchStats,
    ClaimRow,
    Member,
    MissingEvidence,
    SampledClaim,
)
from claims.render import csv_cell, plain_text, render
from sampling import REASON_ESCALATION, REASON_RANDOM, RULE_PREFIX
from warehouse import WarehouseError, atomic_writer, neutralise

__all__ = [
    "CLAIM_FILE_COLUMNS",
    "COMPLETED_COLUMNS",
    "INSUFFICIENT_COLUMNS",
    "SAMPLE_FRAME_COLUMNS",
    "EvidenceNode",
    "Formats",
    "HeadlineEvidence",
    "WrittenFile",
    "csv_cell",
    "csv_text",
    "evidence_tree",
    "headline_evidence",
    "manifest_document",
    "missing_evidence",
    "money_value",
    "read_completed_list",
    "write_bytes",
    "write_claim_file",
    "write_insufficient_csv",
    "write_manifest",
    "write_sample_frame_csv",
    "write_summary",
    "write_verification_html",
    "write_verification_xlsx",
]

CLAIM_FILE_TEMPLATE = "claim_file.csv.j2"
SUMMARY_TEMPLATE = "claim_summary.csv.j2"
INSUFFICIENT_TEMPLATE = "insufficient_evidence.csv.j2"
VERIFICATION_HTML_TEMPLATE = "verification.html.j2"

CLAIM_FILE_COLUMNS = (
    "la_code",
    "claim_window",
    "family_id",
    "claim_basis",
    "attached_on",
    "evaluated_on",
    "headline_count",
    "headlines",
    "verification",
)
INSUFFICIENT_COLUMNS = (
    "family_id",
    "locality",
    "lead_worker",
    "outcome",
    "person_id",
    "missing_source",
    "detail",
)
SAMPLE_FRAME_COLUMNS = (
    "family_id",
    "stratum",
    "hash",
    "rank",
    "stratum_size",
    "k",
    "sampled",
    "reason",
)
COMPLETED_COLUMNS = ("family_id", "result", "note", "auditor", "checked_on")
"""The columns :func:`read_completed_list` reads (``family_id`` and ``result`` are required)."""

VERIFICATION_SHEET = "verification"
ABOUT_SHEET = "about"
RESULTS = ("pass", "fail")
# Excel refuses longer cell text; the HTML pack always has the whole tree.
_XLSX_CELL_LIMIT = 32_767
_TRUNCATED = "\n... (truncated: the HTML evidence pack has the whole tree)"

REASON_TEXT = {
    REASON_RANDOM: "random draw: ranked within its stratum by SHA-256 of seed:family_id",
    REASON_ESCALATION: "escalation: added when its stratum's sample grew after failures",
}


class WrittenFile(NamedTuple):
    """A file an output writer wrote, and the SHA-256 (hex) of its bytes."""

    path: Path
    sha256: str


# ---------------------------------------------------------------------------
# plumbing


def write_bytes(path: Path, data: bytes, *, private: bool) -> WrittenFile:
    """Write a file atomically (owner-only when ``private``) and describe it."""
    with atomic_writer(path, private=private, mode="wb") as fh:
        fh.write(data)
    return WrittenFile(path, hashlib.sha256(data).hexdigest())


def _figure(value: rules.Figure) -> str:
    if value is None:
        return "missing"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _member_name(m: Member) -> str:
    name = " ".join(p for p in (m.given_name, m.family_name) if p) or f"person {m.person_id}"
    return f"{name} ({m.role})"


def _reason_text(reason: str) -> str:
    if reason.startswith(RULE_PREFIX):
        return f"always-verify rule {reason.removeprefix(RULE_PREFIX)}"
    return REASON_TEXT.get(reason, reason)


# ---------------------------------------------------------------------------
# 1. the MHCLG claim file


def write_claim_file(
    path: Path, info: BatchInfo, rows: Sequence[ClaimRow], override_dir: Path | None = None
) -> WrittenFile:
    """Write the MHCLG claim file from the ``claim_file.csv.j2`` template, rows by family_id.

    The template gets ``info``, ``columns`` and ``rows`` (dicts holding the
    ClaimRow fields, with ``claim_basis`` as its long name, ``claim_basis_code``
    the short one, ``headlines`` joined with ``;`` and ``headline_codes`` the tuple).
    No personal data: mode 0644.
    """
    view = [
        {
            "family_id": r.family_id,
            "claim_basis": CLAIM_BASIS_NAMES[r.claim_basis],
            "claim_basis_code": r.claim_basis,
            "attached_on": r.attached_on,
            "evaluated_on": r.evaluated_on,
            "headline_count": r.headline_count,
            "headlines": ";".join(r.headlines),
            "headline_codes": r.headlines,
            "verification": r.verification,
        }
        for r in sorted(rows, key=lambda r: r.family_id)
    ]
    text = render(
        CLAIM_FILE_TEMPLATE, override_dir, info=info, columns=CLAIM_FILE_COLUMNS, rows=view
    )
    return write_bytes(path, text.encode("utf-8"), private=False)


# ---------------------------------------------------------------------------
# 2. the claim summary


def _summary_items(info: BatchInfo, stats: BatchStats) -> list[tuple[str, Any]]:
    """The summary as (item, value) pairs: counts, money (Decimal), dates and reproducibility."""
    items: list[tuple[str, Any]] = [
        ("la_code", info.la_code),
        ("claim_window", info.window),
        ("evaluated_on", info.as_of),
        ("eligible", stats.eligible),
        ("claimable", stats.claimable),
    ]
    items += [
        (f"claimable_{name}", stats.claimable_by_basis.get(code, 0))
        for code, name in CLAIM_BASIS_NAMES.items()
    ]
    items += [
        ("sampled", stats.sampled),
        ("passed", stats.passed),
        ("failed", stats.failed),
        ("escalations", stats.escalations),
        ("submitted", stats.submitted),
    ]
    items += [
        (f"submitted_{name}", stats.submitted_by_basis.get(code, 0))
        for code, name in CLAIM_BASIS_NAMES.items()
    ]
    items += [
        ("payment_per_claim", money_value(stats.payment_per_claim)),
        ("payment_due", money_value(stats.payment_due)),
        ("plan_name", info.plan_name),
        ("plan_hash", info.plan_hash),
        ("seed", info.seed),
        ("rate", info.rate),
        ("strata", ";".join(info.strata)),
        ("load_batches", _load_batches_text(info)),
        ("software_version", info.software_version),
        ("generated_at", info.generated_at),
        ("schema_version", info.schema_version),
    ]
    return items


def money_value(value: Decimal) -> Decimal:
    """An amount of money to the penny, as it is written in output files."""
    return value.quantize(Decimal("0.01"))


def _load_batches_text(info: BatchInfo) -> str:
    return ";".join(f"{t}={b}" for t, b in sorted(info.load_batches.items()))


def write_summary(
    csv_path: Path,
    xlsx_path: Path,
    info: BatchInfo,
    stats: BatchStats,
    override_dir: Path | None = None,
) -> tuple[WrittenFile, WrittenFile]:
    """Write the claim summary as CSV (template ``claim_summary.csv.j2``) and as XLSX.

    Two columns, ``item`` and ``value``. Money is a Decimal with 2 dp: exact text
    in the CSV; in the XLSX a number with a £ format (a double only at the cell,
    exact for any realistic amount of pounds and pence). No personal data: 0644.
    """
    items = _summary_items(info, stats)
    text = render(SUMMARY_TEMPLATE, override_dir, info=info, stats=stats, items=items)
    written_csv = write_bytes(csv_path, text.encode("utf-8"), private=False)

    buffer = io.BytesIO()
    wb = _workbook(buffer, info)
    f = Formats(wb)
    ws = wb.add_worksheet("summary")
    ws.write_string(0, 0, "item", f.header)
    ws.write_string(0, 1, "value", f.header)
    ws.freeze_panes(1, 0)
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 70)
    for i, (item, value) in enumerate(items, start=1):
        ws.write_string(i, 0, neutralise(item), f.text)
        if isinstance(value, Decimal) and item.startswith("payment"):
            ws.write_number(i, 1, float(value), f.money)
        elif isinstance(value, Decimal):
            ws.write_string(i, 1, plain_text(value), f.text)  # the rate, exact as written
        elif isinstance(value, int):
            ws.write_number(i, 1, value, f.integer)
        elif isinstance(value, dt.datetime):
            ws.write_string(i, 1, value.isoformat(), f.text)
        elif isinstance(value, dt.date):
            ws.write_datetime(i, 1, dt.datetime.combine(value, dt.time()), f.date)
        else:
            ws.write_string(i, 1, neutralise(plain_text(value)), f.text)
    wb.close()
    written_xlsx = write_bytes(xlsx_path, buffer.getvalue(), private=False)
    return written_csv, written_xlsx


# ---------------------------------------------------------------------------
# evidence, as trees (HTML) and as text (XLSX)


@dataclass(frozen=True)
class EvidenceNode:
    """One result of an evidence tree, ready to show: every value already text."""

    state: str
    what: str
    person: str | None
    earliest: str | None
    figures: tuple[tuple[str, str], ...]
    rows: tuple[str, ...]
    children: tuple[EvidenceNode, ...]

    @property
    def state_label(self) -> str:
        """The state in words (``not met`` rather than ``not_met``)."""
        return self.state.replace("_", " ")


def evidence_tree(result: rules.Result, *, prune: bool = False) -> EvidenceNode:
    """``result`` and its parts as an :class:`EvidenceNode` tree.

    With ``prune``, a met result shows only its met parts (the ones that made it
    met: the people who identified an indicator, say), unless none is met (a
    ``not``), when it shows them all. Results that are not met are shown whole.
    """
    parts = result.parts
    if prune and result.met and any(p.met for p in parts):
        parts = tuple(p for p in parts if p.met)
    return EvidenceNode(
        state=result.state,
        what=result.what,
        person=result.person_id,
        earliest=result.earliest.isoformat() if result.earliest else None,
        figures=tuple((k, _figure(v)) for k, v in result.figures.items()),
        rows=tuple(str(r) for r in result.rows),
        children=tuple(evidence_tree(p, prune=prune) for p in parts),
    )


def _node_line(node: EvidenceNode) -> str:
    text = f"[{node.state_label}] {node.what}"
    if node.person:
        text += f" (person {node.person})"
    if node.earliest:
        text += f"; earliest {node.earliest}"
    if node.figures:
        text += "; " + ", ".join(f"{k}={v}" for k, v in node.figures)
    if node.rows:
        text += "; rows " + ", ".join(node.rows)
    return text


def _tree_text(node: EvidenceNode, depth: int = 0) -> Iterator[str]:
    yield "  " * depth + _node_line(node)
    for child in node.children:
        yield from _tree_text(child, depth + 1)


@dataclass(frozen=True)
class HeadlineEvidence:
    """The evidence for one identified headline: indicators at A, outcome at E."""

    code: str
    identification: EvidenceNode
    outcome: EvidenceNode | None

    def text(self, attached_on: dt.date | None, as_of: dt.date) -> str:
        """Both trees as indented text lines, for a spreadsheet cell."""
        a = attached_on.isoformat() if attached_on else "none"
        lines = [f"INDICATOR EVIDENCE (identified at A {a}):"]
        lines += _tree_text(self.identification, 1)
        lines.append(f"OUTCOME EVIDENCE (at E {as_of.isoformat()}):")
        if self.outcome is None:
            lines.append("  (no outcome evaluated)")
        else:
            lines += _tree_text(self.outcome, 1)
        return "\n".join(lines)


def headline_evidence(result: rules.FamilyResult) -> list[HeadlineEvidence]:
    """The evidence for each identified headline of a family, in plan order."""
    return [
        HeadlineEvidence(
            h.code,
            evidence_tree(h.identification, prune=True),
            evidence_tree(h.outcome) if h.outcome is not None else None,
        )
        for h in result.headlines
        if h.identified
    ]


@dataclass(frozen=True)
class _ClaimView:
    claim: SampledClaim
    anchor: str
    basis_name: str
    reason_text: str
    members: tuple[Member, ...]
    member_names: tuple[str, ...]
    headlines: tuple[HeadlineEvidence, ...]
    basis_evidence: EvidenceNode

    @property
    def family_id(self) -> str:
        return self.claim.family_id


def _anchor(family_id: str) -> str:
    """An HTML id for a family: letters, digits and ``-`` kept, anything else ``_<hex>_``."""
    return "family-" + re.sub(r"[^A-Za-z0-9-]", lambda m: f"_{ord(m.group()):x}_", family_id)


def _view(claim: SampledClaim) -> _ClaimView:
    r = claim.evidence
    basis_result = r.ce if claim.basis == "ce" else r.ssp
    return _ClaimView(
        claim=claim,
        anchor=_anchor(claim.family_id),
        basis_name=CLAIM_BASIS_NAMES.get(claim.basis, claim.basis),
        reason_text=_reason_text(claim.reason),
        members=claim.members,
        member_names=tuple(_member_name(m) for m in claim.members),
        headlines=tuple(headline_evidence(r)),
        # SSP's parts are the headline outcomes, already shown per headline
        basis_evidence=(
            evidence_tree(basis_result)
            if claim.basis == "ce"
            else EvidenceNode(basis_result.state, basis_result.what, None, None, (), (), ())
        ),
    )


# ---------------------------------------------------------------------------
# 3. the verification list as XLSX


class Formats:
    """The cell formats every workbook this package writes uses."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.header = wb.add_format(
            {"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "valign": "top", "text_wrap": True}
        )
        self.text = wb.add_format({"valign": "top"})
        self.wrap = wb.add_format({"valign": "top", "text_wrap": True})
        self.evidence = wb.add_format(
            {"valign": "top", "text_wrap": True, "font_name": "Consolas", "font_size": 9}
        )
        self.date = wb.add_format({"valign": "top", "num_format": "yyyy-mm-dd"})
        self.integer = wb.add_format({"valign": "top", "num_format": "0"})
        self.money = wb.add_format({"valign": "top", "num_format": "£#,##0.00"})
        self.entry = wb.add_format({"valign": "top", "bg_color": "#FFF8DC", "border": 1})
        self.entry_date = wb.add_format(
            {"valign": "top", "bg_color": "#FFF8DC", "border": 1, "num_format": "yyyy-mm-dd"}
        )
        self.title = wb.add_format({"bold": True, "font_size": 14})


def _workbook(buffer: io.BytesIO, info: BatchInfo) -> xlsxwriter.Workbook:
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    # the creation time is the batch's, so the same batch gives the same bytes
    created = info.generated_at.replace(tzinfo=None)
    wb.set_properties(
        {"title": f"claim batch {info.window}", "author": "tfclaims", "created": created}
    )
    return wb


def _cell_text(text: str) -> str:
    text = neutralise(text)
    if len(text) > _XLSX_CELL_LIMIT:
        text = text[: _XLSX_CELL_LIMIT - len(_TRUNCATED)] + _TRUNCATED
    return str(text)


def _write_text(ws: Any, row: int, col: int, value: str | None, fmt: Any) -> None:
    """Text through write_string, neutralised, so nothing is ever read as a formula."""
    if value is None or value == "":
        ws.write_blank(row, col, None, fmt)
    else:
        ws.write_string(row, col, _cell_text(value), fmt)


def _write_date(ws: Any, row: int, col: int, value: dt.date | None, fmt: Any) -> None:
    if value is None:
        ws.write_blank(row, col, None, fmt)
    else:
        ws.write_datetime(row, col, dt.datetime.combine(value, dt.time()), fmt)


def _headline_columns(claims: Sequence[SampledClaim]) -> list[str]:
    """Every headline identified in some sampled claim, in plan order."""
    seen: dict[str, None] = {}
    for c in claims:
        for h in c.evidence.headlines:
            if h.identified:
                seen.setdefault(h.code, None)
    order = {h.code: i for c in claims[:1] for i, h in enumerate(c.evidence.headlines)}
    return sorted(seen, key=lambda code: (order.get(code, len(order)), code))


def write_verification_xlsx(
    path: Path, info: BatchInfo, claims: Sequence[SampledClaim]
) -> WrittenFile:
    """Write the auditor's verification list as XLSX (mode 0600: it names people).

    Sheet ``verification``: one row per sampled claim (by family_id) with the
    family, its members, basis, why sampled, stratum, A, E, one evidence cell
    per identified headline (``evidence: <code>``; indicator evidence at A and
    outcome evidence at E as indented text), the continuous-employment evidence
    for CE claims, then the auditor's columns ``result`` (pass/fail, validated),
    ``note``, ``auditor`` and ``checked_on`` (a date, validated), pre-filled from
    any recorded verification. Sheet ``about``: the batch and instructions.
    """
    claims = sorted(claims, key=lambda c: c.family_id)
    headlines = _headline_columns(claims)
    with_ce = any(c.basis == "ce" for c in claims)
    buffer = io.BytesIO()
    wb = _workbook(buffer, info)
    f = Formats(wb)
    ws = wb.add_worksheet(VERIFICATION_SHEET)

    columns: list[tuple[str, float]] = [
        ("family_id", 16),
        ("locality", 14),
        ("lead_worker", 18),
        ("members", 34),
        ("claim_basis", 22),
        ("why_sampled", 18),
        ("stratum", 18),
        ("attached_on", 12),
        ("evaluated_on", 12),
    ]
    columns += [(f"evidence: {code}", 80) for code in headlines]
    if with_ce:
        columns.append(("evidence: continuous_employment", 80))
    columns += [("result", 10), ("note", 36), ("auditor", 18), ("checked_on", 13)]
    col = {name: i for i, (name, _) in enumerate(columns)}
    for i, (name, width) in enumerate(columns):
        ws.write_string(0, i, neutralise(name), f.header)
        ws.set_column(i, i, width)
    ws.set_row(0, 30)

    for r, claim in enumerate(claims, start=1):
        view = _view(claim)
        _write_text(ws, r, col["family_id"], claim.family_id, f.text)
        _write_text(ws, r, col["locality"], claim.locality, f.text)
        _write_text(ws, r, col["lead_worker"], claim.lead_worker, f.wrap)
        _write_text(ws, r, col["members"], "; ".join(view.member_names), f.wrap)
        _write_text(ws, r, col["claim_basis"], view.basis_name, f.wrap)
        _write_text(ws, r, col["why_sampled"], claim.reason, f.text)
        _write_text(ws, r, col["stratum"], claim.stratum, f.text)
        _write_date(ws, r, col["attached_on"], claim.attached_on, f.date)
        _write_date(ws, r, col["evaluated_on"], claim.as_of, f.date)
        tallest = 1
        by_code = {h.code: h for h in view.headlines}
        for code in headlines:
            h = by_code.get(code)
            text = h.text(claim.evidence.attached_on, claim.as_of) if h else None
            _write_text(ws, r, col[f"evidence: {code}"], text, f.evidence)
            tallest = max(tallest, text.count("\n") + 1 if text else 1)
        if with_ce:
            ce_text = "\n".join(_tree_text(view.basis_evidence)) if claim.basis == "ce" else None
            _write_text(ws, r, col["evidence: continuous_employment"], ce_text, f.evidence)
            tallest = max(tallest, ce_text.count("\n") + 1 if ce_text else 1)
        v = claim.verification
        _write_text(ws, r, col["result"], v.result, f.entry)
        _write_text(ws, r, col["note"], v.note, f.entry)
        _write_text(ws, r, col["auditor"], v.auditor, f.entry)
        _write_date(ws, r, col["checked_on"], v.checked_on, f.entry_date)
        ws.set_row(r, min(409, 12 * tallest + 4))

    last_row, last_col = len(claims), len(columns) - 1
    ws.freeze_panes(1, 1)
    ws.autofilter(0, 0, max(last_row, 1), last_col)
    if claims:
        ws.data_validation(
            1,
            col["result"],
            last_row,
            col["result"],
            {
                "validate": "list",
                "source": list(RESULTS),
                "input_title": "Result",
                "input_message": "pass or fail",
                "error_title": "Result",
                "error_message": "Enter pass or fail.",
            },
        )
        ws.data_validation(
            1,
            col["checked_on"],
            last_row,
            col["checked_on"],
            {
                "validate": "date",
                "criteria": "between",
                "minimum": dt.date(2015, 1, 1),
                "maximum": dt.date(2099, 12, 31),
                "input_title": "Checked on",
                "input_message": "The date you checked the claim (yyyy-mm-dd).",
                "error_title": "Checked on",
                "error_message": "Enter a date, e.g. 2018-03-15.",
            },
        )

    about = wb.add_worksheet(ABOUT_SHEET)
    _write_about(about, f, info, len(claims))
    wb.close()
    return write_bytes(path, buffer.getvalue(), private=True)


def _about_items(info: BatchInfo) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [
        ("claim window", info.window),
        ("E (evaluated on)", info.as_of),
        ("council (ONS code)", info.la_code),
        ("plan", info.plan_name),
        ("plan hash", info.plan_hash),
        ("sample seed", info.seed),
        ("sample rate", plain_text(info.rate)),
        ("strata", " by ".join(info.strata) or "(none)"),
    ]
    for table, batch in sorted(info.load_batches.items()):
        items.append((f"load batch: {table}", str(batch)))
    for batch, files in sorted(info.load_files.items()):
        for name, sha in sorted(files.items()):
            items.append((f"load batch {batch} file {name}", f"sha256 {sha}"))
    items += [
        ("generated at", info.generated_at.isoformat()),
        ("software version", info.software_version),
        ("output schema version", str(info.schema_version)),
    ]
    return items


_EVIDENCE_INSTRUCTIONS = (
    "Indicator evidence shows why each headline was identified at attachment (A); "
    "outcome evidence shows the progress at the evaluation date (E). Every source row "
    "is named table#row: the row number in that table's extract file (row 1 is the header). "
    "Check them against the source systems.",
)
AUDITOR_INSTRUCTIONS = (
    "Each row of the verification sheet is one sampled claim, with one evidence cell "
    "per identified headline.",
    *_EVIDENCE_INSTRUCTIONS,
    "Fill in result (pass or fail), a note (required for a fail), your name in auditor, "
    "and checked_on (the date you checked, yyyy-mm-dd).",
    "Do not change family_id or the order of the rows and columns. Return this file "
    "(or a CSV export of it) to the claims team.",
    "This file names people: keep it on council systems and delete copies when done.",
)
PAPER_INSTRUCTIONS = (
    "Each family below starts on a new page: its members, why its claim was sampled, "
    "and the evidence for every headline identified.",
    *_EVIDENCE_INSTRUCTIONS,
    "Tick pass or fail in the result box at the end of the family's section, write a note "
    "(required for a fail), your name and the date you checked.",
    "The claims team enters the results from the boxes, or you may fill in the "
    "verification list spreadsheet instead.",
)


def _write_about(ws: Any, f: Formats, info: BatchInfo, sampled: int) -> None:
    ws.set_column(0, 0, 34)
    ws.set_column(1, 1, 90)
    ws.write_string(0, 0, f"Claim batch {neutralise(info.window)}: verification list", f.title)
    ws.write_string(1, 0, "item", f.header)
    ws.write_string(1, 1, "value", f.header)
    r = 2
    for item, value in [*_about_items(info), ("sampled claims", str(sampled))]:
        ws.write_string(r, 0, neutralise(item), f.text)
        if isinstance(value, dt.date):
            _write_date(ws, r, 1, value, f.date)
        else:
            _write_text(ws, r, 1, value, f.text)
        r += 1
    r += 1
    ws.write_string(r, 0, "Instructions for the auditor", f.title)
    for i, line in enumerate(AUDITOR_INSTRUCTIONS, start=1):
        ws.write_string(r + i, 0, str(i), f.text)
        ws.write_string(r + i, 1, line, f.wrap)


# ---------------------------------------------------------------------------
# 4. the verification list as an HTML evidence pack


def write_verification_html(
    path: Path,
    info: BatchInfo,
    claims: Sequence[SampledClaim],
    override_dir: Path | None = None,
) -> WrittenFile:
    """Write the printable evidence pack from ``verification.html.j2`` (mode 0600).

    The template gets ``info``, ``batch`` (the about items), ``instructions`` and
    ``claims``: per sampled claim (by family_id) its ``claim``, ``anchor`` (a
    safe HTML id), ``basis_name``, ``reason_text``, ``members``,
    ``member_names``, ``headlines`` (each with ``identification`` and
    ``outcome`` :class:`EvidenceNode` trees) and ``basis_evidence``.
    """
    views = [_view(c) for c in sorted(claims, key=lambda c: c.family_id)]
    files = [
        (batch, name, sha)
        for batch, names in sorted(info.load_files.items())
        for name, sha in sorted(names.items())
    ]
    text = render(
        VERIFICATION_HTML_TEMPLATE,
        override_dir,
        info=info,
        batch=_about_items(info),
        load_files=files,
        instructions=PAPER_INSTRUCTIONS,
        claims=views,
    )
    return write_bytes(path, text.encode("utf-8"), private=True)


# ---------------------------------------------------------------------------
# 5. reading back the completed verification list


def _unneutralise(value: str) -> str:
    """Undo :func:`warehouse.neutralise`: drop a leading ``'`` it would have added."""
    if value.startswith("'") and neutralise(value[1:]) == value:
        return value[1:]
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")


class _Cell(NamedTuple):
    value: Any
    formula: bool


def _xlsx_rows(path: Path) -> Iterator[list[_Cell]]:
    try:
        wb = openpyxl.load_workbook(path, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not XLSX
        raise WarehouseError(f"{path}: not a readable XLSX file ({exc})") from exc
    try:
        ws = wb[VERIFICATION_SHEET] if VERIFICATION_SHEET in wb.sheetnames else wb.active
        for row in ws.iter_rows():
            yield [_Cell(_xml_controls(c.value), c.data_type == "f") for c in row]
    finally:
        wb.close()


_XML_ESCAPE = re.compile(r"_x00([01][0-9A-Fa-f])_")


def _xml_controls(value: Any) -> Any:
    """Control characters that XLSX stores escaped (``_x000D_`` for a CR), which openpyxl
    leaves escaped: turned back into the characters (so a neutralised CR round-trips)."""
    if isinstance(value, str) and "_x00" in value:
        return _XML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
    return value


def _csv_rows(path: Path) -> Iterator[list[_Cell]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                yield [_Cell(v, False) for v in row]
    except UnicodeDecodeError as exc:
        raise WarehouseError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _text(value: Any, *, strip: bool = True) -> str | None:
    """A cell as text, the neutralising quote removed; None when blank.

    Family ids are read with ``strip=False`` so that they round-trip exactly.
    """
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, str):
        return str(value)
    if not value.strip():
        return None
    text = _unneutralise(value)
    return text.strip() if strip else text


def read_completed_list(path: Path) -> list[dict[str, Any]]:
    """Read the verification list an auditor returns, as ``.xlsx`` or a ``.csv`` export of it.

    Returns one dict per row that has a family_id, with ``row`` (the row
    number in the file, the header being row 1), ``family_id``, ``result``
    (``"pass"``, ``"fail"`` or None when blank), ``note``, ``auditor`` (text or
    None) and ``checked_on`` (a date or None; real Excel dates and ISO
    ``YYYY-MM-DD`` text are accepted). The quote that neutralising added is
    removed, so family ids round-trip. A bad value, a formula, a missing
    column or a family listed twice raises :class:`warehouse.WarehouseError`
    naming the file, the row and the column. Whether each family belongs to
    the batch is for the caller to check.
    """
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".csv") and not path.is_file():
        raise WarehouseError(f"{path}: no such file")
    if suffix == ".xlsx":
        rows = _xlsx_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise WarehouseError(f"{path}: a completed verification list must be .xlsx or .csv")
    header = next(rows, None)
    if header is None:
        raise WarehouseError(f"{path}: the file is empty")
    names = [str(c.value).strip().lower() if c.value is not None else "" for c in header]
    where: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in COMPLETED_COLUMNS and name not in where:
            where[name] = i
    for required in ("family_id", "result"):
        if required not in where:
            raise WarehouseError(f"{path}: row 1: no column {required!r} in the header")

    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row_no, cells in enumerate(rows, start=2):

        def cell(name: str, cells: list[_Cell] = cells, row_no: int = row_no) -> Any:
            i = where.get(name)
            if i is None or i >= len(cells):
                return None
            c = cells[i]
            if c.formula:
                raise WarehouseError(
                    f"{path}: row {row_no}, column {name!r}: a formula ({c.value!r}), not a value"
                )
            return c.value

        family_id = _text(cell("family_id"), strip=False)
        if family_id is None:
            if any(_text(cell(n)) for n in COMPLETED_COLUMNS[1:]):
                raise WarehouseError(f"{path}: row {row_no}, column 'family_id': blank")
            continue
        if family_id in seen:
            raise WarehouseError(
                f"{path}: row {row_no}, column 'family_id': {family_id!r} "
                f"is already on row {seen[family_id]}"
            )
        seen[family_id] = row_no
        result = _text(cell("result"))
        if result is not None:
            result = result.lower()
            if result not in RESULTS:
                raise WarehouseError(
                    f"{path}: row {row_no}, column 'result': {result!r} is not pass or fail"
                )
        out.append(
            {
                "row": row_no,
                "family_id": family_id,
                "result": result,
                "note": _text(cell("note")),
                "auditor": _text(cell("auditor")),
                "checked_on": _date(cell("checked_on"), path, row_no),
            }
        )
    return out


def _date(value: Any, path: Path, row_no: int) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = _unneutralise(value.strip())
        if _ISO_DATE.fullmatch(text):
            try:
                return dt.date.fromisoformat(text[:10])
            except ValueError:
                pass
    raise WarehouseError(
        f"{path}: row {row_no}, column 'checked_on': {value!r} is not a date "
        "(use a date cell or YYYY-MM-DD)"
    )


# ---------------------------------------------------------------------------
# 6. the insufficient-evidence list


def write_insufficient_csv(
    path: Path,
    info: BatchInfo,
    rows: Sequence[MissingEvidence],
    override_dir: Path | None = None,
) -> WrittenFile:
    """Write the insufficient-evidence list from ``insufficient_evidence.csv.j2`` (mode 0600).

    Columns: family_id, locality, lead_worker, outcome, person_id,
    missing_source, detail; rows by family, outcome, person and source.
    """
    ordered = sorted(
        rows, key=lambda m: (m.family_id, m.outcome, m.person_id or "", m.source, m.detail)
    )
    text = render(
        INSUFFICIENT_TEMPLATE, override_dir, info=info, columns=INSUFFICIENT_COLUMNS, rows=ordered
    )
    return write_bytes(path, text.encode("utf-8"), private=True)


# ---------------------------------------------------------------------------
# 7. what evidence is missing


_TERM_PRIMITIVES = {"term_rate", "terms_recorded"}  # term selection always reads attendance
_TABLE_WORD = re.compile(r"\b(" + "|".join(sorted(rules.TABLES, key=len, reverse=True)) + r")\b")


def _unknown_leaves(
    result: rules.Result, person: str | None = None
) -> Iterator[tuple[rules.Result, str | None, rules.Result | None]]:
    """(leaf, person, parent): unknown results with no unknown part, reached through unknowns."""
    person = result.person_id or person
    unknown_parts = [p for p in result.parts if p.state == "unknown"]
    if not unknown_parts:
        yield result, person, None
        return
    for part in unknown_parts:
        for leaf, who, parent in _unknown_leaves(part, person):
            yield leaf, who, parent if parent is not None else result


def _tables_named(*results: rules.Result) -> list[str]:
    found: dict[str, None] = {}
    for r in results:
        for ref in r.all_rows():
            found.setdefault(ref.table, None)
        for m in _TABLE_WORD.finditer(r.what):
            found.setdefault(m.group(1), None)
    return list(found)


def _figures_text(figures: Mapping[str, rules.Figure]) -> str:
    return ", ".join(f"{k}={_figure(v)}" for k, v in figures.items())


def _diagnose(
    leaf: rules.Result, person: str | None, parent: rules.Result | None
) -> list[tuple[str, str]]:
    """(source, detail) pairs for one unknown leaf."""
    context = parent.what if parent is not None and leaf.what == "evidence missing" else leaf.what
    missing = leaf.figures.get("missing")
    if isinstance(missing, str) and missing:
        out = []
        for item in missing.split(", "):
            table = item.removesuffix(" never loaded")
            out.append((table, f"the {table} extract was never loaded, so '{context}' is unknown"))
        return out
    if "birth_date" in leaf.figures and leaf.figures["birth_date"] is None:
        who = f"person {person}" if person else "a person"
        return [("people", f"no birth date for {who}, so '{leaf.what}' is unknown")]
    if leaf.figures.get("terms") == 0:
        return [("attendance", f"no attendance rows in the terms '{leaf.what}' reads")]
    # a guard step that made the rule unknown: 'unless terms_recorded', 'if snapshot_...'
    for guard in leaf.parts:
        words = guard.what.split(" ", 1)
        if len(words) != 2 or words[0] not in ("if", "unless"):
            continue
        primitive = words[1]
        tables = _tables_named(guard) or (["attendance"] if primitive in _TERM_PRIMITIVES else [])
        source = ", ".join(tables) or "unknown"
        if primitive == "terms_recorded":
            detail = (
                "no attendance rows for terms in the window the outcome needs "
                f"(terms recorded: {_figure(guard.figures.get('terms'))}, "
                f"needed {_figure(guard.figures.get('threshold'))})"
            )
        elif primitive == "snapshot_kinds_missing":
            detail = (
                f"no {source} snapshot in the current window for kind(s) held in the baseline: "
                f"{_figure(guard.figures.get('missing_kinds'))}"
            )
        else:
            detail = f"'{leaf.what}' is unknown because {guard.what} is {guard.state}"
            if guard.figures:
                detail += f" ({_figures_text(guard.figures)})"
        return [(source, detail)]
    tables = _tables_named(leaf)
    detail = f"'{leaf.what}' is unknown"
    if leaf.figures:
        detail += f" ({_figures_text(leaf.figures)})"
    return [(", ".join(tables) or "unknown", detail)]


def missing_evidence(
    result: rules.FamilyResult, locality: str, lead_worker: str | None
) -> list[MissingEvidence]:
    """What holds back an insufficient-evidence family: every ``unknown`` leaf of its SSP tree.

    For each identified headline's outcome (or, where the plan gives each
    indicator its own outcome, each of those), every unknown result with no
    unknown part, reached through unknown results, gives one row per missing
    source: the outcome key (``education.outcome``, ``health.mental_health.outcome``),
    the person (the nearest ``person_id`` on the way down), the source table
    and what is missing in words. Meant for families whose
    ``insufficient_evidence`` is true; for others it lists their unknowns all
    the same.
    """
    found: list[MissingEvidence] = []
    for h in result.headlines:
        if not h.identified or h.outcome is None:
            continue
        own = [(f"{h.code}.{i.code}.outcome", i.outcome) for i in h.indicators if i.outcome]
        targets = own or [(f"{h.code}.outcome", h.outcome)]
        for key, outcome in targets:
            if outcome.state != "unknown":
                continue
            for leaf, person, parent in _unknown_leaves(outcome):
                for source, detail in _diagnose(leaf, person, parent):
                    item = MissingEvidence(
                        result.family_id, locality, lead_worker, key, person, source, detail
                    )
                    if item not in found:
                        found.append(item)
    return found


# ---------------------------------------------------------------------------
# 8. the run manifest


def manifest_document(
    info: BatchInfo, stats: BatchStats, files: Mapping[str, str]
) -> dict[str, Any]:
    """The run manifest as a JSON-ready dict (Decimals as exact strings, dates ISO)."""
    return {
        "schema_version": info.schema_version,
        "software_version": info.software_version,
        "generated_at": info.generated_at.isoformat(),
        "la_code": info.la_code,
        "window": info.window,
        "as_of": info.as_of.isoformat(),
        "plan": {"name": info.plan_name, "hash": info.plan_hash},
        "load_batches": dict(info.load_batches),
        "load_files": {str(b): dict(names) for b, names in info.load_files.items()},
        "sampling": {"seed": info.seed, "rate": plain_text(info.rate), "strata": list(info.strata)},
        "counts": {
            "eligible": stats.eligible,
            "claimable": stats.claimable,
            "claimable_by_basis": {
                CLAIM_BASIS_NAMES.get(k, k): v for k, v in stats.claimable_by_basis.items()
            },
            "sampled": stats.sampled,
            "passed": stats.passed,
            "failed": stats.failed,
            "escalations": stats.escalations,
            "submitted": stats.submitted,
            "submitted_by_basis": {
                CLAIM_BASIS_NAMES.get(k, k): v for k, v in stats.submitted_by_basis.items()
            },
        },
        "payment": {
            "per_claim": plain_text(money_value(stats.payment_per_claim)),
            "due": plain_text(money_value(stats.payment_due)),
        },
        "files": dict(files),
    }


def write_manifest(
    path: Path, info: BatchInfo, stats: BatchStats, files: Mapping[str, str]
) -> WrittenFile:
    """Write the run manifest: JSON, pretty-printed, keys sorted; ``files`` maps name -> SHA-256.

    Holds no personal data (mode 0644). Decimals are written as exact strings.
    """
    text = json.dumps(
        manifest_document(info, stats, files), indent=2, sort_keys=True, ensure_ascii=False
    )
    return write_bytes(path, (text + "\n").encode("utf-8"), private=False)


# ---------------------------------------------------------------------------
# 9. the sample frame


def write_sample_frame_csv(path: Path, info: BatchInfo, frame: pl.DataFrame) -> WrittenFile:
    """Write every claim's place in the draw, for an auditor to re-perform the sample.

    ``frame`` is the sample frame from ``sampling.draw_sample``/``escalate``
    (at least the columns of :data:`SAMPLE_FRAME_COLUMNS`; ``rate`` is kept
    after ``stratum_size`` when present). Rows by stratum then rank;
    ``sampled`` as true/false. No names: mode 0644. ``info`` is accepted for
    symmetry with the other writers (the seed is in the manifest and summary).
    """
    missing = [c for c in SAMPLE_FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the sample frame lacks column(s) {missing}")
    columns = list(SAMPLE_FRAME_COLUMNS)
    if "rate" in frame.columns:
        columns.insert(columns.index("stratum_size") + 1, "rate")
    data = frame.select(columns).sort("stratum", "rank", "family_id")
    return write_bytes(path, csv_text(columns, data.iter_rows()).encode("utf-8"), private=False)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with every cell protected against formula injection (see :func:`csv_cell`)."""
    out = [",".join(csv_cell(h) for h in header)]
    out += [",".join(csv_cell(v) for v in row) for row in rows]
    return "\n".join(out) + "\n"
