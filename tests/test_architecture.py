"""Package boundaries are checked by import-linter, not by memory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout.lower() and " 0 broken" in proc.stdout, proc.stdout


def test_public_apis_are_declared() -> None:
    import claims
    import rules
    import sampling
    import warehouse

    for pkg in (claims, rules, sampling, warehouse):
        assert isinstance(pkg.__all__, list)
        for name in pkg.__all__:
            assert hasattr(pkg, name), f"{pkg.__name__}.__all__ names missing {name}"
