"""The monthly claim batch: prepare, verify, finalise, withdraw, status.

Each step evaluates or reads what it needs, writes its output files into a
staging folder, commits its database transaction, and only then moves the
files into the window's folder. A step killed at any point leaves the
database as it was before the step or as it is after it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
from pydantic import ValidationError
from sqlalchemy import Engine

import rules
import sampling
import warehouse
from claims import evaluation, outputs
from claims.documents import (
    BatchInfo,
    BatchStats,
    ClaimRow,
    Member,
    MissingEvidence,
    SampledClaim,
    Verification,
)
from claims.settings import Settings

WINDOW_RE = re.compile(warehouse.WINDOW_PATTERN)

# Output file names in a window's folder. The ones marked personal hold names.
CLAIM_FILE = "mhclg-claim-file.csv"
SUMMARY_CSV = "claim-summary.csv"
SUMMARY_XLSX = "claim-summary.xlsx"
VERIFICATION_XLSX = "verification-list.xlsx"
VERIFICATION_HTML = "verification-evidence-pack.html"
INSUFFICIENT_CSV = "insufficient-evidence.csv"
SAMPLE_FRAME_CSV = "sample-frame.csv"
MANIFEST = "manifest.json"
PERSONAL = {VERIFICATION_XLSX, VERIFICATION_HTML, INSUFFICIENT_CSV}


def parse_window(window: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month), or a one-line error."""
    m = WINDOW_RE.fullmatch(window)
    if not m:
        raise warehouse.WarehouseError(f"claim window {window!r} is not in the form YYYY-MM")
    return int(m.group(1)), int(m.group(2))


def window_end(window: str) -> dt.date:
    """The last day of the window's month: E's default."""
    year, month = parse_window(window)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def sha256_file(path: Path) -> str:
    """The file's SHA-256 in hex."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sampling_settings(settings: Settings, rate: Decimal | None) -> sampling.SamplingSettings:
    """The sampling settings in force, with an explicit rate if given."""
    base = settings.sampling
    if rate is not None:
        ladder = tuple(sorted({rate, *(r for r in base.ladder if r > rate)}))
        base = base.model_copy(update={"rate": rate, "ladder": ladder})
    try:  # model_copy does not validate
        return sampling.SamplingSettings.model_validate(base.model_dump())
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise warehouse.BatchError(f"--rate {rate}: {message}") from None


# ----------------------------------------------------------------------------- evidence


def _members(people: pl.DataFrame, family_ids: list[str]) -> dict[str, tuple[Member, ...]]:
    """The members of each of ``family_ids`` (sorted by person id); people is read once."""
    found: dict[str, list[Member]] = {f: [] for f in family_ids}
    rows = people.filter(pl.col("family_id").is_in(family_ids)).sort("person_id")
    for r in rows.iter_rows(named=True):
        found[r["family_id"]].append(
            Member(r["person_id"], r["role"], r["given_name"], r["family_name"], r["birth_date"])
        )
    return {f: tuple(m) for f, m in found.items()}


def _source_table(sources: rules.Sources, engine: Engine, name: str) -> pl.DataFrame:
    """A table as the evaluation read it (no second read), or as the warehouse has it when it
    was never loaded (empty)."""
    frame = sources.tables.get(name)
    return warehouse.read_table(engine, name) if frame is None else frame.collect()


def _sampled_ids(frame: pl.DataFrame) -> list[str]:
    return frame.filter(pl.col("sampled")).get_column("family_id").to_list()


def _tally(results: pl.DataFrame) -> tuple[int, int]:
    """How many results passed and how many failed."""
    return (
        results.filter(pl.col("result") == "pass").height,
        results.filter(pl.col("result") == "fail").height,
    )


def _states_json(row: dict[str, object]) -> str:
    """The evaluation's states and earliest dates for one family, as stored evidence."""
    states = {
        k.removeprefix("state:"): {
            "state": row[k],
            "earliest": row.get("earliest:" + k.removeprefix("state:")),
        }
        for k in row
        if k.startswith("state:") and row[k] is not None
    }
    return json.dumps(states, sort_keys=True, default=str)


def _load_files(engine: Engine, batches: dict[str, int]) -> dict[int, dict[str, str]]:
    ids = sorted(set(batches.values()))
    return {b.id: {f.file: f.sha256 for f in b.files} for b in warehouse.load_batches(engine, ids)}


# ----------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class StepResult:
    """What a batch step did: the batch, its folder, files written and counts."""

    window: str
    as_of: dt.date
    status: str
    folder: Path
    files: dict[str, str]
    counts: dict[str, int]
    escalations: list[warehouse.EscalationRecord] = field(default_factory=list)
    seed: str = ""


def _stage(folder: Path) -> Path:
    staging = folder.parent / f".{folder.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, folder: Path) -> None:
    """Move staged files into the window folder (each by an atomic rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in staging.iterdir():
        os.replace(f, folder / f.name)
    shutil.rmtree(staging, ignore_errors=True)


def _sample_frame(lines: pl.DataFrame, seed: str, s: sampling.SamplingSettings) -> pl.DataFrame:
    # the columns the settings stratify by and the always-verify rules read
    wanted = dict.fromkeys(["family_id", *s.strata, *(r.column for r in s.always)])
    return sampling.draw_sample(lines.select([c for c in wanted if c in lines.columns]), seed, s)


def _replay(
    frame: pl.DataFrame, log: list[warehouse.EscalationRecord], s: sampling.SamplingSettings
) -> pl.DataFrame:
    """The sample frame as it stands after the logged escalations (escalate is deterministic)."""
    for step in log:
        frame = sampling.escalate(frame, {step.stratum: step.failures}, s, step.at).sample
    return frame


def _evidence(
    plan: rules.Plan, sources: rules.Sources, as_of: dt.date, ids: list[str]
) -> dict[str, rules.FamilyResult]:
    if not ids:
        return {}
    restricted = evaluation.restrict_sources(sources, ids)
    return {r.family_id: r for r in rules.evaluate_reference(plan, restricted, as_of, ids)}


def _sampled_claims(
    lines: pl.DataFrame,
    frame: pl.DataFrame,
    people: pl.DataFrame,
    evidence: dict[str, rules.FamilyResult],
    results: pl.DataFrame,
    as_of: dt.date,
) -> list[SampledClaim]:
    sampled = frame.filter(pl.col("sampled")).join(lines, on="family_id")
    by_family = {r["family_id"]: r for r in results.iter_rows(named=True)}
    members = _members(people, sampled.get_column("family_id").to_list())
    out = []
    for r in sampled.sort("stratum", "rank").iter_rows(named=True):
        v = by_family.get(r["family_id"])
        out.append(
            SampledClaim(
                family_id=r["family_id"],
                locality=r["locality"],
                lead_worker=r["lead_worker"],
                basis=r["basis"],
                reason=r["reason"],
                stratum=r["stratum"],
                attached_on=r["attached_on"],
                as_of=as_of,
                headlines=tuple(h for h in r["headlines"].split(";") if h),
                members=members[r["family_id"]],
                evidence=evidence[r["family_id"]],
                verification=Verification(v["result"], v["note"], v["auditor"], v["checked_on"])
                if v
                else Verification(),
            )
        )
    return out


def _info(
    settings: Settings,
    engine: Engine,
    batch: warehouse.BatchRecord,
    s: sampling.SamplingSettings,
    at: dt.datetime,
) -> BatchInfo:
    return BatchInfo(
        window=batch.window,
        as_of=batch.as_of,
        la_code=settings.la_code,
        plan_name=batch.plan_name,
        plan_hash=batch.plan_hash,
        seed=batch.seed,
        rate=s.rate,
        strata=s.strata,
        software_version=evaluation.software_version(),
        load_batches=batch.load_batches,
        load_files=_load_files(engine, batch.load_batches),
        generated_at=at,
    )


def _write_verification(
    staging: Path,
    info: BatchInfo,
    claims: list[SampledClaim],
    frame: pl.DataFrame,
    override: Path | None,
) -> dict[str, str]:
    files = {
        VERIFICATION_XLSX: outputs.write_verification_xlsx(
            staging / VERIFICATION_XLSX, info, claims
        )[1],
        VERIFICATION_HTML: outputs.write_verification_html(
            staging / VERIFICATION_HTML, info, claims, override_dir=override
        )[1],
        SAMPLE_FRAME_CSV: outputs.write_sample_frame_csv(staging / SAMPLE_FRAME_CSV, info, frame)[
            1
        ],
    }
    return files


def _stats(
    eligible: int,
    lines: pl.DataFrame,
    frame: pl.DataFrame,
    results: pl.DataFrame,
    settings: Settings,
    escalations: int,
) -> BatchStats:
    submitted = (
        lines.filter(pl.col("status") == "submitted")
        if "status" in lines.columns
        else lines.head(0)
    )
    passed, failed = _tally(results)
    return BatchStats(
        eligible=eligible,
        claimable=lines.height,
        claimable_by_basis=dict(Counter(lines.get_column("basis").to_list())),
        sampled=int(frame.get_column("sampled").sum()),
        passed=passed,
        failed=failed,
        submitted=submitted.height,
        submitted_by_basis=dict(Counter(submitted.get_column("basis").to_list())),
        payment_per_claim=settings.payment_per_claim,
        escalations=escalations,
    )


def prepare(
    settings: Settings,
    engine: Engine,
    window: str,
    *,
    as_of: dt.date | None = None,
    rate: Decimal | None = None,
    seed: str | None = None,
    replace: bool = False,
    plan_path: Path | None = None,
) -> StepResult:
    """Evaluate at E, take every claimable family into the window's batch, draw the
    sample and write the verification list, the insufficient-evidence list and the manifest."""
    parse_window(window)
    e = as_of or window_end(window)
    existing = warehouse.get_batch(engine, window)
    if existing is not None and (existing.finalised or not replace):
        # The authoritative check is in create_batch's transaction; this one saves an evaluation.
        state = "finalised" if existing.finalised else "already prepared (awaiting verification)"
        hint = "" if existing.finalised else "; use --replace to prepare it again"
        raise warehouse.BatchError(f"window {window} is {state}{hint}")
    s = sampling_settings(settings, rate)
    seed = seed or secrets.token_hex(8)
    at = dt.datetime.now(dt.UTC)

    plan_file = plan_path or rules.default_plan_path()
    raw = plan_file.read_bytes()
    plan_text = rules.canonical_bytes(raw).decode("utf-8")
    # the plan stored with the batch is the plan evaluated: the file is read once
    ev = evaluation.evaluate(engine, e, plan=rules.parse_plan(raw, str(plan_file)))
    families = ev.families
    claimable = families.filter(pl.col("claimable"))
    fam_table = _source_table(ev.sources, engine, "families").select("family_id", "lead_worker")
    people = _source_table(ev.sources, engine, "people")
    lines = (
        claimable.join(fam_table, on="family_id", how="left")
        .with_columns(
            pl.col("identified").list.join(";").alias("headlines"),
            pl.lit(False).alias("manual_override"),
        )
        .select(
            "family_id",
            "locality",
            "lead_worker",
            "attached_on",
            "basis",
            "headlines",
            "manual_override",
            pl.struct(pl.col("^(state|earliest):.*$"))
            .map_elements(_states_json, return_dtype=pl.String)
            .alias("evidence"),
        )
    )
    frame = _sample_frame(lines, seed, s)
    insufficient = families.filter(pl.col("insufficient_evidence"))
    sampled_ids = _sampled_ids(frame)
    evidence = _evidence(
        ev.plan, ev.sources, e, sampled_ids + insufficient.get_column("family_id").to_list()
    )

    folder = settings.output_dir / window
    staging = _stage(folder)
    try:
        draft = warehouse.BatchRecord(
            id=0,
            window=window,
            as_of=e,
            status="awaiting_verification",
            created_at=at,
            finalised_at=None,
            evaluation_run_id=ev.run.id,
            plan_name=ev.plan.name,
            plan_hash=ev.plan.content_hash,
            plan_text=plan_text,
            seed=seed,
            sampling=s.model_dump(mode="json"),
            load_batches=ev.run.load_batches,
            output_dir=str(folder),
        )
        info = _info(settings, engine, draft, s, at)
        no_results = _results_frame([])
        claims = _sampled_claims(lines, frame, people, evidence, no_results, e)
        files = _write_verification(staging, info, claims, frame, settings.templates_dir)
        lead = dict(fam_table.iter_rows())
        missing: list[MissingEvidence] = []
        for r in insufficient.iter_rows(named=True):
            missing += outputs.missing_evidence(
                evidence[r["family_id"]], r["locality"], lead.get(r["family_id"])
            )
        files[INSUFFICIENT_CSV] = outputs.write_insufficient_csv(
            staging / INSUFFICIENT_CSV, info, missing
        )[1]
        stats = _stats(ev.run.eligible, lines, frame, no_results, settings, 0)
        files[MANIFEST] = outputs.write_manifest(staging / MANIFEST, info, stats, dict(files))[1]
        sample_rows = frame.filter(pl.col("sampled")).select(list(warehouse.SAMPLE_COLUMNS))
        warehouse.create_batch(
            engine,
            draft,
            lines=lines,
            sample=sample_rows,
            replace=replace,
            files=[(n, h, n in PERSONAL) for n, h in files.items()],
        )
        if replace and folder.exists():
            shutil.rmtree(folder)
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return StepResult(
        window=window,
        as_of=e,
        status="awaiting_verification",
        folder=folder,
        files=files,
        counts={
            "eligible": stats.eligible,
            "claimable": stats.claimable,
            "sampled": stats.sampled,
            "insufficient_evidence": insufficient.height,
            **{f"claimable_{b}": n for b, n in stats.claimable_by_basis.items()},
        },
        seed=seed,
    )


# ----------------------------------------------------------------------------- verify


def _batch_plan(batch: warehouse.BatchRecord) -> rules.Plan:
    plan = rules.parse_plan(batch.plan_text, f"batch {batch.window}")
    if plan.content_hash != batch.plan_hash:
        raise warehouse.BatchError(
            f"window {batch.window}: the stored plan does not match its hash"
        )
    return plan


def _results_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows or None, schema=warehouse.RESULT_COLUMNS, orient="row")


def _check_results(
    window: str,
    rows: list[dict[str, object]],
    lines: pl.DataFrame,
    sampled: set[str],
    existing: pl.DataFrame,
) -> tuple[list[dict[str, object]], int]:
    """Validate incoming results; return the new ones and how many were already recorded."""
    in_batch = set(lines.get_column("family_id").to_list())
    before = {r["family_id"]: r for r in existing.iter_rows(named=True)}
    seen: dict[str, dict[str, object]] = {}
    new: list[dict[str, object]] = []
    unchanged = 0
    for r in rows:
        fid = str(r["family_id"])
        if r.get("result") is None:
            continue  # not yet checked: a blank row in the returned list
        if fid not in in_batch:
            raise warehouse.BatchError(f"family {fid!r} is not a claim in window {window}")
        if fid not in sampled:
            raise warehouse.BatchError(
                f"family {fid!r} is not in the verification sample of window {window}"
            )
        if r["result"] not in ("pass", "fail"):
            raise warehouse.BatchError(
                f"family {fid!r}: result must be pass or fail, not {r['result']!r}"
            )
        if not r.get("auditor"):
            raise warehouse.BatchError(f"family {fid!r}: the auditor's name is required")
        if r.get("checked_on") is None:
            raise warehouse.BatchError(f"family {fid!r}: the date checked is required")
        if r["result"] == "fail" and not r.get("note"):
            raise warehouse.BatchError(f"family {fid!r}: a failed claim needs a note saying why")
        row = {
            k: r.get(k) if k != "note" else (r.get("note") or "") for k in warehouse.RESULT_COLUMNS
        }
        if fid in seen and seen[fid] != row:
            raise warehouse.BatchError(f"family {fid!r} has two different results in the input")
        if fid in seen:
            continue
        seen[fid] = row
        old = before.get(fid)
        if old is not None:
            if {k: old[k] for k in row} == row:
                unchanged += 1
                continue
            raise warehouse.BatchError(
                f"family {fid!r} already has a result ({old['result']} by {old['auditor']} on "
                f"{old['checked_on']}); a recorded result cannot be changed"
            )
        new.append(row)
    return new, unchanged


def _open_batch(
    tx: warehouse.BatchTx,
) -> tuple[warehouse.BatchRecord, sampling.SamplingSettings, pl.DataFrame, pl.DataFrame]:
    """The batch ``tx`` holds (refused if finalised), its sampling settings, its lines,
    and its sample frame as it stands: redrawn from the seed, then the logged escalations."""
    tx.check_open()
    b = tx.batch
    s = sampling.SamplingSettings.model_validate(b.sampling)
    lines = tx.lines()
    return b, s, lines, _replay(_sample_frame(lines, b.seed, s), tx.escalations(), s)


def verify(
    settings: Settings, engine: Engine, window: str, rows: list[dict[str, object]]
) -> StepResult:
    """Record auditors' results; failures remove claims and may escalate the sample."""
    parse_window(window)
    at = dt.datetime.now(dt.UTC)
    folder = settings.output_dir / window
    staging = _stage(folder)
    try:
        with warehouse.batch_transaction(engine, window) as tx:
            b, s, lines, frame = _open_batch(tx)
            sampled = set(_sampled_ids(frame))
            new, unchanged = _check_results(window, rows, lines, sampled, tx.results())
            tx.add_results(_results_frame(new), at)
            results = tx.results()
            failed = results.filter(pl.col("result") == "fail").join(
                frame.select("family_id", "stratum"), on="family_id"
            )
            failures = dict(Counter(failed.get_column("stratum").to_list()))
            escalated = sampling.escalate(frame, failures, s, at)
            frame = escalated.sample
            already = set(tx.sample().get_column("family_id").to_list())
            tx.add_sample(
                frame.filter(pl.col("sampled") & ~pl.col("family_id").is_in(list(already))).select(
                    list(warehouse.SAMPLE_COLUMNS)
                ),
                at,
            )
            logged = []
            for step in escalated.log:
                record = warehouse.EscalationRecord(
                    step.stratum,
                    sampling.rate_text(step.from_rate),
                    sampling.rate_text(step.to_rate),
                    step.failures,
                    step.at,
                    step.added,
                )
                tx.log_escalation(record)
                logged.append(record)
            # the verification list again, with results so far and any claims added
            plan = _batch_plan(b)
            sources = evaluation.read_sources(engine)
            ids = _sampled_ids(frame)
            evidence = _evidence(plan, sources, b.as_of, ids)
            people = _source_table(sources, engine, "people")
            info = _info(settings, engine, b, s, at)
            claims = _sampled_claims(lines, frame, people, evidence, results, b.as_of)
            files = _write_verification(staging, info, claims, frame, settings.templates_dir)
            tx.record_files([(n, h, n in PERSONAL) for n, h in files.items()], "verify")
            n_passed, n_failed = _tally(results)
            counts = {
                "recorded": len(new),
                "unchanged": unchanged,
                "passed": n_passed,
                "failed": n_failed,
                "sampled": len(ids),
                "awaiting_result": len(set(ids) - set(results.get_column("family_id").to_list())),
                "added_by_escalation": sum(len(x.added) for x in logged),
            }
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return StepResult(
        window=window,
        as_of=b.as_of,
        status=b.status,
        folder=folder,
        files=files,
        counts=counts,
        escalations=logged,
        seed=b.seed,
    )


# ----------------------------------------------------------------------------- finalise


def finalise(settings: Settings, engine: Engine, window: str) -> StepResult:
    """Submit the batch: write the MHCLG claim file and summary; the batch is then immutable."""
    parse_window(window)
    at = dt.datetime.now(dt.UTC)
    folder = settings.output_dir / window
    staging = _stage(folder)
    try:
        with warehouse.batch_transaction(engine, window) as tx:
            b, s, lines, frame = _open_batch(tx)
            results = tx.results()
            sampled = set(_sampled_ids(frame))
            waiting = sorted(sampled - set(results.get_column("family_id").to_list()))
            if waiting:
                raise warehouse.BatchError(
                    f"window {window}: {len(waiting)} sampled claim(s) still need a result "
                    f"(e.g. {', '.join(waiting[:3])}); record them with 'tfclaims claim verify'"
                )
            tx.finalise(at)
            lines = tx.lines()
            passed = set(
                results.filter(pl.col("result") == "pass").get_column("family_id").to_list()
            )
            submitted = lines.filter(pl.col("status") == "submitted")
            rows = []
            for r in submitted.iter_rows(named=True):
                headlines = tuple(h for h in r["headlines"].split(";") if h)
                rows.append(
                    ClaimRow(
                        family_id=r["family_id"],
                        claim_basis=r["basis"],
                        attached_on=r["attached_on"],
                        evaluated_on=b.as_of,
                        headline_count=len(headlines),
                        headlines=headlines,
                        verification="sampled_passed"
                        if r["family_id"] in passed
                        else "not_sampled",
                    )
                )
            info = _info(settings, engine, b, s, at)
            eligible = warehouse.evaluation_run(engine, b.evaluation_run_id).eligible
            stats = _stats(eligible, lines, frame, results, settings, len(tx.escalations()))
            files = {
                CLAIM_FILE: outputs.write_claim_file(
                    staging / CLAIM_FILE, info, rows, override_dir=settings.templates_dir
                )[1],
            }
            summary_csv, summary_xlsx = outputs.write_summary(
                staging / SUMMARY_CSV,
                staging / SUMMARY_XLSX,
                info,
                stats,
                override_dir=settings.templates_dir,
            )
            files[SUMMARY_CSV] = summary_csv.sha256
            files[SUMMARY_XLSX] = summary_xlsx.sha256
            everything = {**tx.files(), **files}
            everything.pop(MANIFEST, None)
            files[MANIFEST] = outputs.write_manifest(staging / MANIFEST, info, stats, everything)[1]
            tx.record_files([(n, h, n in PERSONAL) for n, h in files.items()], "finalise")
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return StepResult(
        window=window,
        as_of=b.as_of,
        status="finalised",
        folder=folder,
        files=files,
        counts={
            "submitted": stats.submitted,
            "failed": stats.failed,
            "passed": stats.passed,
            "sampled": stats.sampled,
            **{f"submitted_{k}": v for k, v in stats.submitted_by_basis.items()},
        },
        seed=b.seed,
    )


def withdraw(engine: Engine, family_id: str, reason: str) -> tuple[str, str]:
    """Withdraw a submitted claim after an MHCLG spot check; it stays claimed."""
    if not reason.strip():
        raise warehouse.BatchError("a withdrawal needs a reason")
    return warehouse.withdraw(engine, family_id, reason, dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class BatchStatus:
    """One batch's state, for ``tfclaims claim status``."""

    window: str
    as_of: dt.date
    status: str
    seed: str
    folder: str
    lines: dict[str, int]
    sampled: int
    passed: int
    failed: int
    awaiting_result: int
    escalations: list[warehouse.EscalationRecord]


def status(engine: Engine, window: str | None = None) -> list[BatchStatus]:
    """The state of every batch (or of one window's)."""
    batches = warehouse.list_batches(engine)
    if window is not None:
        parse_window(window)
        batches = [b for b in batches if b.window == window]
        if not batches:
            raise warehouse.BatchError(f"window {window} has no batch")
    out = []
    for b in batches:
        with warehouse.batch_reader(engine, b.window) as tx:
            lines = tx.lines()
            results = tx.results()
            sample = tx.sample()
            done = set(results.get_column("family_id").to_list())
            passed, failed = _tally(results)
            out.append(
                BatchStatus(
                    window=b.window,
                    as_of=b.as_of,
                    status=b.status,
                    seed=b.seed,
                    folder=b.output_dir,
                    lines=dict(Counter(lines.get_column("status").to_list())),
                    sampled=sample.height,
                    passed=passed,
                    failed=failed,
                    awaiting_result=len(set(sample.get_column("family_id").to_list()) - done),
                    escalations=tx.escalations(),
                )
            )
    return out
