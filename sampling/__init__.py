"""Verification sampling: pure functions over frames, seed in, sample out; no I/O.

The claim batch issue fills this package; it has no public API yet.
"""

__all__: list[str] = []
