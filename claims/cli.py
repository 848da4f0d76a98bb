"""The ``tfclaims`` command line: each command parses options, calls one function in
``claims.app`` (or ``claims.bench``), and maps the result to output and an exit code.

Bad input ends with one line on stderr and a non-zero exit, never a traceback
(set ``TFCLAIMS_DEBUG=1`` to see one).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import click
from polars.exceptions import PanicException
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import warehouse
from claims import app
from claims.settings import Settings
from rules import PlanError
from sampling import SamplingSettings

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal:  # piped to a file or a pager: don't squeeze tables into 80 columns
    out.width = 160

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """An error the user can act on: printed as one line."""

    exit_code = EXIT_BAD_INPUT


def setting_default(name: str) -> str:
    """A setting's shipped default, as ``--help`` texts quote it."""
    if name == "rate":
        return str(SamplingSettings.model_fields["rate"].default)
    return str(Settings.model_fields[name].default)


def json_option(f: F) -> F:
    """``--json``: print one JSON document on stdout instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def database_option(f: F) -> F:
    """``--database URL``: override the configured warehouse."""
    return click.option(
        "--database",
        "database_url",
        metavar="URL",
        help="Warehouse URL (overrides TFCLAIMS_DATABASE_URL and tfclaims.toml).",
    )(f)


def load_settings(database_url: str | None = None) -> Settings:
    """Settings from file and environment, with command-line overrides."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise UserError(f"settings: {key}: {first['msg']}") from exc
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value.__class__.__name__ == "Decimal":
        return str(value)
    return value


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout."""
    click.echo(json.dumps(_jsonable(value), indent=2, sort_keys=False))


class RichProgress(warehouse.Progress):
    """A warehouse progress sink drawn as a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def stage(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(description, total=max(total, 1))

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[warehouse.Progress]:
    """A progress sink: a live bar when stderr is a terminal, silent otherwise."""
    if not enabled or not err.is_terminal:
        yield warehouse.Progress()
        return
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield RichProgress(bar)


@contextmanager
def working(message: str, enabled: bool) -> Iterator[None]:
    """A spinner on stderr while a long step runs (terminal only, never with --json)."""
    if not enabled or not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tfclaims")
def cli() -> None:
    """tfclaims: the Troubled Families payment-by-results claims engine.

    Load the warehouse extracts, evaluate families against the Outcome Plan,
    and run the monthly claim batch.
    """


# ----------------------------------------------------------------------------- db


@cli.group()
def db() -> None:
    """Manage the warehouse database schema."""


@db.command("upgrade")
@database_option
@json_option
def db_upgrade(database_url: str | None, as_json: bool) -> None:
    """Bring the warehouse schema to the newest migration."""
    result = app.db_upgrade(load_settings(database_url))
    if as_json:
        print_json(result)
        return
    if result.before == result.after:
        out.print(f"Warehouse schema already at {result.after} (newest).")
    else:
        out.print(f"Warehouse schema upgraded from {result.before or 'empty'} to {result.after}.")


# ----------------------------------------------------------------------------- load


def _print_load(result: warehouse.LoadResult) -> None:
    t = Table(title=f"Load batch {result.batch_id} ({result.mode.replace('_', '-')})")
    t.add_column("table")
    t.add_column("file")
    t.add_column("rows", justify="right")
    t.add_column("loaded", justify="right")
    t.add_column("rejected", justify="right")
    for row in result.tables:
        t.add_row(row.table, row.file, f"{row.rows:,}", f"{row.loaded:,}", f"{row.rejected:,}")
    t.add_row("total", "", "", f"{result.rows_loaded:,}", f"{result.rows_rejected:,}", style="bold")
    out.print(t)
    for w in result.warnings:
        err.print(f"warning: {w}")
    if result.rejects_path:
        summary = ", ".join(f"{k} {v}" for k, v in sorted(result.reject_counts.items()))
        err.print(
            f"quarantined {result.rows_rejected:,} rows ({summary}); see {result.rejects_path}"
        )


@cli.command("load")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--on-error",
    type=click.Choice(["all-or-nothing", "quarantine"]),
    default="all-or-nothing",
    show_default=True,
    help="all-or-nothing loads nothing if any row is bad; quarantine loads the good rows.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the rejects report [default: FOLDER/rejects.csv].",
)
@database_option
@json_option
def load_cmd(
    folder: Path, on_error: str, rejects_path: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Load a monthly extract FOLDER (one <table>.csv or .parquet per table).

    Each table in the folder replaces that table's contents atomically; tables
    absent from the folder are left as they were.
    """
    settings = load_settings(database_url)
    mode: Literal["all_or_nothing", "quarantine"] = (
        "quarantine" if on_error == "quarantine" else "all_or_nothing"
    )
    with progress_bar(not as_json) as progress:
        result = app.load(settings, folder, mode=mode, progress=progress, rejects_path=rejects_path)
    if as_json:
        print_json(result)
    else:
        _print_load(result)


# ----------------------------------------------------------------------------- status


@cli.command("status")
@database_option
@json_option
def status_cmd(database_url: str | None, as_json: bool) -> None:
    """Show what the warehouse holds: rows per table and recent load batches."""
    result = app.status(load_settings(database_url))
    if as_json:
        print_json(result)
        return
    _print_status(result)


def _print_status(result: app.WarehouseStatus) -> None:
    t = Table(title=f"Warehouse {result.database} (schema {result.revision})")
    t.add_column("table")
    t.add_column("rows", justify="right")
    t.add_column("loaded", justify="center")
    for name, n in result.counts.items():
        t.add_row(name, f"{n:,}", "yes" if name in result.loaded else "never")
    out.print(t)
    for b in result.batches[:5]:
        out.print(
            f"load batch {b.id}: {b.finished_at:%Y-%m-%d %H:%M} from {b.source_dir} "
            f"({b.rows_loaded:,} rows, {b.rows_rejected:,} rejected, {len(b.files)} files)"
        )


# ----------------------------------------------------------------------------- evaluate


class DateParam(click.ParamType):  # type: ignore[type-arg]
    """An ISO date (YYYY-MM-DD) option, parsed to a ``datetime.date``."""

    name = "YYYY-MM-DD"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


DATE = DateParam()


def plan_option(f: F) -> F:
    """``--plan FILE``: an Outcome Plan other than the shipped default."""
    return click.option(
        "--plan",
        "plan_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Outcome Plan YAML file [default: the shipped Phase 2 plan].",
    )(f)


_STATE_STYLE = {"met": "green", "not_met": "red", "pending": "yellow", "unknown": "magenta"}


def _styled_state_line(line: str) -> str:
    from rich.markup import escape

    text = escape(line)
    for state, style in _STATE_STYLE.items():
        text = text.replace(f"\\[{state}]", f"[{style}]\\[{state}][/{style}]")
    return text


@cli.command("evaluate")
@click.option("--as-of", "as_of", type=DATE, required=True, help="Evaluation date E.")
@plan_option
@database_option
@json_option
def evaluate_cmd(
    as_of: dt.date, plan_path: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Evaluate every family against the Outcome Plan at E, record the run, and summarise.

    Counts by locality: families attached, eligible, already claimed,
    claimable by basis, and the rest by what holds them back (pending,
    unknown evidence, not met).
    """
    from claims import evaluation

    engine = app.open_warehouse(load_settings(database_url))
    try:
        with working(f"evaluating every family at {as_of}", not as_json):
            result = evaluation.evaluate(engine, as_of, plan_path)
    finally:
        engine.dispose()
    if as_json:
        print_json({"run": result.run, "by_locality": result.summary.to_dicts()})
        return
    r = result.run
    t = Table(
        title=f"Evaluation run {r.id}: plan {r.plan_name} ({r.plan_hash[:12]}) at E={r.as_of}"
    )
    for col in result.summary.columns:
        t.add_column(col.replace("_", " "), justify="left" if col == "locality" else "right")
    for row in result.summary.iter_rows():
        t.add_row(
            *[f"{v:,}" if isinstance(v, int) else str(v) for v in row],
            style="bold" if row[0] == "All" else None,
        )
    out.print(t)
    batches = ", ".join(f"{k} #{v}" for k, v in sorted(r.load_batches.items()))
    out.print(f"load batches read: {batches}")


@cli.command("explain")
@click.argument("family_id")
@click.option("--as-of", "as_of", type=DATE, required=True, help="Evaluation date E.")
@plan_option
@database_option
@json_option
def explain_cmd(
    family_id: str, as_of: dt.date, plan_path: Path | None, database_url: str | None, as_json: bool
) -> None:
    """Explain why FAMILY_ID is or is not eligible and claimable at E.

    A tree of every headline, indicator and outcome with its state, the
    figures and thresholds compared, the dates, and the source rows
    (table#row, the row number in the loaded extract file).
    """
    from claims import evaluation

    engine = app.open_warehouse(load_settings(database_url))
    try:
        result = evaluation.explain(engine, family_id, as_of, plan_path)
    finally:
        engine.dispose()
    if as_json:
        print_json(result)
        return
    for line in result.explain().splitlines():
        out.print(_styled_state_line(line))


@cli.group()
def plan() -> None:
    """Check and show Outcome Plans."""


@plan.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def plan_check(file: Path, as_json: bool) -> None:
    """Validate an Outcome Plan FILE: every problem names the key path and the reason."""
    import rules

    if not file.is_file():
        raise UserError(f"{file}: no such file")
    p = rules.load_plan(file)
    summary = {
        "file": str(file),
        "name": p.name,
        "hash": p.content_hash,
        "headlines": [h.code for h in p.headlines],
        "min_headlines": p.eligibility.min_headlines,
        "continuous_employment": p.continuous_employment is not None,
    }
    if as_json:
        print_json(summary)
        return
    out.print(
        f"[green]ok[/green] {file}: plan {p.name} ({p.content_hash[:12]}), "
        f"{len(p.headlines)} headlines, eligible with at least {p.eligibility.min_headlines}, "
        f"continuous employment {'yes' if p.continuous_employment else 'no'}"
    )


@plan.command("show")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
def plan_show(file: Path | None) -> None:
    """Print the rules of an Outcome Plan FILE in plain English, with their references.

    Without FILE, the shipped default plan.
    """
    import rules
    from claims.plan_text import plan_text

    if file is not None and not file.is_file():
        raise UserError(f"{file}: no such file")
    click.echo(plan_text(rules.load_plan(file or rules.default_plan_path())))


@plan.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as-of", "as_of", type=DATE, required=True, help="Evaluation date E.")
@database_option
@json_option
def plan_diff_cmd(
    old: Path, new: Path, as_of: dt.date, database_url: str | None, as_json: bool
) -> None:
    """List the families whose eligibility or claimability changes from plan OLD to plan NEW at E, and why."""
    from claims import evaluation

    for f in (old, new):
        if not f.is_file():
            raise UserError(f"{f}: no such file")
    engine = app.open_warehouse(load_settings(database_url))
    try:
        with working("evaluating both plans", not as_json):
            diff = evaluation.plan_diff(engine, old, new, as_of)
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {
                "old": {"name": diff.old.name, "hash": diff.old.content_hash},
                "new": {"name": diff.new.name, "hash": diff.new.content_hash},
                "as_of": diff.as_of,
                "changes": diff.changes.to_dicts(),
            }
        )
        return
    c = diff.changes
    out.print(
        f"{c.height:,} families change from plan {diff.old.name} to {diff.new.name} at E={diff.as_of}: "
        f"{(c['eligible_old'] & ~c['eligible_new']).sum():,} lose eligibility, "
        f"{(~c['eligible_old'] & c['eligible_new']).sum():,} gain it, "
        f"{(c['claimable_old'] & ~c['claimable_new']).sum():,} stop being claimable, "
        f"{(~c['claimable_old'] & c['claimable_new']).sum():,} become claimable."
    )
    t = Table()
    for col in ("family", "locality", "eligible", "claimable", "why (old -> new)"):
        t.add_column(col)
    yn = {True: "yes", False: "no", None: "-"}
    for r in c.head(200).iter_rows(named=True):
        t.add_row(
            r["family_id"],
            r["locality"],
            f"{yn[r['eligible_old']]} -> {yn[r['eligible_new']]}",
            f"{yn[r['claimable_old']]} -> {yn[r['claimable_new']]}",
            r["reason"],
        )
    out.print(t)
    if c.height > 200:
        out.print(f"... and {c.height - 200:,} more (use --json for all)")


# ----------------------------------------------------------------------------- claim batch


@cli.group()
def claim() -> None:
    """The monthly claim batch: prepare, verify, finalise, withdraw, status."""


def _step_output(result: Any, title: str) -> None:
    out.print(
        f"[bold]{title}[/bold] window {result.window} (E={result.as_of}), status {result.status}"
    )
    for k, v in result.counts.items():
        out.print(f"  {k.replace('_', ' ')}: {v:,}")
    for e in result.escalations:
        out.print(
            f"  escalated {e.stratum}: rate {e.from_rate} -> {e.to_rate} after {e.failures} "
            f"failure(s); added {len(e.added)} claim(s) to verify"
        )
    out.print(f"  folder: {result.folder}")
    for name in sorted(result.files):
        out.print(f"    {name}")


@claim.command("prepare")
@click.option("--window", required=True, metavar="YYYY-MM", help="The claim window.")
@click.option(
    "--as-of", "as_of", type=DATE, help="Evaluation date E [default: the window's last day]."
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 1, min_open=True),
    help=f"Sampling rate [default: settings, {setting_default('rate')}].",
)
@click.option(
    "--seed", help="Sampling seed [default: a fresh random value, recorded in the batch]."
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace this window's batch if it is prepared but not finalised.",
)
@plan_option
@database_option
@json_option
def claim_prepare(
    window: str,
    as_of: dt.date | None,
    rate: float | None,
    seed: str | None,
    replace: bool,
    plan_path: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Evaluate at E, take every claimable family into the window's batch, draw the
    verification sample, and write the verification list, the insufficient-evidence
    list and the run manifest."""
    from decimal import Decimal

    from claims import batch

    settings = load_settings(database_url)
    engine = app.open_warehouse(settings)
    try:
        with working(f"preparing {window}", not as_json):
            result = batch.prepare(
                settings,
                engine,
                window,
                as_of=as_of,
                rate=Decimal(str(rate)) if rate is not None else None,
                seed=seed,
                replace=replace,
                plan_path=plan_path,
            )
    finally:
        engine.dispose()
    if as_json:
        print_json(result)
    else:
        _step_output(result, "Prepared")
        out.print(f"  seed: {result.seed}")


@claim.command("verify")
@click.argument("window")
@click.option(
    "--results",
    "results_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The completed verification list (.xlsx or .csv) as the auditor returns it.",
)
@click.option("--family", "family_id", help="One sampled claim's family reference.")
@click.option("--pass/--fail", "passed", default=None, help="The result for --family.")
@click.option("--note", default="", help="Why (required for a fail).")
@click.option("--auditor", help="The auditor's name.")
@click.option("--checked-on", "checked_on", type=DATE, help="Date checked [default: today].")
@database_option
@json_option
def claim_verify(
    window: str,
    results_file: Path | None,
    family_id: str | None,
    passed: bool | None,
    note: str,
    auditor: str | None,
    checked_on: dt.date | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Record auditors' results for WINDOW's sampled claims.

    Either --results FILE (the completed list), or one claim with --family F
    --pass/--fail --note TEXT --auditor NAME. Importing the same results again
    changes nothing. A failed claim leaves the batch, and failures can escalate
    the sample: the new claims then need verifying too.
    """
    from claims import batch, outputs

    if (results_file is None) == (family_id is None):
        raise UserError(
            "give either --results FILE or --family F (with --pass/--fail and --auditor)"
        )
    if results_file is not None:
        if not results_file.is_file():
            raise UserError(f"{results_file}: no such file")
        rows = outputs.read_completed_list(results_file)
    else:
        if passed is None or not auditor:
            raise UserError("--family needs --pass or --fail, and --auditor NAME")
        rows = [
            {
                "family_id": family_id,
                "result": "pass" if passed else "fail",
                "note": note,
                "auditor": auditor,
                "checked_on": checked_on or dt.date.today(),
            }
        ]
    settings = load_settings(database_url)
    engine = app.open_warehouse(settings)
    try:
        with working(f"recording results for {window}", not as_json):
            result = batch.verify(settings, engine, window, rows)
    finally:
        engine.dispose()
    if as_json:
        print_json(result)
    else:
        _step_output(result, "Verified")


@claim.command("finalise")
@click.argument("window")
@database_option
@json_option
def claim_finalise(window: str, database_url: str | None, as_json: bool) -> None:
    """Submit WINDOW's batch: every sampled claim must have a result. Writes the MHCLG
    claim file and the claim summary; the batch is then immutable."""
    from claims import batch

    settings = load_settings(database_url)
    engine = app.open_warehouse(settings)
    try:
        with working(f"finalising {window}", not as_json):
            result = batch.finalise(settings, engine, window)
    finally:
        engine.dispose()
    if as_json:
        print_json(result)
    else:
        _step_output(result, "Finalised")


@claim.command("withdraw")
@click.argument("family_id")
@click.option("--reason", required=True, help="Why MHCLG's spot check rejected it.")
@database_option
@json_option
def claim_withdraw(family_id: str, reason: str, database_url: str | None, as_json: bool) -> None:
    """Mark FAMILY_ID's submitted claim withdrawn. It stays claimed: it can never be claimed again."""
    from claims import batch

    engine = app.open_warehouse(load_settings(database_url))
    try:
        window, fid = batch.withdraw(engine, family_id, reason)
    finally:
        engine.dispose()
    if as_json:
        print_json({"family_id": fid, "window": window, "status": "withdrawn", "reason": reason})
    else:
        out.print(f"Withdrew family {fid}'s claim in window {window}: {reason}")


@claim.command("status")
@click.argument("window", required=False)
@database_option
@json_option
def claim_status(window: str | None, database_url: str | None, as_json: bool) -> None:
    """Show every batch (or WINDOW's): claims by status, the sample and its results."""
    from claims import batch

    engine = app.open_warehouse(load_settings(database_url))
    try:
        result = batch.status(engine, window)
    finally:
        engine.dispose()
    if as_json:
        print_json(result)
        return
    if not result:
        out.print("No claim batches yet: run 'tfclaims claim prepare --window YYYY-MM'.")
        return
    t = Table(title="Claim batches")
    for col in (
        "window",
        "E",
        "status",
        "claims",
        "sampled",
        "passed",
        "failed",
        "awaiting",
        "escalations",
    ):
        t.add_column(col, justify="left" if col in ("window", "E", "status", "claims") else "right")
    for b in result:
        lines = ", ".join(f"{k} {v:,}" for k, v in sorted(b.lines.items()))
        t.add_row(
            b.window,
            str(b.as_of),
            b.status,
            lines,
            f"{b.sampled:,}",
            f"{b.passed:,}",
            f"{b.failed:,}",
            f"{b.awaiting_result:,}",
            str(len(b.escalations)),
        )
    out.print(t)


# ----------------------------------------------------------------------------- project


@cli.command("project")
@click.option(
    "--as-of",
    "as_of",
    type=DATE,
    help="Projection date E [default: the latest finalised claim batch's E, else today].",
)
@click.option(
    "--quota",
    type=click.IntRange(min=1),
    help=f"Families to claim [default: settings, {setting_default('quota')}].",
)
@click.option(
    "--end",
    "programme_end",
    type=DATE,
    help=f"Programme end [default: settings, {setting_default('programme_end')}].",
)
@click.option(
    "--lookback",
    type=click.IntRange(min=1),
    help=f"Months the run rate averages [default: settings, {setting_default('run_rate_months')}].",
)
@click.option(
    "--min-history",
    type=click.IntRange(min=0),
    help="With fewer claimed families, pipeline conversion falls back to the run rate "
    f"[default: settings, {setting_default('min_history')}].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the files [default: <output_dir>/projection-<E>].",
)
@plan_option
@database_option
@json_option
def project_cmd(
    as_of: dt.date | None,
    quota: int | None,
    programme_end: dt.date | None,
    lookback: int | None,
    min_history: int | None,
    out_dir: Path | None,
    plan_path: Path | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Project claims against the quota to the programme end, by run rate and by pipeline
    conversion, and write the monthly table (CSV, XLSX), the chart (PNG, SVG), the
    pipeline by locality and a one-page HTML report for managers."""
    from claims import projection

    settings = load_settings(database_url)
    engine = app.open_warehouse(settings)
    try:
        with working("projecting claims", not as_json):
            result = projection.run_projection(
                settings,
                engine,
                as_of=as_of,
                quota=quota,
                programme_end=programme_end,
                lookback_months=lookback,
                min_history=min_history,
                out_dir=out_dir,
                plan_path=plan_path,
            )
    finally:
        engine.dispose()
    if as_json:
        print_json(_projection_json(result))
        return
    _print_projection(result)
    out.print(f"Files in {result.folder}:")
    for name in sorted(result.files):
        out.print(f"  {result.files[name].path}")


def _projection_json(result: Any) -> dict[str, Any]:
    """The projection's headline document, with where its files are (``result``: a ProjectionRun)."""
    doc: dict[str, Any] = result.projection.document()
    return doc | {
        "folder": result.folder,
        "report": result.report,
        "files": {name: w.path for name, w in sorted(result.files.items())},
    }


def _print_projection(result: Any) -> None:
    """The headline figures as rich tables (``result``: a claims.projection.ProjectionRun)."""
    p = result.projection
    t = Table(title=f"Claims against the quota at E={p.as_of}", show_header=False)
    t.add_column("item")
    t.add_column("value", justify="right")
    t.add_row("claims to date", f"{p.claims_to_date:,}")
    t.add_row("withdrawn claims (not counted)", f"{p.withdrawn:,}")
    t.add_row("quota", f"{p.quota:,} by {p.programme_end}")
    t.add_row("still to claim", f"{p.still_to_claim:,}")
    t.add_row("monthly claims needed", p.needed_text)
    t.add_row("run rate (mean a month)", dict(p.headline_items())["Run rate"])
    out.print(t)
    m = Table(title="Projected to the programme end")
    for col in ("method", "total", "gap", "quota reached"):
        m.add_column(col, justify="left" if col == "method" else "right")
    for r in p.methods:
        style = "red" if r.gap > 0 else "green"
        name = r.name + (" [yellow](fell back to run rate)[/yellow]" if r.fallback else "")
        m.add_row(name, f"{r.total:,}", f"[{style}]{r.gap_text}[/{style}]", r.quota_reached)
    out.print(m)
    for note in p.notes:
        out.print(f"[yellow]{note}[/yellow]" if "falls back" in note else f"[dim]{note}[/dim]")
    out.print(f"Report: {result.report}")


# ----------------------------------------------------------------------------- synth


@cli.command("synth")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--families", default=3000, show_default=True, help="Number of families.")
@click.option("--seed", default=2018, show_default=True, help="Random seed; same seed, same files.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True
)
@json_option
def synth_cmd(folder: Path, families: int, seed: int, fmt: str, as_json: bool) -> None:
    """Write a synthetic council's extracts into FOLDER."""
    with progress_bar(not as_json) as progress:
        summary = app.synth(folder, families=families, seed=seed, fmt=fmt, progress=progress)  # type: ignore[arg-type]
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"Synthetic council: {summary.families:,} families in {folder}")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in summary.rows.items():
        t.add_row(name, f"{n:,}")
    out.print(t)


# ----------------------------------------------------------------------------- demo


@cli.command("demo")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("tfclaims-demo"),
    show_default=True,
    help="Working folder for the demo's extracts, warehouse and outputs.",
)
@click.option("--families", default=3000, show_default=True, help="Families in the council.")
@click.option("--seed", default=2018, show_default=True, help="Random seed for the council.")
@json_option
def demo_cmd(workdir: Path, families: int, seed: int, as_json: bool) -> None:
    """Run the whole job on a synthetic council, end to end, in a fresh SQLite warehouse."""
    with progress_bar(not as_json) as progress:
        result = app.demo(workdir, families=families, seed=seed, progress=progress)
    if as_json:
        print_json(
            {
                "workdir": result.workdir,
                "extracts": result.extracts,
                "database_url": result.database_url,
                "load": result.load,
                "counts": result.status.counts,
                "window": result.window,
                "steps": result.steps,
                "outputs": sorted(str(p) for p in result.outputs.iterdir()),
                "projection": _projection_json(result.projection),
            }
        )
        return
    out.print(f"[bold]Synthetic council[/bold] of {result.synth.families:,} families (seed {seed})")
    out.print(f"  extracts:  {result.extracts}")
    out.print(f"  warehouse: {result.database_url}")
    _print_load(result.load)
    titles = ["Prepared"] + ["Verified"] * (len(result.steps) - 2) + ["Finalised"]
    for title, step in zip(titles, result.steps, strict=True):
        _step_output(step, title)
    out.print(f"[bold]Outputs for window {result.window}[/bold] ({result.outputs}):")
    from claims import batch

    described = {
        batch.CLAIM_FILE: "MHCLG claim file (family references only)",
        batch.SUMMARY_CSV: "claim summary (CSV)",
        batch.SUMMARY_XLSX: "claim summary (Excel)",
        batch.VERIFICATION_XLSX: "auditors' verification list (Excel, owner-only)",
        batch.VERIFICATION_HTML: "evidence pack for every sampled family (owner-only)",
        batch.INSUFFICIENT_CSV: "families held back only by missing data (owner-only)",
        batch.SAMPLE_FRAME_CSV: "every claim's hash and rank, to re-perform the sample",
        batch.MANIFEST: "run manifest: plan hash, load batches, seed, counts, file hashes",
    }
    for f in sorted(result.outputs.iterdir()):
        out.print(f"  {f}  [dim]{described.get(f.name, '')}[/dim]")
    _print_projection(result.projection)


# ----------------------------------------------------------------------------- bench


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (speed and peak memory)."""


def backend_option(f: F) -> F:
    """``--backend`` for the database benchmarks, passed on as the list ``backends``."""
    return click.option(
        "--backend",
        "backends",
        type=click.Choice(["sqlite", "postgresql", "both"]),
        default="both",
        show_default=True,
        callback=lambda _ctx, _param, value: (
            ["sqlite", "postgresql"] if value == "both" else [value]
        ),
    )(f)


def figures_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A benchmark's figures: the first column names the run, the others are right-aligned."""
    t = Table(title=title)
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*row)
    return t


@bench.command("load")
@click.option("--families", default=100_000, show_default=True, help="Families to synthesise.")
@backend_option
@click.option(
    "--pg-url",
    metavar="URL",
    help="PostgreSQL server to use [default: a throwaway cluster from the local binaries].",
)
@click.option("--seed", default=2018, show_default=True)
@json_option
def bench_load(
    families: int, backends: list[str], pg_url: str | None, seed: int, as_json: bool
) -> None:
    """Rows per second and peak memory loading a synthetic council."""
    from claims import bench as benchmod

    with progress_bar(not as_json) as progress:
        report = benchmod.bench_load(
            families, backends, seed=seed, pg_url=pg_url, progress=progress
        )
    if as_json:
        print_json(report)
        return
    rows = [
        (r.backend, f"{r.seconds:.2f}", f"{r.rows_per_second:,.0f}", f"{r.peak_rss_mib:,.0f}")
        for r in report.results
    ]
    out.print(
        figures_table(
            f"Load benchmark: {report.families:,} families, {report.rows:,} rows",
            ("backend", "seconds", "rows/s", "peak RSS (MiB)"),
            rows,
        )
    )
    out.print(f"(synthesising the extracts took {report.synth_seconds:.1f} s, not counted)")


@bench.command("evaluate")
@click.option(
    "--families",
    "sizes",
    multiple=True,
    type=click.IntRange(min=1),
    default=[10_000, 100_000, 1_000_000],
    show_default=True,
    help="Council sizes for the polars evaluator (repeat the option).",
)
@click.option(
    "--reference-at",
    multiple=True,
    type=click.IntRange(min=1),
    default=[10_000],
    show_default=True,
    help="Sizes at which to time the reference evaluator too (it is slow: keep these small).",
)
@click.option("--no-reference", is_flag=True, help="Do not time the reference evaluator.")
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Timed runs per evaluator and size; the median is reported.",
)
@click.option("--as-of", "as_of", type=DATE, default="2018-03-31", show_default=True)
@click.option("--seed", default=2018, show_default=True)
@json_option
def bench_evaluate(
    sizes: tuple[int, ...],
    reference_at: tuple[int, ...],
    no_reference: bool,
    repeat: int,
    as_of: dt.date,
    seed: int,
    as_json: bool,
) -> None:
    """Wall time and peak memory of the polars evaluator, against the reference evaluator.

    Each evaluator runs in its own fresh process: it evaluates a 200-family council untimed
    first, then the measured council --repeat times; the median run is reported.
    """
    from claims import bench as benchmod

    with progress_bar(not as_json) as progress:
        report = benchmod.bench_evaluate(
            list(sizes),
            reference_at=[] if no_reference else list(reference_at),
            as_of=as_of.isoformat(),
            seed=seed,
            repeat=repeat,
            progress=progress,
        )
    if as_json:
        print_json(report)
        return
    columns = (
        "evaluator",
        "families",
        "rows",
        "read s",
        f"evaluate s (median of {report.repeat})",
        "fastest s",
        "slowest s",
        "peak RSS (MiB)",
        "claimable",
    )
    rows = [
        (
            r.evaluator,
            f"{r.families:,}",
            f"{r.rows:,}",
            f"{r.read_seconds:.2f}",
            f"{r.seconds:.2f}",
            f"{min(r.runs):.2f}",
            f"{max(r.runs):.2f}",
            f"{r.peak_rss_mib:,.0f}",
            f"{r.claimable:,}",
        )
        for r in report.results
    ]
    out.print(
        figures_table(f"Evaluate benchmark at E={report.as_of} (default plan)", columns, rows)
    )
    out.print(
        f"(each process evaluated a {report.warmup_families}-family council untimed first; "
        "reading the Parquet extracts is not counted)"
    )
    for n, ratio in sorted(report.speedup.items()):
        out.print(
            f"at {n:,} families the polars evaluator is {ratio:,.0f}x faster than the reference "
            f"(medians); {report.speedup_worst[n]:,.0f}x its slowest run against the "
            "reference's fastest"
        )


@bench.command("batch")
@click.option("--families", default=100_000, show_default=True, help="Families to synthesise.")
@backend_option
@click.option("--window", default="2018-02", show_default=True, metavar="YYYY-MM")
@click.option("--pg-url", metavar="URL", help="PostgreSQL server [default: a throwaway cluster].")
@json_option
def bench_batch(
    families: int, backends: list[str], window: str, pg_url: str | None, as_json: bool
) -> None:
    """Wall time of a claim batch's prepare plus finalise on a synthetic council."""
    from claims import bench as benchmod

    with progress_bar(not as_json) as progress:
        report = benchmod.bench_batch(
            families, backends, window=window, pg_url=pg_url, progress=progress
        )
    if as_json:
        print_json(report)
        return
    columns = (
        "backend",
        "claimable",
        "sampled",
        "prepare s",
        "finalise s",
        "prepare+finalise s",
        "(verify s)",
        "peak RSS (MiB)",
    )
    rows = [
        (
            r.backend,
            f"{r.claimable:,}",
            f"{r.sampled:,}",
            f"{r.prepare_seconds:.1f}",
            f"{r.finalise_seconds:.1f}",
            f"{r.prepare_plus_finalise:.1f}",
            f"{r.verify_seconds:.1f}",
            f"{r.peak_rss_mib:,.0f}",
        )
        for r in report.results
    ]
    title = f"Claim batch benchmark: {report.families:,} families, window {report.window}"
    out.print(figures_table(title, columns, rows))
    out.print(
        "(loading the extracts is not counted; verify records a pass for every sampled claim)"
    )


# ----------------------------------------------------------------------------- entry point


def one_line(message: str) -> str:
    """``message`` as one printable line: control characters are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the CLI, turning errors into one line."""
    debug = os.environ.get("TFCLAIMS_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="tfclaims", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except (warehouse.WarehouseError, PlanError) as exc:
        if debug:
            raise
        fail(" / ".join(str(exc).splitlines()), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        fail("interrupted: nothing was committed by the step in progress", 130)
    except (Exception, PanicException) as exc:
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fail(
            f"unexpected {type(exc).__name__}: {first} (set TFCLAIMS_DEBUG=1 for details)",
            EXIT_FAILED,
        )


if __name__ == "__main__":
    main()
