"""Reading an Outcome Plan file: YAML in, a validated :class:`~rules.model.Plan` out.

Every problem is reported as ``<file>: <key path>: <reason> (line N)``, for
example ``phase2.yaml: headlines[2].outcome.steps[0].wait.months: Input should
be greater than 0 (line 88)``. All problems found are reported together.

The plan's content hash is the SHA-256 of its canonical bytes: the file
decoded as UTF-8 (a byte-order mark dropped), line endings normalised to LF,
encoded as UTF-8 again. The same plan checked out on Windows or Unix hashes
the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.model import Plan, check_plan

__all__ = [
    "PlanError",
    "PlanProblem",
    "canonical_bytes",
    "content_hash",
    "default_plan_path",
    "load_plan",
    "parse_plan",
]

DOCUMENT = "(document)"


@dataclass(frozen=True)
class PlanProblem:
    """One problem in a plan file: where (key path and line) and why."""

    path: str
    reason: str
    line: int | None = None

    def format(self, file: str) -> str:
        """``<file>: <key path>: <reason> (line N)``."""
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{file}: {self.path}: {self.reason}{where}"


class PlanError(ValueError):
    """A plan file that cannot be used. The message names the file, the key path and the reason."""

    def __init__(self, file: str, problems: list[PlanProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.format(file) for p in problems))


def default_plan_path() -> Path:
    """The shipped default plan (``rules/plans/phase2.yaml``)."""
    return Path(__file__).resolve().parent / "plans" / "phase2.yaml"


def canonical_bytes(raw: bytes) -> bytes:
    """The canonical form of a plan file: UTF-8, no byte-order mark, LF line endings."""
    text = raw.decode("utf-8-sig")
    return text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")


def content_hash(raw: bytes) -> str:
    """SHA-256 (hex) of the canonical bytes of a plan file."""
    return hashlib.sha256(canonical_bytes(raw)).hexdigest()


def format_path(path: tuple[str | int, ...]) -> str:
    """``("headlines", 2, "outcome")`` -> ``headlines[2].outcome``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or DOCUMENT


class _Lines:
    """Line numbers of the keys and items of a YAML document, and its duplicate keys."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        self.duplicates: list[tuple[tuple[str | int, ...], int]] = []
        self.boolean_keys: list[tuple[tuple[str | int, ...], int]] = []
        if root is not None:
            self._walk(root, (), 0)

    def _walk(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> None:
        if depth > 100:  # recursive aliases: the model rejects such a plan anyway
            return
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key == "<<":
                    continue
                here = (*path, key)
                line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:bool":
                    self.boolean_keys.append((here, line))
                if key in seen:
                    self.duplicates.append((here, line))
                seen.add(key)
                self.lines.setdefault(here, line)
                self._walk(value_node, here, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                here = (*path, i)
                self.lines.setdefault(here, item.start_mark.line + 1)
                self._walk(item, here, depth + 1)

    def line(self, path: tuple[str | int, ...]) -> int | None:
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None


def _loc_path(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # Discriminated unions put their tag ("<count>") in the location: drop it.
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("<")))


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    value = error.get("input")
    if (
        isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and kind not in ("unknown_primitive",)
    ):
        message += f" (got {value!r})"
    return message


def parse_plan(raw: bytes | str, file: str = "<string>") -> Plan:
    """Parse and validate plan text; raise :class:`PlanError` naming ``file`` on any problem."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        canonical = canonical_bytes(raw)
    except UnicodeDecodeError as exc:
        raise PlanError(file, [PlanProblem(DOCUMENT, f"not UTF-8 text ({exc.reason})")]) from None
    text = canonical.decode("utf-8")
    try:
        lines = _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise PlanError(file, [PlanProblem(DOCUMENT, f"not valid YAML: {problem}", line)]) from None
    problems = [
        PlanProblem(format_path(path), "duplicate key (YAML would keep only the last)", line)
        for path, line in lines.duplicates
    ] + [
        PlanProblem(
            format_path(path),
            "YAML reads this key as a boolean (on/off/yes/no); quote it or use another name",
            line,
        )
        for path, line in lines.boolean_keys
    ]
    if problems:
        raise PlanError(file, problems)
    if not isinstance(data, dict):
        raise PlanError(
            file,
            [PlanProblem(DOCUMENT, "a plan is a mapping with name, title, eligibility, headlines")],
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _loc_path(tuple(error["loc"]))
            problems.append(PlanProblem(format_path(path), _reason(error), lines.line(path)))
        raise PlanError(file, problems) from None
    meaning = check_plan(plan)
    if meaning:
        raise PlanError(
            file,
            [PlanProblem(format_path(path), reason, lines.line(path)) for path, reason in meaning],
        )
    plan._source = file
    plan._content_hash = hashlib.sha256(canonical).hexdigest()
    return plan


def load_plan(path: str | Path | None = None) -> Plan:
    """Load and validate the plan file at ``path`` (default: the shipped Phase 2 plan).

    Raises :class:`PlanError` naming the file, the key path and the reason.
    """
    file = Path(path) if path is not None else default_plan_path()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PlanError(
            str(file), [PlanProblem(DOCUMENT, f"cannot read: {exc.strerror}")]
        ) from None
    return parse_plan(raw, str(file))
