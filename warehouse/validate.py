"""Row-level validation of an extract against the contract, vectorised in polars.

Each breach becomes one row of the rejects frame: file, row, column, a stable
rule code, the offending value and a message a non-developer understands.
Checks on a value run only once the value has passed the checks before it, so
one bad date reports ``bad_date`` and not also ``end_before_start``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from warehouse.contract import Column, Table
from warehouse.extract import ROW_COLUMN, RawExtract
from warehouse.models import EXTRACT_MODELS

REJECT_COLUMNS = ("file", "row", "column", "rule", "value", "message")

RULES: dict[str, str] = {
    "missing_required": "a required value is empty",
    "bad_date": "not a real date in the form YYYY-MM-DD",
    "implausible_date": "a date implausibly far in the past or the future",
    "bad_integer": "not a whole number",
    "bad_decimal": "not a decimal number with at most the allowed decimal places",
    "below_minimum": "a number below the allowed minimum",
    "not_in_set": "a code that is not in the contract's list",
    "bad_format": "a value not in the required format",
    "too_long": "a value longer than the warehouse holds",
    "unknown_family": "a family_id that is not in the families extract",
    "unknown_person": "a person_id that is not in the people extract",
    "duplicate_key": "a repeat of a key that must be unique",
    "end_before_start": "an end date before its start date",
    "exceeds_total": "a count larger than the total it is part of",
    "set_while_open": "a value that must be empty while the spell is open",
    "claimed_by_batch": "a family already claimed in a batch this system submitted",
}
"""Every rule code the loader reports, with what it means."""

_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# At most 9 digits: every integer column is a 32-bit INTEGER in the warehouse.
_INT_RE = r"^[+-]?[0-9]{1,9}$"


@dataclass(frozen=True)
class DateBounds:
    """Dates outside [earliest, latest] are implausible."""

    earliest: dt.date = dt.date(1900, 1, 1)
    latest: dt.date = dt.date.today() + dt.timedelta(days=366)


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one extract."""

    valid: pl.DataFrame  # row_no + typed contract columns, the rows that passed
    rejects: pl.DataFrame  # REJECT_COLUMNS
    total_rows: int


def _typed_name(c: str) -> str:
    return f"__typed_{c}"


def _ok_name(c: str) -> str:
    return f"__ok_{c}"


def polars_dtype(col: Column) -> pl.DataType:
    """The polars type a contract column is held in."""
    if col.type == "date":
        return pl.Date()
    if col.type == "int":
        return pl.Int64()
    if col.type == "decimal":
        precision, scale = col.decimal or (18, 2)
        return pl.Decimal(precision, scale)
    return pl.String()


def _max_length(table: Table, col: Column) -> int | None:
    sql_type = EXTRACT_MODELS[table.name].__table__.c[col.name].type
    length = getattr(sql_type, "length", None)
    return int(length) if col.type == "str" and length else None


def _decimal_re(col: Column) -> str:
    precision, scale = col.decimal or (18, 2)
    return rf"^[+-]?[0-9]{{1,{precision - scale}}}(\.[0-9]{{1,{scale}}})?$"


def validate(
    raw: RawExtract,
    *,
    families: pl.Series | None,
    people: pl.Series | None,
    bounds: DateBounds | None = None,
    submitted: pl.Series | None = None,
) -> Validated:
    """Validate ``raw`` against its table's contract.

    ``families`` and ``people`` are the identifiers that references may point
    to (None: that reference is not checked, because that table was never
    loaded and is not in this load either).
    """
    bounds = bounds or DateBounds()
    table = raw.file.table
    name = raw.file.path.name
    df = raw.frame
    checks: list[tuple[pl.Expr, str, str, pl.Expr]] = []  # mask, column, rule, message

    def lit_msg(text: str) -> pl.Expr:
        return pl.lit(text)

    # Per-column parsing: typed value plus an "ok so far" flag.
    typed_exprs: list[pl.Expr] = []
    for col in table.columns:
        v = pl.col(col.name)
        typed: pl.Expr
        well_formed: pl.Expr
        if col.type == "date":
            parsed = v.str.to_date("%Y-%m-%d", strict=False)
            well_formed = v.str.contains(_DATE_RE) & parsed.is_not_null()
            typed = pl.when(well_formed).then(parsed)
        elif col.type == "int":
            well_formed = v.str.contains(_INT_RE)
            typed = pl.when(well_formed).then(v.cast(pl.Int64, strict=False))
        elif col.type == "decimal":
            well_formed = v.str.contains(_decimal_re(col))
            typed = pl.when(well_formed).then(v.cast(polars_dtype(col), strict=False))
        else:
            well_formed = pl.lit(True)
            typed = v
        typed_exprs.append(typed.alias(_typed_name(col.name)))
        # A value present in the file must convert: never let one become null.
        typed_exprs.append(
            (v.is_null() | (well_formed & typed.is_not_null())).alias(_ok_name(col.name))
        )
    df = df.with_columns(typed_exprs)

    for col in table.columns:
        v, t, ok = pl.col(col.name), pl.col(_typed_name(col.name)), pl.col(_ok_name(col.name))
        label = col.name
        if col.required:
            checks.append(
                (v.is_null(), label, "missing_required", lit_msg(f"{label} is required but empty"))
            )
        if col.type == "date":
            checks.append(
                (
                    ~ok,
                    label,
                    "bad_date",
                    pl.format("'{}' is not a real date in the form YYYY-MM-DD", v),
                )
            )
            checks.append(
                (
                    t.is_not_null() & ((t < bounds.earliest) | (t > bounds.latest)),
                    label,
                    "implausible_date",
                    pl.format(
                        "{} is implausible: dates must lie between {} and {}",
                        v,
                        pl.lit(bounds.earliest.isoformat()),
                        pl.lit(bounds.latest.isoformat()),
                    ),
                )
            )
        elif col.type == "int":
            checks.append((~ok, label, "bad_integer", pl.format("'{}' is not a whole number", v)))
        elif col.type == "decimal":
            scale = (col.decimal or (18, 2))[1]
            checks.append(
                (
                    ~ok,
                    label,
                    "bad_decimal",
                    pl.format(
                        "'{}' is not a number with at most {} decimal places", v, pl.lit(scale)
                    ),
                )
            )
        if col.minimum is not None:
            checks.append(
                (
                    t.is_not_null() & (t < col.minimum),
                    label,
                    "below_minimum",
                    pl.format("{} is below the minimum of {}", v, pl.lit(col.minimum)),
                )
            )
        if col.choices is not None:
            allowed = ", ".join(col.choices)
            checks.append(
                (
                    v.is_not_null() & ~v.is_in(list(col.choices)),
                    label,
                    "not_in_set",
                    pl.format("'{}' is not one of: {}", v, pl.lit(allowed)),
                )
            )
        if col.pattern is not None:
            checks.append(
                (
                    v.is_not_null() & ~v.str.contains(col.pattern),
                    label,
                    "bad_format",
                    pl.format("'{}' is not in the form {}", v, pl.lit(col.pattern_hint or "")),
                )
            )
        max_len = _max_length(table, col)
        if max_len is not None:
            checks.append(
                (
                    v.is_not_null() & (v.str.len_chars() > max_len),
                    label,
                    "too_long",
                    lit_msg(f"{label} is longer than {max_len} characters"),
                )
            )
        refs = {"families": families, "people": people}.get(col.references or "")
        if col.references is not None and refs is not None:
            rule = "unknown_family" if col.references == "families" else "unknown_person"
            checks.append(
                (
                    v.is_not_null() & ~v.is_in(refs.implode()),
                    label,
                    rule,
                    pl.format("'{}' is not in the {} extract", v, pl.lit(col.references)),
                )
            )

    if table.name == "claims" and submitted is not None:
        checks.append(
            (
                pl.col("family_id").is_in(submitted.implode()),
                "family_id",
                "claimed_by_batch",
                pl.format(
                    "family '{}' was already claimed in a batch this system submitted",
                    pl.col("family_id"),
                ),
            )
        )
    for start, end in table.spans:
        s, e = pl.col(_typed_name(start)), pl.col(_typed_name(end))
        checks.append(
            (
                s.is_not_null() & e.is_not_null() & (e < s),
                end,
                "end_before_start",
                pl.format(
                    "{} {} is before {} {}", pl.lit(end), pl.col(end), pl.lit(start), pl.col(start)
                ),
            )
        )
    for part, total in table.not_exceeding:
        p, w = pl.col(_typed_name(part)), pl.col(_typed_name(total))
        checks.append(
            (
                p.is_not_null() & w.is_not_null() & (p > w),
                part,
                "exceeds_total",
                pl.format(
                    "{} ({}) is more than {} ({})",
                    pl.lit(part),
                    pl.col(part),
                    pl.lit(total),
                    pl.col(total),
                ),
            )
        )
    for end, dependent in table.null_while_open:
        checks.append(
            (
                pl.col(end).is_null() & pl.col(dependent).is_not_null(),
                dependent,
                "set_while_open",
                pl.format(
                    "{} is '{}' but {} is empty (still open)",
                    pl.lit(dependent),
                    pl.col(dependent),
                    pl.lit(end),
                ),
            )
        )
    # Window expressions are computed over every row before any filtering.
    firsts: list[pl.Expr] = []
    for i, key in enumerate(table.keys):
        typed_key = [_typed_name(k) for k in key]
        complete = pl.all_horizontal(pl.col(k).is_not_null() for k in typed_key)
        first_name = f"__first_{i}"
        firsts.append(
            pl.when(complete).then(pl.col(ROW_COLUMN).min().over(typed_key)).alias(first_name)
        )
        first = pl.col(first_name)
        checks.append(
            (
                first.is_not_null() & (pl.col(ROW_COLUMN) != first),
                key[-1] if len(key) > 1 else key[0],
                "duplicate_key",
                pl.format("repeats ({}) already given on row {}", pl.lit(", ".join(key)), first),
            )
        )
    if firsts:
        df = df.with_columns(firsts)

    rejects = _collect_rejects(df, name, table, checks)
    bad_rows = rejects.get_column("row").unique()
    valid = df.filter(~pl.col(ROW_COLUMN).is_in(bad_rows.implode())).select(
        pl.col(ROW_COLUMN).alias("row_no"),
        *[pl.col(_typed_name(c.name)).cast(polars_dtype(c)).alias(c.name) for c in table.columns],
    )
    return Validated(valid=valid, rejects=rejects, total_rows=df.height)


def _collect_rejects(
    df: pl.DataFrame,
    file_name: str,
    table: Table,
    checks: list[tuple[pl.Expr, str, str, pl.Expr]],
) -> pl.DataFrame:
    value_of = {c.name: pl.col(c.name) for c in table.columns}
    parts = [
        # Messages are built only for the rows that fail.
        df.lazy()
        .filter(mask)
        .select(
            pl.lit(file_name).alias("file"),
            pl.col(ROW_COLUMN).alias("row"),
            pl.lit(column).alias("column"),
            pl.lit(rule).alias("rule"),
            value_of[column].cast(pl.String).alias("value"),
            message.cast(pl.String).alias("message"),
        )
        for mask, column, rule, message in checks
    ]
    schema = {
        "file": pl.String,
        "row": pl.Int64,
        "column": pl.String,
        "rule": pl.String,
        "value": pl.String,
        "message": pl.String,
    }
    if not parts:
        return pl.DataFrame(schema=schema)
    out = pl.concat(parts).collect()
    return out.sort("row", maintain_order=True) if out.height else pl.DataFrame(schema=schema)
