"""The application: batch lifecycle, outputs, settings and the CLI."""

from claims.app import DemoResult, UpgradeResult, WarehouseStatus, db_upgrade, demo, load, status
from claims.resources import migrations_dir, templates_dir
from claims.settings import Settings

__all__ = [
    "DemoResult",
    "Settings",
    "UpgradeResult",
    "WarehouseStatus",
    "db_upgrade",
    "demo",
    "load",
    "migrations_dir",
    "status",
    "templates_dir",
]
