"""The claimed-family registry: one row per family ever claimed, by any route.

Its primary key is the database's guarantee against a double claim (see
``models.ClaimedFamily``).
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, Engine, delete, select, text

from warehouse.models import ClaimedFamily


def refresh_history_claims(conn: Connection) -> None:
    """Make the registry's ``history`` rows match the claims extract just loaded.

    Runs in the load's transaction; a history family that a submitted batch
    already claimed violates the primary key and fails the whole load.
    """
    conn.execute(delete(ClaimedFamily).where(ClaimedFamily.source == "history"))
    conn.execute(
        text(
            "INSERT INTO claimed_family (family_id, source, batch_id, claimed_on) "
            "SELECT family_id, 'history', NULL, claimed_on FROM claims_history"
        )
    )


def submitted_families(engine: Engine) -> pl.Series:
    """Families claimed by batches this system submitted (withdrawn ones included)."""
    with engine.connect() as conn:
        ids = conn.scalars(
            select(ClaimedFamily.family_id).where(ClaimedFamily.source == "batch")
        ).all()
    return pl.Series("family_id", list(ids), dtype=pl.String)
