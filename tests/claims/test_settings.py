"""Settings: defaults, tfclaims.toml, TFCLAIMS_* overrides, and clear errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from claims.cli import main
from claims.resources import migrations_dir, templates_dir
from claims.settings import DEFAULT_DATABASE_URL, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TFCLAIMS_DATABASE_URL", "TFCLAIMS_CONFIG", "TFCLAIMS_QUOTA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = Settings()
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.la_code == "E06000049"
    assert s.payment_per_claim == Decimal("800")
    assert s.programme_end == dt.date(2020, 3, 31)


def test_toml_file_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tfclaims.toml").write_text(
        'database_url = "sqlite:///from-file.db"\nquota = 1000\nprogramme_end = 2021-03-31\n'
    )
    s = Settings()
    assert s.database_url == "sqlite:///from-file.db"
    assert s.quota == 1000
    assert s.programme_end == dt.date(2021, 3, 31)
    monkeypatch.setenv("TFCLAIMS_DATABASE_URL", "sqlite:///from-env.db")
    assert Settings().database_url == "sqlite:///from-env.db"


def test_config_file_named_by_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("quota = 42\n")
    monkeypatch.setenv("TFCLAIMS_CONFIG", str(other))
    assert Settings().quota == 42


def test_bad_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TFCLAIMS_QUOTA", "lots")
    with pytest.raises(SystemExit) as exc:
        main(["status"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: settings: quota"), lines


def test_new_sqlite_file_is_migrated_implicitly(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    try:
        main(["status", "--database", f"sqlite:///{db}", "--json"])
    except SystemExit as exc:
        assert not exc.code
    assert db.is_file()


def test_resources_resolve_from_checkout() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert templates_dir().is_dir()
