"""Shared fixtures: a warehouse on each backend, and a throwaway PostgreSQL cluster.

The cluster is started once per test session from the machine's PostgreSQL
binaries (``.ci/run`` installs them when missing). Without them the
PostgreSQL cases are skipped locally, but fail under CI (``CI=true``), where a
skipped backend would hide a regression.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

import warehouse
from claims.resources import migrations_dir
from warehouse.pgcluster import create_database, find_pg_bin, temporary_cluster

REPO = Path(__file__).resolve().parent.parent
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the session's throwaway PostgreSQL server."""
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries are missing under CI: .ci/run should install them")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    with temporary_cluster() as url:
        yield url


def new_database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A fresh, empty database on ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    server: str = request.getfixturevalue("pg_server")
    return create_database(server, f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each warehouse backend in turn."""
    return str(request.param)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """URL of a fresh, empty database on the current backend."""
    return new_database_url(request, backend, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to head."""
    eng = warehouse.make_engine(db_url)
    warehouse.upgrade(eng, migrations_dir())
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite warehouse migrated to head."""
    eng = warehouse.make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.upgrade(eng, migrations_dir())
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic council's extracts (CSV), written once per session."""
    from warehouse.synth import synthesise

    folder = tmp_path_factory.mktemp("synth") / "extracts"
    synthesise(folder, families=400, seed=7)
    return folder
