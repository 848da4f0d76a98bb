"""Engines, schema migration and the warehouse's transaction discipline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from warehouse.errors import WarehouseError


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, a busy timeout and FK checks."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WarehouseError(f"database URL {url!r} is not a valid SQLAlchemy URL") from exc
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).parent.exists():
            raise WarehouseError(f"folder for the SQLite database {db!r} does not exist")
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin,
            # so BEGIN IMMEDIATE can be issued for writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(parsed, pool_pre_ping=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One writing transaction: everything in it commits together or not at all.

    On SQLite the write lock is taken at BEGIN (``BEGIN IMMEDIATE``), so two
    writers queue instead of failing halfway.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def alembic_config(script_location: Path, engine: Engine) -> Config:
    """An Alembic config pointing at ``script_location`` for ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision(script_location: Path) -> str | None:
    """The newest migration revision shipped."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise WarehouseError(f"cannot open the warehouse: {exc.orig}") from exc


def upgrade(engine: Engine, script_location: Path, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (default: head); returns the new revision."""
    cfg = alembic_config(script_location, engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise WarehouseError(f"cannot migrate the warehouse: {exc.orig}") from exc
    return current_revision(engine)


def ensure_current(engine: Engine, script_location: Path) -> None:
    """Upgrade a new (empty) SQLite file to head; refuse to use an out-of-date database.

    A server database is never migrated implicitly: its owner runs
    ``tfclaims db upgrade``.
    """
    head = head_revision(script_location)
    current = current_revision(engine)
    if current == head:
        return
    if current is None and engine.dialect.name == "sqlite":
        upgrade(engine, script_location)
        return
    raise WarehouseError(
        f"the warehouse schema is at {current or 'nothing'}, the software needs {head}: "
        "run 'tfclaims db upgrade'"
    )
