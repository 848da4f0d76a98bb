"""sampling does no I/O: no files, no clock, no randomness, no network.

import-linter (tests/test_architecture.py) keeps warehouse, claims, SQLAlchemy and
Alembic out; this keeps out the standard library's ways of reaching the world.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sampling

PACKAGE = Path(sampling.__file__).resolve().parent
FORBIDDEN_MODULES = {
    "os",
    "io",
    "sys",
    "pathlib",
    "shutil",
    "tempfile",
    "glob",
    "time",
    "random",
    "secrets",
    "uuid",
    "socket",
    "subprocess",
    "urllib",
    "http",
    "sqlite3",
    "logging",
}
FORBIDDEN_CALLS = {"open", "print", "input", "now", "today", "utcnow", "urandom"}
POLARS_IO = ("read_", "scan_", "write_", "sink_")


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_module_that_reaches_the_world_is_imported() -> None:
    for path, tree in _sources():
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"


def test_no_file_clock_or_polars_io_call() -> None:
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}()"
            assert not name.startswith(POLARS_IO), f"{path.name}:{node.lineno} calls {name}()"


def test_public_api() -> None:
    expected = {
        "AlwaysRule",
        "SamplingSettings",
        "draw_sample",
        "escalate",
        "Escalated",
        "EscalationStep",
        "sample_hash",
        "stratum_size",
        "SAMPLE_SCHEMA",
    }
    assert expected <= set(sampling.__all__)
    for name in sampling.__all__:
        obj = getattr(sampling, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"sampling.{name} has no docstring"
