"""Rendering Jinja2 templates, with council overrides first and HTML autoescaped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from claims.resources import templates_dir
from warehouse import neutralise


@cache
def environment(override_dir: Path | None = None) -> Environment:
    """The template environment: ``override_dir`` (a council's own) before the shipped ones."""
    loaders = [FileSystemLoader(str(override_dir))] if override_dir else []
    loaders.append(FileSystemLoader(str(templates_dir())))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "htm", "xml", "html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["csv_cell"] = csv_cell
    return env


def render(name: str, override_dir: Path | None = None, **context: Any) -> str:
    """Render template ``name`` with ``context``."""
    return environment(override_dir).get_template(name).render(**context)


def plain_text(value: Any) -> str:
    """A value as CSV text: dates ISO, Decimals fixed-point, booleans lower-case, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def csv_cell(value: Any) -> str:
    """One CSV cell (RFC 4180): text neutralised against formula injection, then quoted if needed.

    Registered as the Jinja filter ``csv_cell`` for the CSV templates. Only text
    is neutralised: a number stays a number.
    """
    text = neutralise(value) if isinstance(value, str) else plain_text(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return str(text)
