"""Named fault points, so crash-safety tests can kill a process at a known step.

Set ``TFCLAIMS_FAULT_POINT`` to a point's name and ``TFCLAIMS_FAULT_FILE`` to a
path: on reaching that point the process writes the file and sleeps, waiting
for the test to kill it. Unset (always, in normal use) this does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def fault_point(name: str) -> None:
    """Pause here for a crash test if ``TFCLAIMS_FAULT_POINT`` names this point."""
    if os.environ.get("TFCLAIMS_FAULT_POINT") != name:
        return
    marker = os.environ.get("TFCLAIMS_FAULT_FILE")
    if marker:
        # Write then rename, so a watcher never sees the file before its content.
        tmp = Path(f"{marker}.tmp")
        tmp.write_text(name)
        tmp.replace(marker)
    time.sleep(float(os.environ.get("TFCLAIMS_FAULT_SLEEP", "120")))
