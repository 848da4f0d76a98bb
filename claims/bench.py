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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import warehouse
from claims.resources import migrations_dir
from warehouse.pgcluster import create_database, temporary_cluster
from warehouse.synth import synthesise


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


def _in_child(url: str, folder: Path) -> tuple[float, int, float]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_timed_load, (url, str(folder)))


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
                if backend == "sqlite":
                    url = f"sqlite:///{tmp / 'bench.db'}"
                else:
                    server = pg_url or stack.enter_context(temporary_cluster())
                    url = create_database(server, "tfclaims_bench")
                seconds, rows, peak = _in_child(url, tmp / "extracts")
            results.append(BackendFigure(backend, seconds, rows / seconds, peak))
            progress.advance(1)
        return LoadBench(families, sum(summary.rows.values()), synth_seconds, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
