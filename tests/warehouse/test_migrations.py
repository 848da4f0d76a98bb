"""Migrations reach head on both backends, and the models never drift from them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import warehouse
from claims.resources import migrations_dir
from warehouse.models import Base


def test_upgrade_reaches_head(engine: Engine) -> None:
    assert warehouse.current_revision(engine) == warehouse.head_revision(migrations_dir())
    tables = set(inspect(engine).get_table_names())
    assert {t.db_table for t in warehouse.TABLES} <= tables
    assert {"load_batch", "load_file", "table_state"} <= tables


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_upgrade_is_idempotent(engine: Engine) -> None:
    before = warehouse.current_revision(engine)
    assert warehouse.upgrade(engine, migrations_dir()) == before


def test_models_match_the_contract() -> None:
    from warehouse.models import EXTRACT_MODELS

    for t in warehouse.TABLES:
        cols = EXTRACT_MODELS[t.name].__table__.c  # type: ignore[attr-defined]
        assert EXTRACT_MODELS[t.name].__tablename__ == t.db_table
        assert [c.name for c in cols] == ["row_no", *t.column_names]
        for c in t.columns:
            assert cols[c.name].nullable is (not c.required), (t.name, c.name)
