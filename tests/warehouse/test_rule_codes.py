"""Every rule code the loader reports has a bad extract that triggers it.

Each case loads one small bad file into a warehouse that already holds a good
base load (tests/warehouse/fixtures/base). The default all-or-nothing load must
raise ``LoadRejected``, write exactly the expected reject (file, row as a
spreadsheet shows it, column, rule code, value, message) to the rejects CSV,
and leave every table, the table state and the load batches as they were.

The base warehouse is shared by the cases of one backend (module scope): every
case asserts that it left the warehouse unchanged, so sharing it is sound and
keeps PostgreSQL cheap.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, insert

import warehouse
from claims.cli import EXIT_BAD_INPUT, main
from claims.resources import migrations_dir
from warehouse.load import REJECTS_FILE, LoadRejected
from warehouse.models import ClaimedFamily
from warehouse.pgcluster import create_database
from warehouse.query import current_batches
from warehouse.safefiles import neutralise
from warehouse.validate import REJECT_COLUMNS, RULES

BASE = Path(__file__).parent / "fixtures" / "base"

HEADERS = {t.name: ",".join(t.column_names) for t in warehouse.TABLES}


@dataclass(frozen=True)
class Case:
    """A bad extract file and the single reject it must produce."""

    id: str
    rule: str
    table: str
    rows: tuple[str, ...]  # data lines after the header
    row: int  # spreadsheet row number of the bad line (header = 1)
    column: str
    value: str  # the offending value as the file gives it ("" for an empty cell)


CASES: tuple[Case, ...] = (
    Case(
        "claimed_by_batch",
        "claimed_by_batch",
        "claims",
        ("0008,2017-10-01,2017-10,ssp", "F100,2018-03-01,2018-03,ssp"),
        3,
        "family_id",
        "F100",
    ),
    Case(
        "missing_required",
        "missing_required",
        "offences",
        ("00001,2016-08-01,offence,REF-001", "00002,,caution,"),
        3,
        "occurred_on",
        "",
    ),
    Case(
        "missing_required-blank",
        "missing_required",
        "families",
        ("0007,North,2016-04-01,,", "0008,Mid,,,", "F100,   ,,,"),
        4,
        "locality",
        "",
    ),
    Case(
        "bad_date",
        "bad_date",
        "offences",
        ("00001,2016-08-01,offence,REF-001", "00002,2017-02-30,caution,"),
        3,
        "occurred_on",
        "2017-02-30",
    ),
    Case(
        "bad_date-format",
        "bad_date",
        "neet",
        ("00002,01/07/2018,",),
        2,
        "started_on",
        "01/07/2018",
    ),
    Case(
        "implausible_date-past",
        "implausible_date",
        "exclusions",
        ("00002,2016-10-10,fixed_term", "00003,1850-01-01,permanent"),
        3,
        "excluded_on",
        "1850-01-01",
    ),
    Case(
        "implausible_date-future",
        "implausible_date",
        "benefits",
        ("00001,jsa,2015-01-01,2999-06-30",),
        2,
        "ended_on",
        "2999-06-30",
    ),
    Case(
        "bad_integer",
        "bad_integer",
        "attendance",
        ("00002,2016-09-05,2016-12-20,140,30", "00003,2016-09-05,2016-12-20,12.5,0"),
        3,
        "possible_sessions",
        "12.5",
    ),
    Case(
        "bad_decimal",
        "bad_decimal",
        "debt",
        ("0007,2016-04-01,rent_arrears,1200.50", "0008,2017-01-01,rent_arrears,12.345"),
        3,
        "amount",
        "12.345",
    ),
    Case(
        "bad_decimal-too-many-digits",
        "bad_decimal",
        "employment",
        ("00001,2017-01-01,,12345.5",),
        2,
        "hours_per_week",
        "12345.5",
    ),
    Case(
        "below_minimum",
        "below_minimum",
        "attendance",
        ("00002,2016-09-05,2016-12-20,140,-3",),
        2,
        "unauthorised_sessions",
        "-3",
    ),
    Case(
        "below_minimum-decimal",
        "below_minimum",
        "debt",
        ("0007,2016-04-01,rent_arrears,-0.01",),
        2,
        "amount",
        "-0.01",
    ),
    Case(
        "not_in_set",
        "not_in_set",
        "exclusions",
        ("00002,2016-10-10,fixed_term", "00003,2017-02-02,expelled"),
        3,
        "kind",
        "expelled",
    ),
    Case(
        "not_in_set-upper-case",
        "not_in_set",
        "people",
        ("00001,0007,adult,1980-02-29,Anne,Smith", "00002,0007,Child,2002-06-15,Bo,Smith"),
        3,
        "role",
        "Child",
    ),
    Case(
        "bad_format",
        "bad_format",
        "claims",
        ("0007,2017-10-01,2017-10,ssp", "0008,2017-10-01,2017-13,ce"),
        3,
        "claim_window",
        "2017-13",
    ),
    Case(
        "bad_format-non-ascii-digits",
        "bad_format",
        "claims",
        ("0007,2017-10-01,2017-10,ssp", "0008,2017-10-01,\u0662\u0660\u0661\u0667-10,ce"),
        3,
        "claim_window",
        "\u0662\u0660\u0661\u0667-10",
    ),
    Case(
        "too_long",
        "too_long",
        "offences",
        ("00001,2016-08-01,offence,REF-001", "00002,2017-01-15,caution," + "R" * 201),
        3,
        "reference",
        "R" * 201,
    ),
    Case(
        "unknown_family",
        "unknown_family",
        "debt",
        ("0007,2016-04-01,rent_arrears,1.00", "0009,2016-04-01,rent_arrears,2.00"),
        3,
        "family_id",
        "0009",
    ),
    Case(
        "unknown_family-leading-zeros",
        "unknown_family",
        "people",
        ("00001,0007,adult,,,", "00002,7,child,,,"),
        3,
        "family_id",
        "7",
    ),
    Case(
        "unknown_person",
        "unknown_person",
        "neet",
        ("00002,2018-07-01,", "0002,2018-07-01,"),
        3,
        "person_id",
        "0002",
    ),
    Case(
        "duplicate_key",
        "duplicate_key",
        "attendance",
        ("00002,2016-09-05,2016-12-20,140,30", "00002,2016-09-05,2016-12-21,100,3"),
        3,
        "term_start",
        "2016-09-05",
    ),
    Case(
        "duplicate_key-unique-id",
        "duplicate_key",
        "families",
        ("0007,North,,,", "0008,Mid,,,", "0007,South,,,"),
        4,
        "family_id",
        "0007",
    ),
    Case(
        "duplicate_key-debt",
        "duplicate_key",
        "debt",
        ("0007,2016-04-01,rent_arrears,1.00", "0007,2016-04-01,rent_arrears,2.00"),
        3,
        "recorded_on",
        "2016-04-01",
    ),
    Case(
        "end_before_start",
        "end_before_start",
        "social_care",
        ("00003,cin,2016-01-01,2016-12-31", "00002,cp,2016-06-01,2016-05-31"),
        3,
        "ended_on",
        "2016-05-31",
    ),
    Case(
        "end_before_start-term",
        "end_before_start",
        "attendance",
        ("00002,2016-09-05,2016-09-04,10,1",),
        2,
        "term_end",
        "2016-09-04",
    ),
    Case(
        "exceeds_total",
        "exceeds_total",
        "attendance",
        ("00002,2016-09-05,2016-12-20,140,30", "00003,2016-09-05,2016-12-20,10,11"),
        3,
        "unauthorised_sessions",
        "11",
    ),
    Case(
        "set_while_open",
        "set_while_open",
        "health",
        (
            "00001,mental_health,2016-01-01,2016-06-01,completed",
            "00004,substance_misuse,2017-01-01,,completed",
        ),
        3,
        "end_reason",
        "completed",
    ),
)


def test_every_rule_code_has_a_case() -> None:
    assert {c.rule for c in CASES} == set(RULES)
    assert len({c.id for c in CASES}) == len(CASES)


_db_names = iter(range(10**6))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def base_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A warehouse on each backend holding the good base load (shared by a module's cases)."""
    root = tmp_path_factory.mktemp("rule-codes")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'warehouse.db'}"
    else:
        server: str = request.getfixturevalue("pg_server")
        url = create_database(server, f"rc{os.getpid()}_{next(_db_names)}")
    eng = warehouse.make_engine(url)
    warehouse.upgrade(eng, migrations_dir())
    base = root / "base"
    shutil.copytree(BASE, base)
    result = warehouse.load_folder(eng, base)
    assert result.rows_rejected == 0
    assert warehouse.loaded_tables(eng) == {t.name for t in warehouse.TABLES}
    # Family F100 was claimed by a batch this system submitted (the registry row
    # that finalising a batch writes), so the history extract may not claim it.
    with eng.begin() as conn:
        conn.execute(
            insert(ClaimedFamily).values(
                family_id="F100", source="batch", batch_id=None, claimed_on=dt.date(2018, 3, 31)
            )
        )
    yield eng
    eng.dispose()


@dataclass(frozen=True)
class Snapshot:
    tables: dict[str, pl.DataFrame]
    batches: int
    state: dict[str, int]


def snapshot(engine: Engine) -> Snapshot:
    return Snapshot(
        {t.name: warehouse.read_table(engine, t.name) for t in warehouse.TABLES},
        len(warehouse.load_batches(engine)),
        current_batches(engine),
    )


def assert_unchanged(before: Snapshot, after: Snapshot) -> None:
    assert after.batches == before.batches
    assert after.state == before.state
    for name, frame in before.tables.items():
        assert_frame_equal(after.tables[name], frame)


def write_extract(folder: Path, table: str, rows: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}.csv"
    path.write_text("\n".join((HEADERS[table], *rows)) + "\n", encoding="utf-8")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == REJECT_COLUMNS
        return list(reader)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_code_is_reported_and_nothing_loads(
    case: Case, base_engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    write_extract(folder, case.table, case.rows)
    before = snapshot(base_engine)

    with pytest.raises(LoadRejected) as info:
        warehouse.load_folder(base_engine, folder)

    rejects_path = folder / REJECTS_FILE
    assert info.value.rejects_path == rejects_path
    assert info.value.counts == {case.rule: 1}
    assert info.value.rows == 1
    assert case.rule in str(info.value)
    assert stat.S_IMODE(rejects_path.stat().st_mode) == 0o600

    rejects = read_rejects(rejects_path)
    assert len(rejects) == 1, rejects
    (r,) = rejects
    assert r["file"] == f"{case.table}.csv"
    assert r["row"] == str(case.row)
    assert r["column"] == case.column
    assert r["rule"] == case.rule
    # rejects are written spreadsheet-safe: a value such as "-3" gets a leading quote
    assert r["value"] == neutralise(case.value)
    message = r["message"]
    assert message.strip()
    assert "None" not in message and "null" not in message
    assert (case.value and case.value in message) or case.column in message

    assert_unchanged(before, snapshot(base_engine))


def test_many_bad_rows_are_all_reported_and_nothing_loads(
    base_engine: Engine, tmp_path: Path
) -> None:
    """Bad rows across several files: every breach is reported, none of the files load."""
    folder = tmp_path / "bad"
    write_extract(folder, "families", ("0007,North,,,", "0008,Mid,,,", "F100,South,,,"))
    write_extract(
        folder,
        "offences",
        ("00001,2016-08-01,offence,", "00002,2016-13-01,offense,", "00009,2016-08-01,caution,"),
    )
    write_extract(folder, "neet", ("00002,2018-07-01,2018-06-30",))
    before = snapshot(base_engine)

    with pytest.raises(LoadRejected) as info:
        warehouse.load_folder(base_engine, folder)

    assert info.value.counts == {
        "bad_date": 1,
        "not_in_set": 1,
        "unknown_person": 1,
        "end_before_start": 1,
    }
    assert info.value.rows == 3  # offences rows 3 and 4, neet row 2
    got = {
        (r["file"], r["row"], r["column"], r["rule"]) for r in read_rejects(folder / REJECTS_FILE)
    }
    assert got == {
        ("offences.csv", "3", "occurred_on", "bad_date"),
        ("offences.csv", "3", "kind", "not_in_set"),
        ("offences.csv", "4", "person_id", "unknown_person"),
        ("neet.csv", "2", "ended_on", "end_before_start"),
    }
    assert_unchanged(before, snapshot(base_engine))


def test_cli_summarises_rule_codes_on_one_line(
    base_engine: Engine, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The command exits non-zero with one line summarising the rule codes and counts."""
    folder = tmp_path / "bad"
    write_extract(
        folder,
        "exclusions",
        ("00002,2016-10-10,expelled", "00003,2017-02-02,suspended", "00003,1800-01-01,permanent"),
    )
    before = snapshot(base_engine)
    url = base_engine.url.render_as_string(hide_password=False)
    capfd.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["load", str(folder), "--database", url])
    out, err = capfd.readouterr()
    assert info.value.code == EXIT_BAD_INPUT
    assert "Traceback" not in out + err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: 3 rows broke the extract contract")
    assert "implausible_date 1" in lines[0] and "not_in_set 2" in lines[0]
    assert str(folder / REJECTS_FILE) in lines[0]
    assert_unchanged(before, snapshot(base_engine))
