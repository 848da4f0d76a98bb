"""Loading extract folders: counts, hashes, typed round trips, snapshots, quarantine, Parquet."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import stat
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from sqlalchemy import Engine

import warehouse
from claims.cli import main
from claims.resources import migrations_dir
from warehouse.load import REJECTS_FILE
from warehouse.query import current_batches
from warehouse.validate import REJECT_COLUMNS

BASE = Path(__file__).parent / "fixtures" / "base"
ALL_TABLES = {t.name for t in warehouse.TABLES}


def copy_base(dest: Path) -> Path:
    shutil.copytree(BASE, dest)
    return dest


def all_frames(engine: Engine) -> dict[str, pl.DataFrame]:
    return {t.name: warehouse.read_table(engine, t.name) for t in warehouse.TABLES}


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def header(name: str) -> str:
    return ",".join(warehouse.table(name).column_names)


# ------------------------------------------------------------------ synthetic council


def test_loads_every_synthetic_table(engine: Engine, synth_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "extracts"
    shutil.copytree(synth_folder, folder)
    files = {p.stem: p for p in folder.iterdir() if p.suffix == ".csv"}
    assert set(files) == ALL_TABLES, "the synthetic council writes every contract table"
    expected_rows = {
        name: pl.read_csv(path, infer_schema=False).height for name, path in files.items()
    }
    expected_sha = {
        name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()
    }
    assert all(n > 0 for n in expected_rows.values()), expected_rows

    result = warehouse.load_folder(engine, folder)

    assert result.rows_rejected == 0
    assert not (folder / REJECTS_FILE).exists()
    assert warehouse.table_counts(engine) == expected_rows
    assert result.rows_loaded == sum(expected_rows.values())

    (batch,) = warehouse.load_batches(engine)
    assert batch.id == result.batch_id
    assert batch.mode == "all_or_nothing"
    assert batch.rows_loaded == sum(expected_rows.values())
    assert batch.rows_rejected == 0
    assert Path(batch.source_dir) == folder.resolve()
    recorded = {f.table: f for f in batch.files}
    assert set(recorded) == ALL_TABLES
    for name, f in recorded.items():
        assert f.file == f"{name}.csv"
        assert f.sha256 == expected_sha[name], name
        assert (f.rows, f.loaded, f.rejected) == (expected_rows[name], expected_rows[name], 0), name

    assert warehouse.loaded_tables(engine) == ALL_TABLES
    assert current_batches(engine) == dict.fromkeys(ALL_TABLES, batch.id)
    for name, frame in all_frames(engine).items():
        assert frame.height == expected_rows[name]
        assert frame.get_column("row_no").to_list() == list(range(2, expected_rows[name] + 2))
        # one contiguous chunk per column, however the backend hands the rows over
        assert set(frame.n_chunks("all")) == {1}, (name, frame.n_chunks("all"))


# ------------------------------------------------------------------ typed round trip


def test_typed_round_trip(engine: Engine, tmp_path: Path) -> None:
    warehouse.load_folder(engine, copy_base(tmp_path / "base"))

    families = warehouse.read_table(engine, "families")
    expected_families = pl.DataFrame(
        {
            "row_no": [2, 3, 4],
            "family_id": ["0007", "0008", "F100"],
            "locality": ["North", "Mid", "South"],
            "attached_on": [dt.date(2016, 4, 1), dt.date(2016, 5, 10), None],
            "lead_worker": ["Smith, Jo", "Zoë Ó'Brien", None],
            "closed_on": [None, dt.date(2019, 1, 31), None],
        },
        schema={
            "row_no": pl.Int64,
            "family_id": pl.String,
            "locality": pl.String,
            "attached_on": pl.Date,
            "lead_worker": pl.String,
            "closed_on": pl.Date,
        },
    )
    assert_frame_equal(families, expected_families)

    people = warehouse.read_table(engine, "people")
    assert people.schema["birth_date"] == pl.Date
    assert people.get_column("person_id").to_list() == ["00001", "00002", "00003", "00004", "P5"]
    assert people.get_column("family_id").to_list() == ["0007", "0007", "0008", "0008", "F100"]
    assert people.get_column("family_name").to_list() == [
        'O"Neill',
        "Smith",
        "García, Jr",
        None,
        "Jones",
    ]
    assert people.get_column("birth_date").to_list()[0] == dt.date(1980, 2, 29)

    offences = warehouse.read_table(engine, "offences")
    assert offences.get_column("reference").to_list() == ["REF-001", None, "0042"]

    debt = warehouse.read_table(engine, "debt")
    assert debt.schema["amount"] == pl.Decimal(12, 2)
    amounts = debt.get_column("amount").to_list()
    assert amounts == [Decimal("1200.50"), Decimal("0.05"), Decimal("99999.99")]
    assert [str(a) for a in amounts] == ["1200.50", "0.05", "99999.99"]

    employment = warehouse.read_table(engine, "employment")
    assert employment.schema["hours_per_week"] == pl.Decimal(6, 2)
    assert [None if h is None else str(h) for h in employment.get_column("hours_per_week")] == [
        "37.50",
        None,
    ]

    attendance = warehouse.read_table(engine, "attendance")
    assert attendance.schema["possible_sessions"] == pl.Int64
    assert attendance.get_column("unauthorised_sessions").to_list() == [30, 0, 12]

    for t in warehouse.TABLES:
        frame = warehouse.read_table(engine, t.name)
        assert frame.columns == ["row_no", *t.column_names]
        for c in t.columns:
            want = {"date": pl.Date, "int": pl.Int64, "str": pl.String}.get(c.type)
            if want is not None:
                assert frame.schema[c.name] == want, (t.name, c.name)
            else:
                assert isinstance(frame.schema[c.name], pl.Decimal), (t.name, c.name)


# ------------------------------------------------------------------ snapshots


def test_absent_tables_are_kept_and_present_tables_replaced(engine: Engine, tmp_path: Path) -> None:
    first = warehouse.load_folder(engine, copy_base(tmp_path / "base"))
    before = all_frames(engine)

    later = tmp_path / "later"
    write_csv(later / "offences.csv", header("offences"), "00004,2018-01-01,asb_intervention,X9")
    write_csv(later / "claims.csv", header("claims"))  # header only: an empty snapshot
    second = warehouse.load_folder(engine, later)

    after = all_frames(engine)
    assert after["offences"].drop("row_no").rows() == [
        ("00004", dt.date(2018, 1, 1), "asb_intervention", "X9")
    ]
    assert after["claims"].height == 0
    for name in ALL_TABLES - {"offences", "claims"}:
        assert_frame_equal(after[name], before[name])

    state = current_batches(engine)
    assert state == {
        **dict.fromkeys(ALL_TABLES, first.batch_id),
        "offences": second.batch_id,
        "claims": second.batch_id,
    }
    assert warehouse.loaded_tables(engine) == ALL_TABLES
    batches = warehouse.load_batches(engine)
    assert [b.id for b in batches] == [second.batch_id, first.batch_id]
    assert {f.table: (f.rows, f.loaded) for f in batches[0].files} == {
        "offences": (1, 1),
        "claims": (0, 0),
    }

    # Loading the same snapshot again replaces it rather than appending to it.
    warehouse.load_folder(engine, later)
    assert warehouse.table_counts(engine)["offences"] == 1
    assert_frame_equal(warehouse.read_table(engine, "offences"), after["offences"])


def test_references_resolve_against_the_warehouse_when_the_table_is_absent(
    engine: Engine, tmp_path: Path
) -> None:
    warehouse.load_folder(engine, copy_base(tmp_path / "base"))
    later = tmp_path / "later"
    # people.csv is absent: person 00003 is known from the earlier load, 09999 is not.
    write_csv(later / "neet.csv", header("neet"), "00003,2019-01-01,", "09999,2019-01-01,")
    with pytest.raises(warehouse.LoadRejected) as info:
        warehouse.load_folder(engine, later)
    assert info.value.counts == {"unknown_person": 1}

    write_csv(later / "neet.csv", header("neet"), "00003,2019-01-01,")
    warehouse.load_folder(engine, later)
    assert warehouse.read_table(engine, "neet").get_column("person_id").to_list() == ["00003"]


# ------------------------------------------------------------------ quarantine


def test_quarantine_loads_valid_rows_and_reports_the_rest(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "month"
    write_csv(folder / "families.csv", header("families"), "0001,North,,,", "0002,Mid,,,")
    write_csv(
        folder / "people.csv",
        header("people"),
        "P01,0001,adult,,,",
        "P02,0001,grandparent,,,",  # not_in_set: rejected
        "P03,0003,child,,,",  # unknown_family: rejected
        "P04,0002,child,2010-02-30,,",  # bad_date: rejected
        "P05,0002,child,2010-02-28,,",
    )
    write_csv(
        folder / "offences.csv",
        header("offences"),
        "P01,2017-01-01,offence,",
        "P02,2017-01-01,offence,",  # P02 was quarantined: unknown_person
        "P05,2017-01-01,caution,",
    )

    result = warehouse.load_folder(engine, folder, mode="quarantine")

    assert result.mode == "quarantine"
    assert result.rejects_path == folder / REJECTS_FILE
    assert result.reject_counts == {
        "not_in_set": 1,
        "unknown_family": 1,
        "bad_date": 1,
        "unknown_person": 1,
    }
    per_table = {t.table: (t.rows, t.loaded, t.rejected) for t in result.tables}
    assert per_table == {"families": (2, 2, 0), "people": (5, 2, 3), "offences": (3, 2, 1)}

    people = warehouse.read_table(engine, "people")
    assert people.select("row_no", "person_id").rows() == [(2, "P01"), (6, "P05")]
    offences = warehouse.read_table(engine, "offences")
    assert offences.select("row_no", "person_id").rows() == [(2, "P01"), (4, "P05")]

    rejects_path = folder / REJECTS_FILE
    assert stat.S_IMODE(rejects_path.stat().st_mode) == 0o600
    with rejects_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["file"], r["row"], r["column"], r["rule"], r["value"]) for r in rows} == {
        ("people.csv", "3", "role", "not_in_set", "grandparent"),
        ("people.csv", "4", "family_id", "unknown_family", "0003"),
        ("people.csv", "5", "birth_date", "bad_date", "2010-02-30"),
        ("offences.csv", "3", "person_id", "unknown_person", "P02"),
    }
    assert all(r["message"] for r in rows)
    assert tuple(rows[0]) == REJECT_COLUMNS

    (batch,) = warehouse.load_batches(engine)
    assert batch.mode == "quarantine"
    assert (batch.rows_loaded, batch.rows_rejected) == (6, 4)
    assert {f.table: (f.rows, f.loaded, f.rejected) for f in batch.files} == per_table
    assert warehouse.table_counts(engine)["people"] == 2


def test_quarantine_with_no_bad_rows_writes_no_rejects(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    result = warehouse.load_folder(sqlite_engine, copy_base(tmp_path / "base"), mode="quarantine")
    assert result.rejects_path is None
    assert result.rows_rejected == 0
    assert not (tmp_path / "base" / REJECTS_FILE).exists()


# ------------------------------------------------------------------ parquet


def _fresh_sqlite(path: Path) -> Engine:
    eng = warehouse.make_engine(f"sqlite:///{path}")
    warehouse.upgrade(eng, migrations_dir())
    return eng


@pytest.fixture
def csv_reference(tmp_path: Path) -> Iterator[dict[str, pl.DataFrame]]:
    """Every table of the base extract loaded from CSV into its own SQLite warehouse."""
    (tmp_path / "reference").mkdir()
    eng = _fresh_sqlite(tmp_path / "reference" / "warehouse.db")
    warehouse.load_folder(eng, copy_base(tmp_path / "reference" / "csv"))
    yield all_frames(eng)
    eng.dispose()


def _typed_for_parquet(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Native Parquet types: Date, Int64 and Decimal columns instead of text."""
    exprs = []
    for c in warehouse.table(name).columns:
        if c.type == "date":
            exprs.append(pl.col(c.name).str.to_date("%Y-%m-%d"))
        elif c.type == "int":
            exprs.append(pl.col(c.name).cast(pl.Int64))
        elif c.type == "decimal":
            precision, scale = c.decimal or (18, 2)
            exprs.append(pl.col(c.name).cast(pl.Decimal(precision, scale)))
        else:
            exprs.append(pl.col(c.name))
    return frame.select(exprs)


@pytest.mark.parametrize("typed", [False, True], ids=["text-columns", "native-types"])
def test_parquet_loads_the_same_as_csv(
    engine: Engine, csv_reference: dict[str, pl.DataFrame], tmp_path: Path, typed: bool
) -> None:
    folder = tmp_path / "parquet"
    folder.mkdir()
    for t in warehouse.TABLES:
        frame = pl.read_csv(BASE / f"{t.name}.csv", infer_schema=False)
        if typed:
            frame = _typed_for_parquet(t.name, frame)
        frame.write_parquet(folder / f"{t.name}.parquet")
    if typed:
        assert pl.read_parquet_schema(folder / "debt.parquet")["amount"] == pl.Decimal(12, 2)
        assert pl.read_parquet_schema(folder / "families.parquet")["attached_on"] == pl.Date
        assert (
            pl.read_parquet_schema(folder / "attendance.parquet")["possible_sessions"] == pl.Int64
        )

    result = warehouse.load_folder(engine, folder)

    assert result.rows_rejected == 0
    got = all_frames(engine)
    for name, frame in csv_reference.items():
        assert_frame_equal(got[name], frame)
    (batch,) = warehouse.load_batches(engine)
    for f in batch.files:
        path = folder / f"{f.table}.parquet"
        assert f.file == path.name
        assert f.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert f.rows == csv_reference[f.table].height


def test_byte_order_mark_and_column_order_are_accepted(engine: Engine, tmp_path: Path) -> None:
    """A UTF-8 file as spreadsheets save it (BOM, CRLF) with its columns in another order."""
    folder = tmp_path / "month"
    folder.mkdir()
    (folder / "families.csv").write_bytes(
        "\ufeffclosed_on,locality,family_id,attached_on,lead_worker\r\n"
        ",Mid,0042,2016-01-31,Siân\r\n".encode()
    )
    warehouse.load_folder(engine, folder)
    assert warehouse.read_table(engine, "families").rows() == [
        (2, "0042", "Mid", dt.date(2016, 1, 31), "Siân", None)
    ]


# ------------------------------------------------------------------ extra columns


def test_unknown_extra_column_is_a_warning(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "month"
    write_csv(
        folder / "families.csv",
        header("families") + ",notes,ward",
        "0001,North,,,,likes tea,W1",
        "0002,Mid,2017-01-01,,,,W2",
    )
    result = warehouse.load_folder(engine, folder)
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert "families.csv" in warning and "notes" in warning and "ward" in warning
    frame = warehouse.read_table(engine, "families")
    assert frame.columns == ["row_no", *warehouse.table("families").column_names]
    assert frame.get_column("family_id").to_list() == ["0001", "0002"]


def test_cli_prints_extra_column_warning_and_succeeds(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "month"
    write_csv(folder / "families.csv", header("families") + ",notes", "0001,North,,,,hi")
    url = sqlite_engine.url.render_as_string(hide_password=False)

    def run(*extra: str) -> tuple[object, str, str]:
        try:
            main(["load", str(folder), "--database", url, *extra])
            code: object = 0
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _out, err = run()
    assert code in (0, None)
    assert "warning: families.csv: unknown column notes ignored" in err
    assert "error" not in err
    assert warehouse.table_counts(sqlite_engine)["families"] == 1

    code, out, err = run("--json")
    assert code in (0, None)
    assert json.loads(out)["warnings"] == ["families.csv: unknown column notes ignored"]
    assert "error" not in err


# ------------------------------------------------------------------ property: round trip


@pytest.fixture(scope="module")
def roundtrip_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = _fresh_sqlite(tmp_path_factory.mktemp("roundtrip") / "warehouse.db")
    yield eng
    eng.dispose()


_ID = st.text(alphabet="0123456789ABCXYZ-_/", min_size=1, max_size=12)
_NAME_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_SPECIAL = st.sampled_from(["NA", "null", "None", "N/A", "=SUM(A1)", "0007", "a,b", 'say "hi"'])


def _clean(s: str) -> bool:
    # values are trimmed on load, so generate ones without outer whitespace
    return s == s.strip()


_NAME = st.one_of(
    st.none(),
    _SPECIAL,
    st.text(
        alphabet=st.one_of(_NAME_CHARS, st.sampled_from([",", '"', "\n", "'"])),
        min_size=1,
        max_size=30,
    ).filter(lambda s: _clean(s) and s.strip() != ""),
)
_DATE = st.one_of(
    st.none(), st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31))
)


@st.composite
def families_and_people(draw: st.DrawFn) -> tuple[list[tuple], list[tuple]]:
    fam_ids = draw(st.lists(_ID, min_size=1, max_size=6, unique=True))
    families = [
        (
            fid,
            draw(st.sampled_from(["North", "Mid", "South", "Ynys Môn", "Köln, Nord"])),
            draw(_DATE),
            draw(_NAME),
            draw(_DATE),
        )
        for fid in fam_ids
    ]
    person_ids = draw(st.lists(_ID, max_size=8, unique=True))
    people = [
        (
            pid,
            draw(st.sampled_from(fam_ids)),
            draw(st.sampled_from(["adult", "child"])),
            draw(_DATE),
            draw(_NAME),
            draw(_NAME),
        )
        for pid in person_ids
    ]
    return families, people


def _write_rows(path: Path, name: str, rows: list[tuple], lineterminator: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator=lineterminator)
        writer.writerow(warehouse.table(name).column_names)
        for row in rows:
            writer.writerow(
                ["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row]
            )


def _expected(name: str, rows: list[tuple]) -> pl.DataFrame:
    t = warehouse.table(name)
    schema = {"row_no": pl.Int64} | {
        c.name: pl.Date if c.type == "date" else pl.String for c in t.columns
    }
    data = [(i + 2, *row) for i, row in enumerate(rows)]
    return pl.DataFrame(data, schema=schema, orient="row")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=families_and_people(), lineterminator=st.sampled_from(["\n", "\r\n"]))
def test_valid_families_and_people_round_trip(
    roundtrip_engine: Engine, data: tuple[list[tuple], list[tuple]], lineterminator: str
) -> None:
    families, people = data
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_rows(folder / "families.csv", "families", families, lineterminator)
        _write_rows(folder / "people.csv", "people", people, lineterminator)
        result = warehouse.load_folder(roundtrip_engine, folder)
        assert result.rows_rejected == 0
        assert not (folder / REJECTS_FILE).exists()
    assert_frame_equal(
        warehouse.read_table(roundtrip_engine, "families"), _expected("families", families)
    )
    assert_frame_equal(
        warehouse.read_table(roundtrip_engine, "people"), _expected("people", people)
    )


def test_rejects_path_is_reported_in_result_only_when_rows_are_rejected(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "month"
    write_csv(folder / "families.csv", header("families"), "0001,North,,,", "0001,Mid,,,")
    result = warehouse.load_folder(sqlite_engine, folder, mode="quarantine")
    assert result.rejects_path == folder / REJECTS_FILE
    assert result.reject_counts == {"duplicate_key": 1}
    assert warehouse.read_table(sqlite_engine, "families").get_column("locality").to_list() == [
        "North"
    ]
