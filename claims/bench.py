"""Benchmarks: figures printed by ``tfclaims bench``, never asserted by tests.

Each measured run happens in a fresh child process, so its peak resident
memory (``ru_maxrss``) is the run's own, not the parent's.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TypeVar

import warehouse
from claims.resources import migrations_dir
from warehouse.pgcluster import create_database, temporary_cluster
from warehouse.synth import synthesise

T = TypeVar("T")


@dataclass(frozen=True)
class BackendFigure:
    """One backend's measured load."""

    backend: str
    seconds: float
    rows_per_second: float
    peak_rss_mib: float


@dataclass(frozen=True)
class LoadBench:
    """The load benchmark's figures."""

    families: int
    rows: int
    synth_seconds: float
    results: list[BackendFigure]


def _timed_load(url: str, folder: str) -> tuple[float, int, float]:
    """Child process: migrate (untimed), then time one load. Returns seconds, rows, MiB."""
    engine = warehouse.make_engine(url)
    warehouse.upgrade(engine, migrations_dir())
    start = time.perf_counter()
    result = warehouse.load_folder(engine, Path(folder))
    seconds = time.perf_counter() - start
    engine.dispose()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, result.rows_loaded, peak_mib


def _in_child(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a fresh process, so that its peak memory is its own."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _database(stack: ExitStack, backend: str, folder: Path, pg_url: str | None, name: str) -> str:
    """A fresh database for a benchmark: a SQLite file in ``folder``, or database ``name`` on
    ``pg_url`` (a throwaway PostgreSQL cluster, closed with ``stack``, when there is none)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    server = pg_url or stack.enter_context(temporary_cluster())
    return create_database(server, name)


def bench_load(
    families: int,
    backends: list[str],
    *,
    seed: int = 2018,
    pg_url: str | None = None,
    progress: warehouse.Progress | None = None,
) -> LoadBench:
    """Synthesise ``families`` and time loading them into each backend."""
    progress = progress or warehouse.Progress()
    tmp = Path(tempfile.mkdtemp(prefix="tfclaims-bench-"))
    try:
        progress.stage("synthesising", families)
        t0 = time.perf_counter()
        summary = synthesise(
            tmp / "extracts", families=families, seed=seed, progress=progress.advance
        )
        synth_seconds = time.perf_counter() - t0
        results: list[BackendFigure] = []
        progress.stage("loading", len(backends))
        for backend in backends:
            with ExitStack() as stack:
                url = _database(stack, backend, tmp, pg_url, "tfclaims_bench")
                seconds, rows, peak = _in_child(_timed_load, url, str(tmp / "extracts"))
            results.append(BackendFigure(backend, seconds, rows / seconds, peak))
            progress.advance(1)
        return LoadBench(families, sum(summary.rows.values()), synth_seconds, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class EvaluateFigure:
    """One evaluator at one size: ``seconds`` is the median of the timed runs."""

    evaluator: str
    families: int
    rows: int
    read_seconds: float
    seconds: float
    peak_rss_mib: float
    claimable: int
    runs: tuple[float, ...] = ()


@dataclass(frozen=True)
class EvaluateBench:
    """The evaluate benchmark's figures."""

    as_of: str
    repeat: int
    warmup_families: int
    results: list[EvaluateFigure]
    speedup: dict[int, float]  # families -> reference median / polars median
    # families -> the reference's fastest run / the polars evaluator's slowest: the ratio
    # that no pairing of the timed runs falls below
    speedup_worst: dict[int, float]


WARMUP_FAMILIES = 200  # the untimed council each measuring process evaluates first


def _parquet_sources(folder: Path) -> tuple[dict[str, object], int]:
    """Typed frames straight from the synthetic Parquet files, with ``row_no`` as the loader
    sets it, each column one contiguous chunk as the loader gives it (``warehouse.read_table``)."""
    import polars as pl

    tables: dict[str, object] = {}
    rows = 0
    for t in warehouse.TABLES:
        frame = pl.read_parquet(folder / f"{t.name}.parquet")
        frame = (
            frame.with_row_index("row_no", offset=2)
            .with_columns(pl.col("row_no").cast(pl.Int64))
            .rechunk()
        )
        rows += frame.height
        tables[t.name] = frame.lazy()
    return tables, rows


def _timed_evaluate(
    folder: str, warmup: str, as_of: str, which: str, repeat: int
) -> tuple[float, tuple[float, ...], int, int, float]:
    """Child process: evaluate the warm-up council untimed, read the measured council's frames,
    then time ``repeat`` runs of one evaluator. Returns read s, run seconds, rows, claimable, MiB."""
    import datetime as dt

    import rules

    plan = rules.load_plan(rules.default_plan_path())
    e = dt.date.fromisoformat(as_of)

    def run(sources: rules.Sources) -> int:
        if which == "polars":
            return int(rules.evaluate(plan, sources, e).families.get_column("claimable").sum())
        return sum(r.claimable for r in rules.evaluate_reference(plan, sources, e))

    tables, _ = _parquet_sources(Path(warmup))
    run(rules.Sources(tables=tables))  # type: ignore[arg-type]
    start = time.perf_counter()
    tables, rows = _parquet_sources(Path(folder))
    sources = rules.Sources(tables=tables)  # type: ignore[arg-type]
    read = time.perf_counter() - start
    runs: list[float] = []
    claimable = 0
    for _ in range(repeat):
        start = time.perf_counter()
        claimable = run(sources)
        runs.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return read, tuple(runs), rows, claimable, peak_mib


def bench_evaluate(
    sizes: list[int],
    *,
    reference_at: list[int],
    as_of: str = "2018-03-31",
    seed: int = 2018,
    repeat: int = 3,
    progress: warehouse.Progress | None = None,
) -> EvaluateBench:
    """Time the polars evaluator at each size and the reference evaluator at ``reference_at``.

    Each evaluator runs in a fresh child process that first evaluates a small council untimed
    (imports, thread pool, first-use allocations), then evaluates the measured council
    ``repeat`` times; the figure is the median run. Peak memory is the child's.
    """
    progress = progress or warehouse.Progress()
    results: list[EvaluateFigure] = []
    root = Path(tempfile.mkdtemp(prefix="tfclaims-bench-"))
    try:
        warmup = root / "warmup"
        synthesise(warmup, families=WARMUP_FAMILIES, seed=seed + 1, fmt="parquet")
        for n in sorted(set(sizes) | set(reference_at)):
            tmp = root / str(n)
            try:
                progress.stage(f"synthesising {n:,}", n)
                synthesise(tmp, families=n, seed=seed, fmt="parquet", progress=progress.advance)
                runs = (["polars"] if n in sizes else []) + (
                    ["reference"] if n in reference_at else []
                )
                for which in runs:
                    progress.stage(f"{which} at {n:,} ({repeat} runs)", 1)
                    read, times, rows, claimable, peak = _in_child(
                        _timed_evaluate, str(tmp), str(warmup), as_of, which, repeat
                    )
                    results.append(
                        EvaluateFigure(which, n, rows, read, median(times), peak, claimable, times)
                    )
                    progress.advance(1)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    speedup: dict[int, float] = {}
    worst: dict[int, float] = {}
    for n in reference_at:
        pol = [r for r in results if r.evaluator == "polars" and r.families == n]
        ref = [r for r in results if r.evaluator == "reference" and r.families == n]
        if pol and ref:
            speedup[n] = ref[0].seconds / pol[0].seconds
            worst[n] = min(ref[0].runs) / max(pol[0].runs)
    return EvaluateBench(as_of, repeat, WARMUP_FAMILIES, results, speedup, worst)


# ----------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class BatchFigure:
    """One backend's timed claim batch."""

    backend: str
    claimable: int
    sampled: int
    prepare_seconds: float
    verify_seconds: float
    finalise_seconds: float
    peak_rss_mib: float

    @property
    def prepare_plus_finalise(self) -> float:
        """The figure the goal is about."""
        return self.prepare_seconds + self.finalise_seconds


@dataclass(frozen=True)
class BatchBench:
    """The batch benchmark's figures."""

    families: int
    window: str
    results: list[BatchFigure]


def _timed_batch(
    url: str, folder: str, out: str, window: str
) -> tuple[int, int, float, float, float, float]:
    """Child process: load (untimed), then time prepare, verify (every sampled claim passes) and finalise."""
    import datetime as dt

    from claims import batch
    from claims.settings import Settings

    engine = warehouse.make_engine(url)
    warehouse.upgrade(engine, migrations_dir())
    warehouse.load_folder(engine, Path(folder))
    settings = Settings(database_url=url, output_dir=Path(out))
    t0 = time.perf_counter()
    prepared = batch.prepare(settings, engine, window, seed="bench")
    t1 = time.perf_counter()
    with warehouse.batch_reader(engine, window) as tx:
        sampled = tx.sample().get_column("family_id").to_list()
    rows: list[dict[str, object]] = [
        {
            "family_id": f,
            "result": "pass",
            "note": "",
            "auditor": "bench",
            "checked_on": dt.date.today(),
        }
        for f in sampled
    ]
    batch.verify(settings, engine, window, rows)
    t2 = time.perf_counter()
    batch.finalise(settings, engine, window)
    t3 = time.perf_counter()
    engine.dispose()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return prepared.counts["claimable"], len(sampled), t1 - t0, t2 - t1, t3 - t2, peak_mib


def bench_batch(
    families: int,
    backends: list[str],
    *,
    window: str = "2018-02",
    seed: int = 2018,
    pg_url: str | None = None,
    progress: warehouse.Progress | None = None,
) -> BatchBench:
    """Synthesise and load ``families``, then time a claim batch on each backend."""
    progress = progress or warehouse.Progress()
    tmp = Path(tempfile.mkdtemp(prefix="tfclaims-bench-"))
    try:
        progress.stage("synthesising", families)
        synthesise(tmp / "extracts", families=families, seed=seed, progress=progress.advance)
        results: list[BatchFigure] = []
        progress.stage("claim batches", len(backends))
        for backend in backends:
            with ExitStack() as stack:
                url = _database(stack, backend, tmp, pg_url, "tfclaims_bench_batch")
                claimable, sampled, prep, ver, fin, peak = _in_child(
                    _timed_batch, url, str(tmp / "extracts"), str(tmp / f"out-{backend}"), window
                )
            results.append(BatchFigure(backend, claimable, sampled, prep, ver, fin, peak))
            progress.advance(1)
        return BatchBench(families, window, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
