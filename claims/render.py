"""Rendering Jinja2 templates, with council overrides first and HTML autoescaped."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from claims.resources import templates_dir


@cache
def environment(override_dir: Path | None = None) -> Environment:
    """The template environment: ``override_dir`` (a council's own) before the shipped ones."""
    loaders = [FileSystemLoader(str(override_dir))] if override_dir else []
    loaders.append(FileSystemLoader(str(templates_dir())))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "htm", "xml", "html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(name: str, override_dir: Path | None = None, **context: Any) -> str:
    """Render template ``name`` with ``context``."""
    return environment(override_dir).get_template(name).render(**context)
