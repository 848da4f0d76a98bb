"""Malformed extract files: one clean error line, a non-zero exit, no traceback, nothing loaded.

The real CLI is driven in-process (``claims.cli.main``) with file-descriptor
capture, so output written below Python (for example a Rust panic message from
polars) is seen too; a few cases also run the command as a separate process.
Hypothesis generates the malformed files; the base warehouse they are loaded
against is built once per module, and every example checks that its own load
left the warehouse as it found it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

import warehouse
from claims.cli import EXIT_BAD_INPUT, main
from claims.resources import migrations_dir
from warehouse.query import current_batches

FIXTURES = Path(__file__).parent / "fixtures"
_ATTENDANCE = "person_id,term_start,term_end,possible_sessions,unauthorised_sessions\n"
_DEBT = "family_id,recorded_on,kind,amount\n"
_EMPLOYMENT = "person_id,started_on,ended_on,hours_per_week\n"
_PEOPLE_HEADER = "person_id,family_id,role,birth_date,given_name,family_name\n"
BASE = FIXTURES / "base"
TABLE_NAMES = [t.name for t in warehouse.TABLES]

# capfd is function-scoped, but it is reset with readouterr() before every example.
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class State:
    counts: dict[str, int]
    batches: int
    tables: dict[str, int]


def state(engine: Engine) -> State:
    return State(
        warehouse.table_counts(engine), len(warehouse.load_batches(engine)), current_batches(engine)
    )


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def run_cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    """Run ``tfclaims`` in-process; returns (exit code, stdout, stderr)."""
    capfd.readouterr()
    try:
        main(list(args))
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: object, out: str, err: str) -> str:
    """A bad-input exit with exactly one ``error:`` line on stderr; returns that line."""
    assert "Traceback" not in out + err, err
    assert code == EXIT_BAD_INPUT, (code, err)
    assert err.endswith("\n"), repr(err)
    line = err[:-1]
    assert "\n" not in line and "\r" not in line, repr(err)
    assert line.startswith("error: ") and line[len("error: ") :].strip(), repr(err)
    assert out == "", out
    return line


def load_bad(
    capfd: pytest.CaptureFixture[str], engine: Engine, folder: Path
) -> tuple[str, State, State]:
    """Load ``folder`` through the CLI, expecting one clean error; returns the line and states."""
    before = state(engine)
    line = assert_one_error_line(*run_cli(capfd, "load", str(folder), "--database", url_of(engine)))
    return line, before, state(engine)


def base_rows(name: str) -> tuple[list[str], list[list[str]]]:
    with (BASE / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def parquet_bytes(name: str) -> bytes:
    buf = io.BytesIO()
    pl.read_csv(BASE / f"{name}.csv", infer_schema=False).write_parquet(buf)
    return buf.getvalue()


def write_companion(folder: Path, bad_table: str) -> None:
    """A good file beside the bad one, differing from the base load: it must not load either."""
    if bad_table != "families":
        (folder / "families.csv").write_text(
            "family_id,locality,attached_on,lead_worker,closed_on\n0007,North,,,\n0008,Mid,,,\n",
            encoding="utf-8",
        )
    else:
        (folder / "claims.csv").write_text(
            "family_id,claimed_on,claim_window,basis\n", encoding="utf-8"
        )


@pytest.fixture(scope="module")
def base_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A SQLite warehouse holding the good base load, shared by the module's properties."""
    root = tmp_path_factory.mktemp("malformed")
    eng = warehouse.make_engine(f"sqlite:///{root / 'warehouse.db'}")
    warehouse.upgrade(eng, migrations_dir())
    shutil.copytree(BASE, root / "base")
    warehouse.load_folder(eng, root / "base")
    yield eng
    eng.dispose()


@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> Engine:
    """The ``engine`` fixture (each backend) holding the good base load."""
    warehouse.load_folder(engine, shutil.copytree(BASE, tmp_path / "base"))
    return engine


# ----------------------------------------------------------------------------- properties


@PROPERTY
@given(
    data=st.binary(max_size=400),
    name=st.sampled_from(TABLE_NAMES),
    suffix=st.sampled_from(["csv", "parquet"]),
    magic=st.booleans(),
    companion=st.booleans(),
)
def test_garbage_bytes(
    base_engine: Engine,
    capfd: pytest.CaptureFixture[str],
    data: bytes,
    name: str,
    suffix: str,
    magic: bool,
    companion: bool,
) -> None:
    if magic:  # look like Parquet (or a UTF-8 BOM for CSV) to get past the first check
        data = (b"PAR1" + data + b"PAR1") if suffix == "parquet" else b"\xef\xbb\xbf" + data
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{name}.{suffix}").write_bytes(data)
        if companion:
            write_companion(folder, name)
        _line, before, after = load_bad(capfd, base_engine, folder)
    assert after == before


@PROPERTY
@given(
    name=st.sampled_from(TABLE_NAMES),
    index=st.integers(min_value=0, max_value=5),
    rename_to=st.one_of(
        st.none(),  # drop the column
        st.sampled_from(["", " ", "ID", "Person_ID", "person id", "kind ", "\ufeffperson_id"]),
        st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=15),
    ),
)
def test_missing_or_renamed_column(
    base_engine: Engine,
    capfd: pytest.CaptureFixture[str],
    name: str,
    index: int,
    rename_to: str | None,
) -> None:
    header, rows = base_rows(name)
    i = index % len(header)
    column = header[i]
    if rename_to is None:
        header = header[:i] + header[i + 1 :]
        rows = [r[:i] + r[i + 1 :] for r in rows]
    else:
        if rename_to == column:
            rename_to = column.upper()
        # A UTF-8 byte order mark opening the file is allowed (spreadsheets write one).
        assume(not (i == 0 and rename_to == "\ufeff" + column))
        header = [*header[:i], rename_to, *header[i + 1 :]]
    text = csv_text(header, rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
        line, before, after = load_bad(capfd, base_engine, folder)
    assert after == before
    assert f"{name}.csv" in line
    assert column in line


_TYPED = [(t.name, c.name, c.type) for t in warehouse.TABLES for c in t.columns if c.type != "str"]
_RULE_FOR_TYPE = {"date": "bad_date", "int": "bad_integer", "decimal": "bad_decimal"}


def _not_a_number_or_date(s: str) -> bool:
    # Every character an ASCII digit or a sign: possibly a real number or date, so not
    # "wrong". Non-ASCII digits are wrong, and have their own examples below too.
    v = s.strip()
    return any(c not in "0123456789+-." for c in v)


_WRONG = st.one_of(
    st.sampled_from(
        [
            "abc",
            "12.5.1",
            "1e3",
            "0x10",
            "NaN",
            "inf",
            "12,5",
            "2016-13-01",
            "2016-02-30",
            "16-1-1",
            "2016/01/01",
            "1.",
            ".5",
            "TRUE",
            "2016-01-01T00:00",
            "£12.00",
            "12 345",
        ]
    ),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=12).filter(
        _not_a_number_or_date
    ),
)


@PROPERTY
@given(
    target=st.sampled_from(_TYPED),
    row=st.integers(min_value=0, max_value=10),
    value=_WRONG,
)
def test_wrong_type_in_a_cell(
    base_engine: Engine,
    capfd: pytest.CaptureFixture[str],
    target: tuple[str, str, str],
    row: int,
    value: str,
) -> None:
    name, column, kind = target
    header, rows = base_rows(name)
    r = row % len(rows)
    rows[r][header.index(column)] = value
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{name}.csv").write_text(csv_text(header, rows), encoding="utf-8")
        line, before, after = load_bad(capfd, base_engine, folder)
        assert (folder / "rejects.csv").exists()
    assert after == before
    assert line.startswith("error: 1 row broke the extract contract")
    assert f"({_RULE_FOR_TYPE[kind]} 1)" in line


_PEOPLE = ["00001", "00002", "00003", "00004", "P5"]  # none is a prefix of another


@st.composite
def exclusions_file(draw: st.DrawFn) -> bytes:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_PEOPLE),
                st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2020, 12, 31)),
                st.sampled_from(["fixed_term", "permanent"]),
            ),
            min_size=1,
            max_size=6,
        )
    )
    lines = ["person_id,excluded_on,kind", *(f"{p},{d.isoformat()},{k}" for p, d, k in rows)]
    return ("\n".join(lines) + "\n").encode()


@PROPERTY
@given(data=exclusions_file(), cut=st.integers(min_value=0))
def test_truncated_csv(
    base_engine: Engine, capfd: pytest.CaptureFixture[str], data: bytes, cut: int
) -> None:
    """A valid exclusions file cut at any byte: every cut inside a row is refused cleanly.

    Each field of this file is checked (known person, real date, code from the
    set), so a row cut short always breaks the contract. A cut at a row
    boundary (just before or after a newline) is a well-formed smaller file,
    and must load exactly the complete rows.
    """
    n = cut % len(data)
    prefix = data[:n]
    at_boundary = n > 0 and (data[n - 1 : n] == b"\n" or data[n : n + 1] == b"\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "exclusions.csv").write_bytes(prefix)
        if not at_boundary:
            _line, before, after = load_bad(capfd, base_engine, folder)
            assert after == before
            return
        code, _out, err = run_cli(capfd, "load", str(folder), "--database", url_of(base_engine))
    assert code in (0, None), err
    assert "Traceback" not in err
    complete = [line.split(",") for line in prefix.decode().strip("\n").split("\n")[1:]]
    loaded = warehouse.read_table(base_engine, "exclusions")
    assert [
        [p, d.isoformat(), k]
        for p, d, k in loaded.select("person_id", "excluded_on", "kind").rows()
    ] == complete


@PROPERTY
@given(
    names=st.lists(
        st.text(
            st.characters(
                min_codepoint=0x80,
                max_codepoint=0x2FFF,
                exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
            ),
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=4,
    ),
    pick=st.integers(min_value=0),
)
def test_csv_truncated_inside_a_character(
    base_engine: Engine, capfd: pytest.CaptureFixture[str], names: list[str], pick: int
) -> None:
    rows = [[f"X{i}", "0007", "adult", "", n, n] for i, n in enumerate(names)]
    data = csv_text(
        ["person_id", "family_id", "role", "birth_date", "given_name", "family_name"], rows
    ).encode("utf-8")
    inside = [i for i, b in enumerate(data) if b & 0xC0 == 0x80]  # UTF-8 continuation bytes
    n = inside[pick % len(inside)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "people.csv").write_bytes(data[:n])
        line, before, after = load_bad(capfd, base_engine, folder)
    assert after == before
    assert "people.csv" in line and "UTF-8" in line


_PARQUET = {name: parquet_bytes(name) for name in ("families", "people", "debt", "attendance")}


@PROPERTY
@given(
    name=st.sampled_from(sorted(_PARQUET)), cut=st.integers(min_value=0), companion=st.booleans()
)
def test_truncated_parquet(
    base_engine: Engine, capfd: pytest.CaptureFixture[str], name: str, cut: int, companion: bool
) -> None:
    data = _PARQUET[name]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{name}.parquet").write_bytes(data[: cut % len(data)])
        if companion:
            write_companion(folder, name)
        line, before, after = load_bad(capfd, base_engine, folder)
    assert after == before
    assert f"{name}.parquet" in line


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_LATIN1_LETTERS = st.characters(
    min_codepoint=0xC0, max_codepoint=0xFF, exclude_characters="\u00d7\u00f7"
)


@PROPERTY
@given(
    names=st.lists(
        st.tuples(st.text("abcdefXYZ", max_size=4), _LATIN1_LETTERS, st.text("abcxyz", max_size=4)),
        min_size=1,
        max_size=5,
    ),
    encoding=st.sampled_from(["latin-1", "cp1252"]),
)
def test_wrong_encoding(
    base_engine: Engine,
    capfd: pytest.CaptureFixture[str],
    names: list[tuple[str, str, str]],
    encoding: str,
) -> None:
    rows = [[f"L{i}", "0007", "adult", "", "".join(n), "Smith"] for i, n in enumerate(names)]
    text = csv_text(
        ["person_id", "family_id", "role", "birth_date", "given_name", "family_name"], rows
    )
    data = text.encode(encoding)
    assume(not _is_utf8(data))  # a lead byte is never followed by a continuation byte here
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "people.csv").write_bytes(data)
        line, before, after = load_bad(capfd, base_engine, folder)
    assert after == before
    assert "people.csv" in line and "UTF-8" in line


# ----------------------------------------------------------------------------- examples, both backends


EXAMPLES: dict[str, tuple[str, bytes]] = {
    "empty-csv": ("offences.csv", b""),
    "blank-lines-csv": ("offences.csv", b"\n \r\n\n"),
    "empty-parquet": ("offences.parquet", b""),
    "png-as-csv": ("people.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    "utf16-csv": (
        "exclusions.csv",
        "person_id,excluded_on,kind\n00002,2016-10-10,permanent\n".encode("utf-16"),
    ),
    "latin1-csv": (
        "people.csv",
        (_PEOPLE_HEADER + "X,0007,adult,,Jos\u00e9,Smith\n").encode("latin-1"),
    ),
    "missing-column": ("offences.csv", b"person_id,occurred_on,kind\n00001,2016-08-01,offence\n"),
    "renamed-column": (
        "offences.csv",
        b"person_id,occured_on,kind,reference\n00001,2016-08-01,offence,\n",
    ),
    "too-many-fields": (
        "offences.csv",
        b"person_id,occurred_on,kind,reference\n00001,2016-08-01,offence,,surplus\n",
    ),
    "unclosed-quote": (
        "offences.csv",
        b'person_id,occurred_on,kind,reference\n00001,2016-08-01,offence,"REF\n',
    ),
    "wrong-types": (
        "attendance.csv",
        (_ATTENDANCE + "00002,2016-09-05,2016-12-20,lots,3\n").encode(),
    ),
    "truncated-parquet": ("families.parquet", parquet_bytes("families")[:-9]),
    "csv-named-parquet": ("families.parquet", (BASE / "families.csv").read_bytes()),
    "parquet-named-csv": ("families.csv", parquet_bytes("families")),
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_malformed_examples(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path, example: str
) -> None:
    file_name, data = EXAMPLES[example]
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / file_name).write_bytes(data)
    write_companion(folder, file_name.split(".")[0])
    line, before, after = load_bad(capfd, loaded, folder)
    assert after == before
    assert file_name in line or "broke the extract contract" in line


def test_bad_folders(loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    (tmp_path / "a-file.csv").write_text("x")
    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(BASE / "debt.csv", both / "debt.csv")
    (both / "debt.parquet").write_bytes(parquet_bytes("debt"))
    for folder, needle in [
        (tmp_path / "missing", "no such folder"),
        (tmp_path / "empty", "no extract files"),
        (tmp_path / "other", "no extract files"),
        (tmp_path / "a-file.csv", "not a folder"),
        (both, "debt.csv and debt.parquet"),
    ]:
        line, before, after = load_bad(capfd, loaded, folder)
        assert after == before
        assert needle in line, line


# ----------------------------------------------------------------------------- once library bugs


def _cli_example(
    capfd: pytest.CaptureFixture[str], engine: Engine, folder: Path, file_name: str, data: bytes
) -> None:
    folder.mkdir()
    (folder / file_name).write_bytes(data)
    _line, before, after = load_bad(capfd, engine, folder)
    assert after == before


def test_repeated_column_is_refused(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _cli_example(
        capfd,
        loaded,
        tmp_path / "bad",
        "exclusions.csv",
        b"person_id,excluded_on,kind,kind\n00002,2016-10-10,permanent,fixed_term\n",
    )


@pytest.mark.parametrize("opening", [b"x^", b"x\x01"], ids=["x^", "x-01"])
def test_csv_opening_like_compressed_data_is_refused(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path, opening: bytes
) -> None:
    _cli_example(
        capfd,
        loaded,
        tmp_path / "bad",
        "families.csv",
        opening + b",locality,attached_on,lead_worker,closed_on\n0001,North,,,\n",
    )


def test_carriage_return_line_endings_give_one_clean_line(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _cli_example(
        capfd,
        loaded,
        tmp_path / "bad",
        "exclusions.csv",
        b"person_id,excluded_on,kind\r00002,2016-10-10,permanent\r",
    )


@pytest.mark.parametrize(
    ("file_name", "data"),
    [
        ("attendance.csv", _ATTENDANCE + "00002,2016-09-05,2016-12-20,\u0661\u0662\u0660,3\n"),
        ("attendance.csv", _ATTENDANCE + "00002,2016-09-05,2016-12-20,\uff11\uff12,3\n"),
        ("debt.csv", _DEBT + "0007,2016-04-01,rent_arrears,\u0661\u0662\u0660\u0660\n"),
        ("employment.csv", _EMPLOYMENT + "00001,2017-01-01,,\u0663\u0667.\u0665\n"),
    ],
    ids=["arabic-int", "fullwidth-int", "arabic-decimal-required", "arabic-decimal-optional"],
)
def test_non_ascii_digits_are_wrong_types(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path, file_name: str, data: str
) -> None:
    _cli_example(capfd, loaded, tmp_path / "bad", file_name, data.encode())


def test_integer_too_large_for_the_warehouse_is_refused(
    loaded: Engine, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _cli_example(
        capfd,
        loaded,
        tmp_path / "bad",
        "attendance.csv",
        (_ATTENDANCE + "00002,2016-09-05,2016-12-20,99999999999,3\n").encode(),
    )


# ----------------------------------------------------------------------------- real processes


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFCLAIMS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _spawn(folder: Path, url: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "claims.cli", "load", str(folder), "--database", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=cwd,
    )


def test_no_traceback_escapes_the_process(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The console command itself (not just ``main``) exits with one line: three runs at once."""
    warehouse.load_folder(sqlite_engine, shutil.copytree(BASE, tmp_path / "base"))
    cases = {
        "garbage": ("offences.csv", bytes(range(256)) * 3),
        "missing-column": ("debt.csv", b"family_id,recorded_on,amount\n0007,2016-04-01,1.00\n"),
        "truncated-parquet": ("people.parquet", parquet_bytes("people")[:100]),
    }
    before = state(sqlite_engine)
    procs = {}
    for case, (file_name, data) in cases.items():
        folder = tmp_path / case
        folder.mkdir()
        (folder / file_name).write_bytes(data)
        procs[case] = _spawn(folder, url_of(sqlite_engine), tmp_path)
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        line = assert_one_error_line(proc.returncode, out, err)
        assert cases[case][0] in line, (case, line)
    assert state(sqlite_engine) == before


def test_corrupt_parquet_gives_one_error_line_in_a_real_process(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    warehouse.load_folder(sqlite_engine, shutil.copytree(BASE, tmp_path / "base"))
    folder = tmp_path / "bad"
    folder.mkdir()
    shutil.copy(FIXTURES / "corrupt_parquet" / "people.parquet", folder / "people.parquet")
    before = state(sqlite_engine)
    proc = _spawn(folder, url_of(sqlite_engine), tmp_path)
    out, err = proc.communicate(timeout=120)
    assert state(sqlite_engine) == before
    line = assert_one_error_line(proc.returncode, out, err)
    assert "people.parquet" in line
