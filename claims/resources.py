"""Where the templates and migrations live, from a checkout or an installed wheel.

In a checkout they are the top-level ``templates/`` and ``migrations/``
folders. A wheel installs them under ``<prefix>/share/tfclaims/`` as data
files; the installed distribution's RECORD says exactly where, whatever the
install scheme (venv, --user, system).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


class ResourceNotFound(RuntimeError):
    """A packaged resource folder could not be found."""


@cache
def resource_dir(name: str) -> Path:
    """Return the folder holding the ``templates`` or ``migrations`` resources.

    The checkout is preferred (an editable install or a plain clone); otherwise
    the installed distribution's files are searched for ``share/tfclaims/<name>``.
    """
    if name not in ("templates", "migrations"):
        raise ValueError(f"unknown resource folder {name!r}")
    checkout = _CHECKOUT_ROOT / name
    if checkout.is_dir() and (_CHECKOUT_ROOT / "pyproject.toml").is_file():
        return checkout
    try:
        dist = metadata.distribution("tfclaims")
    except metadata.PackageNotFoundError as exc:
        raise ResourceNotFound(f"tfclaims is neither a checkout nor installed: no {name}/") from exc
    marker = ("share", "tfclaims", name)
    for f in dist.files or ():
        parts = f.parts
        for i in range(len(parts) - len(marker)):
            if tuple(parts[i : i + len(marker)]) == marker:
                folder = Path(str(dist.locate_file(Path(*parts[: i + len(marker)])))).resolve()
                if folder.is_dir():
                    return folder
    raise ResourceNotFound(f"the installed tfclaims has no share/tfclaims/{name} folder")


def templates_dir() -> Path:
    """The Jinja2 templates folder."""
    return resource_dir("templates")


def migrations_dir() -> Path:
    """The Alembic migrations folder."""
    return resource_dir("migrations")
