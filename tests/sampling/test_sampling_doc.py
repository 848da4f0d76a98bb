"""docs/reperform-sample.md is checked, so the auditors' instructions cannot rot:
its worked example, its hash commands, its shell loop, its spreadsheet formula and
its SQL (against a real PostgreSQL server)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from _sampling_gen import ref_hash, ref_k

from sampling import SamplingSettings, draw_sample, escalate

DOC = Path(__file__).resolve().parents[2] / "docs" / "reperform-sample.md"
TEXT = DOC.read_text(encoding="utf-8")
SEED = "2018-03-7f3a9c"

EXAMPLE = pl.DataFrame(
    {
        "family_id": [
            "F10234",
            "F10251",
            "F10307",
            "F10342",
            "F10388",
            "F10415",
            "F10460",
            "F10502",
        ],
        "basis": ["ssp"] * 6 + ["ce"] * 2,
        "locality": ["North"] * 8,
        "manual_override": [False] * 7 + [True],
    }
)


def _table(marker: str) -> list[dict[str, str]]:
    """The Markdown table between ``<!-- worked-example: marker -->`` and ``<!-- end -->``."""
    match = re.search(
        rf"<!-- worked-example: {re.escape(marker)} -->\n(.*?)<!-- end -->", TEXT, re.S
    )
    assert match, f"no worked example {marker!r} in {DOC}"
    lines = [ln for ln in match.group(1).strip().splitlines() if not ln.startswith("|---")]

    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [p.strip().replace("\\|", "|") for p in parts]

    header = cells(lines[0])
    return [dict(zip(header, cells(ln), strict=True)) for ln in lines[1:]]


def _as_table(sample: pl.DataFrame) -> list[dict[str, str]]:
    return [
        {
            "family_id": r["family_id"],
            "stratum": r["stratum"],
            "hash": r["hash"],
            "rank": str(r["rank"]),
            "n": str(r["stratum_size"]),
            "k": str(r["k"]),
            "sampled": "yes" if r["sampled"] else "no",
            "reason": r["reason"] or "",
        }
        for r in sample.iter_rows(named=True)
    ]


def test_the_worked_example_is_what_draw_sample_gives() -> None:
    assert f"Seed `{SEED}`, rate 0.20, minimum 1 per stratum" in TEXT
    sample = draw_sample(EXAMPLE, SEED, SamplingSettings())
    assert _table("draw") == _as_table(sample)
    for row in _table("draw"):
        assert row["hash"] == ref_hash(SEED, row["family_id"])


def test_the_worked_escalation_is_what_escalate_gives() -> None:
    s = SamplingSettings()
    result = escalate(draw_sample(EXAMPLE, SEED, s), {"ssp|North": 1}, s, datetime.now(UTC))
    after = result.sample.filter(pl.col("stratum") == "ssp|North")
    assert _table("escalation ssp|North 1") == _as_table(after)
    assert [x.added for x in result.log] == [("F10251",)]


def test_the_powershell_example_states_the_right_hash() -> None:
    match = re.search(r'GetBytes\("([^"]+)"\)\)\).*\n([0-9a-f]{64})\n', TEXT)
    assert match, "PowerShell example not found"
    text, digest = match.groups()
    seed, family = text.split(":", 1)
    assert digest == ref_hash(seed, family)


def test_the_sha256sum_example_prints_what_the_doc_says() -> None:
    match = re.search(r"\$ (printf '%s' '([^']+)' \| sha256sum)\n(.*)\n", TEXT)
    assert match, "sha256sum example not found"
    command, text, output = match.groups()
    seed, family = text.split(":", 1)
    assert output == f"{ref_hash(seed, family)}  -"
    if shutil.which("sha256sum"):
        run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
        assert run.stdout.strip() == output


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed")
def test_the_shell_loop_hashes_every_family(tmp_path: Path) -> None:
    match = re.search(r"```sh\n(seed=.*?)```", TEXT, re.S)
    assert match, "shell loop not found"
    ids = [*EXAMPLE.get_column("family_id"), "Ünïcode-Ω", "with space"]
    (tmp_path / "family_ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    subprocess.run(["bash", "-c", match.group(1)], cwd=tmp_path, check=True)
    lines = (tmp_path / "my-hashes.csv").read_text(encoding="utf-8").splitlines()
    assert lines == [f"{i},{ref_hash(SEED, i)}" for i in ids]


def test_the_spreadsheet_k_formula_survives_binary_floating_point() -> None:
    """=MIN(n, MAX(min, ROUNDUP(ROUND(rate*n, 9), 0))) in doubles equals the exact k."""
    assert "=MIN(E2, MAX($J$2, ROUNDUP(ROUND($J$1*E2, 9), 0)))" in TEXT

    def sheet_k(rate: float, n: int, minimum: int) -> int:
        return min(n, max(minimum, math.ceil(round(rate * n, 9))))

    for hundredths in range(1, 101):
        rate = Decimal(hundredths) / 100
        for n in range(1, 1001):
            assert sheet_k(float(rate), n, 1) == ref_k(n, rate, 1), (rate, n)
    # and without the ROUND the spreadsheet would be wrong (the doc's example)
    assert math.ceil(0.28 * 25) == 8 and ref_k(25, "0.28", 1) == 7
    assert Fraction("0.28") * 25 == 7


@pytest.mark.postgres
def test_the_sql_reperforms_the_sample_in_postgresql(pg_server: str) -> None:
    """The doc's query, run as written (rate and seed as in the doc, then rate 0.28)."""
    psycopg = pytest.importorskip("psycopg")
    match = re.search(r"```sql\n(.*?)```", TEXT, re.S)
    assert match, "SQL not found"
    sql = match.group(1)
    assert f"text '{SEED}'" in sql and "numeric '0.20'" in sql

    # the worked example, plus strata of 15 and 25 claims and unicode ids
    extra = pl.DataFrame(
        {
            "family_id": [f"X{i:03d}" for i in range(40)] + ["Ünïcode-Ω", "with space"],
            "basis": ["ce"] * 15 + ["ssp"] * 25 + ["ce", "ssp"],
            "locality": ["South"] * 40 + ["North", "North"],
            "manual_override": [False] * 42,
        }
    )
    claims = pl.concat([EXAMPLE, extra])
    plain = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        conn.execute("CREATE TEMP TABLE claims (family_id text, stratum text)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO claims VALUES (%s, %s)",
                [
                    (r["family_id"], f"{r['basis']}|{r['locality']}")
                    for r in claims.iter_rows(named=True)
                ],
            )
        for rate in ("0.20", "0.28"):
            query = sql.replace("numeric '0.20'", f"numeric '{rate}'")
            rows = conn.execute(query).fetchall()  # type: ignore[call-overload]
            s = SamplingSettings(rate=Decimal(rate), always=())
            expected = draw_sample(claims, SEED, s)
            got = [
                {
                    "family_id": r[0],
                    "stratum": r[1],
                    "hash": r[2],
                    "rank": r[3],
                    "stratum_size": r[4],
                    "k": r[5],
                    "sampled": r[6],
                }
                for r in rows
            ]
            assert (
                got
                == expected.select(
                    "family_id", "stratum", "hash", "rank", "stratum_size", "k", "sampled"
                ).to_dicts()
            )
            if rate == "0.28":
                assert {r["k"] for r in got if r["stratum"] == "ssp|South"} == {7}
