"""Quota projections: exact figures on hand-built histories, the pipeline model against an
independent calculation, the thin-history fallback, withdrawn claims, the files, and the
whole job on a synthetic council."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

import warehouse
from claims import batch, projection
from claims.projection import (
    CLAIM_COLUMNS,
    FAMILY_COLUMNS,
    ProjectionInputs,
    build_projection,
    cumulative_path,
    month_index,
    month_start,
    run_rate,
)
from claims.settings import Settings

E = dt.date(2018, 6, 30)
EI = month_index(E)


def claims_frame(rows: Iterable[tuple[str, dt.date, dt.date | None, str, bool]]) -> pl.DataFrame:
    """(family_id, claim month, attached_on, locality, withdrawn) rows; all from history."""
    data = [(f, m, a, loc, "history", w) for f, m, a, loc, w in rows]
    return pl.DataFrame(data, schema=CLAIM_COLUMNS, orient="row")


def families_frame(
    rows: Iterable[tuple[str, str, dt.date | None, str, dt.date | None]],
) -> pl.DataFrame:
    """(family_id, locality, attached_on, status, earliest) rows; attached and eligible."""
    data = [(f, loc, a, True, True, s, earliest) for f, loc, a, s, earliest in rows]
    return pl.DataFrame(data, schema=FAMILY_COLUMNS, orient="row")


def monthly_history(
    counts: dict[str, int], withdrawn: dict[str, int] | None = None
) -> pl.DataFrame:
    """``counts`` claims in each ``YYYY-MM`` month (and ``withdrawn`` ones), attached a year before."""
    rows = []
    for label, n in counts.items():
        m = dt.date.fromisoformat(label + "-01")
        rows += [(f"{label}-{i}", m, m.replace(year=m.year - 1), "North", False) for i in range(n)]
    for label, n in (withdrawn or {}).items():
        m = dt.date.fromisoformat(label + "-01")
        rows += [(f"{label}-w{i}", m, m.replace(year=m.year - 1), "North", True) for i in range(n)]
    return claims_frame(rows)


NO_FAMILIES = families_frame([])

# ---------------------------------------------------------------------------
# months and rounding


def test_months_are_dates_shown_as_labels() -> None:
    assert month_index(dt.date(2018, 1, 31)) == 2018 * 12
    assert month_start(month_index(dt.date(2018, 2, 14))) == dt.date(2018, 2, 1)
    assert projection.month_end(month_index(dt.date(2020, 2, 3))) == dt.date(2020, 2, 29)
    assert projection.month_label(month_index(dt.date(2019, 12, 25))) == "2019-12"


def test_cumulative_path_rounds_the_running_total_so_months_add_up() -> None:
    # 7 claims over 3 months: 7/3 a month; cumulative 2.33 -> 2, 4.67 -> 5, 7 -> 7
    rate = Fraction(7, 3)
    path = cumulative_path(100, dict.fromkeys(range(1, 4), rate), 1, 3)
    assert path == [(1, 2, 102), (2, 3, 105), (3, 2, 107)]
    # half rounds up
    assert cumulative_path(0, {1: Fraction(1, 2)}, 1, 1) == [(1, 1, 1)]


# ---------------------------------------------------------------------------
# a hand-built history, worked out by hand

# Dec 2017: 5; Jan-Jun 2018: 10, 20, 30, 40, 50, 60; one withdrawn claim in Mar 2018.
HISTORY = monthly_history(
    {
        "2017-12": 5,
        "2018-01": 10,
        "2018-02": 20,
        "2018-03": 30,
        "2018-04": 40,
        "2018-05": 50,
        "2018-06": 60,
    },
    withdrawn={"2018-03": 1},
)


def hand_built(quota: int, end: dt.date = dt.date(2019, 3, 31), **kw: int) -> projection.Projection:
    inputs = ProjectionInputs(as_of=E, claims=HISTORY, families=NO_FAMILIES)
    return build_projection(inputs, quota=quota, programme_end=end, **kw)


def test_run_rate_is_the_mean_of_the_last_six_months() -> None:
    rr = run_rate(HISTORY, E, 6)
    # Jan..Jun 2018: (10 + 20 + 30 + 40 + 50 + 60) / 6 = 35; the withdrawn claim does not count
    assert rr.per_month == 35
    assert (rr.claims, rr.months) == (210, 6)
    assert rr.period == "Jan 2018 to Jun 2018"
    # E in the middle of a month: the look-back ends with the month before
    mid = run_rate(HISTORY, dt.date(2018, 6, 15), 3)
    assert mid.per_month == Fraction(30 + 40 + 50, 3)
    assert projection.month_label(mid.last_month) == "2018-05"
    # a look-back longer than the programme: months before the first claim are not counted
    assert run_rate(HISTORY, E, 12).per_month == Fraction(215, 7)


def test_hand_built_figures() -> None:
    p = hand_built(quota=1000)
    assert p.claims_to_date == 215  # 5 + 210
    assert p.withdrawn == 1
    assert p.months_left == 9  # Jul 2018 .. Mar 2019
    assert p.still_to_claim == 785
    assert p.needed_per_month == 88  # 785 / 9 = 87.2, rounded up
    run = p.method("run_rate")
    assert run.total == 215 + 35 * 9 == 530
    assert run.projected_claims == 315
    assert run.gap == 1000 - 530 == 470
    assert run.gap_text == "470 short"
    assert run.quota_reached == "not reached"
    assert run.payment == Decimal("315") * 800
    assert p.payment_to_date == Decimal("172000.00")

    t = p.table
    assert t.get_column("month").to_list() == [
        month_start(m)
        for m in range(month_index(dt.date(2017, 12, 1)), month_index(dt.date(2019, 3, 1)) + 1)
    ]
    past = t.filter(pl.col("month") <= E)
    assert past.get_column("actual_claims").to_list() == [5, 10, 20, 30, 40, 50, 60]
    assert past.get_column("actual_cumulative").to_list() == [5, 15, 35, 65, 105, 155, 215]
    assert past.get_column("withdrawn_claims").to_list() == [0, 0, 0, 1, 0, 0, 0]
    assert past.get_column("run_rate_cumulative").null_count() == past.height
    future = t.filter(pl.col("month") > E)
    assert future.get_column("run_rate_claims").to_list() == [35] * 9
    assert future.get_column("run_rate_cumulative").to_list() == [
        215 + 35 * k for k in range(1, 10)
    ]
    assert future.get_column("actual_claims").null_count() == 9
    assert (t.get_column("quota") == 1000).all()


def test_projected_date_the_quota_is_reached() -> None:
    # 215 + 35k >= 400 first at k = 6: 215 + 175 = 390 < 400 after five months, 425 after six
    p = hand_built(quota=400)
    run = p.method("run_rate")
    assert run.quota_reached == "2018-12"
    assert run.quota_month == dt.date(2018, 12, 1)
    assert run.gap == 400 - 530
    assert run.gap_text == "130 over"
    assert p.needed_per_month == 21  # (400 - 215) / 9 = 20.6 -> 21
    # a quota already met: reached in the month the actual claims passed it
    met = hand_built(quota=100)
    assert met.method("run_rate").quota_reached == "2018-04"
    assert (met.still_to_claim, met.needed_per_month) == (0, 0)
    assert met.needed_text == "none: the quota is met"


def test_after_the_programme_end_nothing_is_projected() -> None:
    p = hand_built(quota=1000, end=dt.date(2018, 3, 31))
    assert p.months_left == 0
    assert p.needed_per_month is None
    assert p.needed_text == "the programme has ended"
    assert p.method("run_rate").total == 215
    assert p.table.height == 7  # Dec 2017 .. E's month


def test_withdrawn_claims_are_excluded_and_reported() -> None:
    p = hand_built(quota=1000)
    assert p.claims_to_date == HISTORY.filter(~pl.col("withdrawn")).height == 215
    assert p.withdrawn == 1
    assert ("Withdrawn claims (not counted)", "1") in p.headline_items()
    doc = p.document()
    assert (doc["claims_to_date"], doc["withdrawn_claims"]) == (215, 1)
    assert any("Withdrawn claims" in n for n in p.notes)


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(warehouse.WarehouseError, match="quota"):
        hand_built(quota=0)
    with pytest.raises(warehouse.WarehouseError, match="look-back"):
        hand_built(quota=10, lookback_months=0)


# ---------------------------------------------------------------------------
# pipeline conversion on a constructed history with a known distribution

LAGS = {3: Fraction(1, 5), 5: Fraction(3, 10)}
"""Months from attachment to claim: 20% at 3, 30% at 5, the other half never claimed."""


def cohorts(size: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Families attached in whole cohorts of ``size`` (a multiple of 10) claimed per ``LAGS``.

    Cohorts m = 6..12 months before E's month are fully observed; the m = 4 cohort
    has had its lag-3 claims; m = 2 and m = 0 have had none. Then, in the m = 2
    cohort, one claimable family and one pending family whose earliest date
    is in the month after next.
    """
    claims, families = [], []
    for m in [*range(6, 13), 4, 2, 0]:
        a = month_start(EI - m)
        loc = "North" if m % 2 == 0 else "South"
        n3, n5 = size * 2 // 10, size * 3 // 10
        for i in range(size):
            fid = f"m{m}-{i}"
            lag = 3 if i < n3 else 5 if i < n3 + n5 else None
            if lag is not None and lag <= m:
                claims.append((fid, month_start(EI - m + lag), a, loc, False))
                families.append((fid, loc, a, "already_claimed", None))
            else:
                families.append((fid, loc, a, "not_met", None))
    a2 = month_start(EI - 2)
    families.append(("claimable-now", "North", a2, "claimable", None))
    families.append(("pending-later", "North", a2, "pending", dt.date(2018, 8, 14)))
    return claims_frame(claims), families_frame(families)


def expected_claims(m: int, first_lag: int, horizon: int) -> Fraction:
    """Independent: P(claimed by lag ``horizon`` | not claimed before ``first_lag``) from LAGS.

    "Not claimed before" includes the families never claimed at all.
    """
    after = 1 - sum((p for k, p in LAGS.items() if k < first_lag), Fraction(0))
    within = sum((p for k, p in LAGS.items() if first_lag <= k <= horizon), Fraction(0))
    return within / after if after else Fraction(0)


def independent_total(families: pl.DataFrame, end_month: int) -> Fraction:
    total = Fraction(0)
    for a, status, earliest in families.select("attached_on", "status", "earliest").iter_rows():
        m = EI - month_index(a)
        if status == "claimable":
            total += 1 if end_month > EI else 0
        elif status in ("not_met", "pending", "unknown"):
            first = m + 1
            if earliest is not None:
                first = max(first, month_index(earliest) - month_index(a))
            total += expected_claims(m, first, end_month - month_index(a))
    return total


@pytest.mark.parametrize("end", [dt.date(2019, 6, 30), dt.date(2018, 9, 30)])
def test_pipeline_conversion_matches_the_known_distribution(end: dt.date) -> None:
    claims, families = cohorts(20)
    inputs = ProjectionInputs(as_of=E, claims=claims, families=families)
    p = build_projection(inputs, quota=200, programme_end=end)
    assert not p.fallback
    assert p.history_families == 7 * 10 + 4 == claims.height == p.claims_to_date

    hazard = {r["lag"]: r for r in p.hazard.iter_rows(named=True)}
    assert hazard[3]["at_risk"] == 8 * 20 and hazard[3]["claims"] == 8 * 4
    assert hazard[3]["hazard"] == pytest.approx(0.2)
    assert hazard[4]["hazard"] == 0
    assert hazard[5]["at_risk"] == 7 * 16 and hazard[5]["hazard"] == pytest.approx(3 / 8)

    expected = independent_total(families, month_index(end))
    if end == dt.date(2019, 6, 30):
        # by hand: m=4 cohort 16 x 3/8 = 6; m=2 cohort 20 x 1/2 = 10; m=0 cohort 10;
        # claimable 1; pending (no claim before lag 4) 0.3 / 0.8 = 0.375
        assert expected == Fraction(27375, 1000)
    else:
        # to Sep 2018 only (lag 3 of the m=0 cohort is Sep): 6 + 10 + 4 + 1 + 0.375
        assert expected == Fraction(21375, 1000)
    pipe = p.method("pipeline")
    assert pipe.total == p.claims_to_date + math.floor(expected + Fraction(1, 2))
    assert pipe.projected_claims == round(float(expected))

    future = p.table.filter(pl.col("month") > E)
    by_month = dict(zip(future["month"], future["pipeline_claims"], strict=True))
    # Jul: 6 (m=4 at lag 5) + 4 (m=2 at lag 3) + 1 claimable; Aug: none; Sep: 6 + 4 + 0.375
    assert by_month[dt.date(2018, 7, 1)] == 11
    assert by_month[dt.date(2018, 8, 1)] == 0
    assert by_month[dt.date(2018, 9, 1)] == 10
    assert sum(by_month.values()) == pipe.projected_claims

    # by locality: every pipeline cohort with even m is North; the old odd cohorts (South) add 0
    rows = {r["locality"]: r for r in p.by_locality.iter_rows(named=True)}
    assert rows["All"]["expected"] == pytest.approx(float(expected))
    assert rows["South"]["expected"] == pytest.approx(0.0)
    assert rows["All"]["claimable"] == 1 and rows["All"]["pending"] == 1
    assert rows["All"]["already_claimed"] == p.claims_to_date


def test_pending_families_are_counted_by_the_month_they_could_be_met() -> None:
    claims, families = cohorts(20)
    extra = families_frame(
        [
            ("p-past", "South", month_start(EI - 2), "pending", dt.date(2018, 5, 2)),
            ("p-unknown", "South", month_start(EI - 2), "pending", None),
        ]
    )
    p = build_projection(
        ProjectionInputs(E, claims, pl.concat([families, extra])),
        quota=200,
        programme_end=dt.date(2019, 6, 30),
    )
    pend = {(loc, m): n for loc, m, n in p.pending_by_month.iter_rows()}
    # an earliest date already past is shown as the next month; no date is "not known"
    assert pend == {
        ("North", dt.date(2018, 8, 1)): 1,
        ("South", dt.date(2018, 7, 1)): 1,
        ("South", None): 1,
    }


def test_thin_history_falls_back_to_the_run_rate_and_says_so() -> None:
    claims, families = cohorts(10)  # 7 x 5 + 2 = 37 claimed families: fewer than 50
    p = build_projection(
        ProjectionInputs(E, claims, families), quota=200, programme_end=dt.date(2019, 6, 30)
    )
    assert p.history_families == 37
    assert p.fallback
    pipe, run = p.method("pipeline"), p.method("run_rate")
    assert pipe.fallback and not run.fallback
    assert "fewer than 50" in pipe.note and "falls back to the run rate" in pipe.note
    assert pipe.total == run.total
    assert p.table["pipeline_cumulative"].to_list() == p.table["run_rate_cumulative"].to_list()
    assert any("falls back" in n for n in p.notes)
    assert any("fell back" in label for label, _ in p.headline_items())
    assert p.document()["methods"]["pipeline"]["fallback"] is True
    assert p.by_locality["expected"].null_count() == p.by_locality.height
    # the threshold is a parameter
    q = build_projection(
        ProjectionInputs(E, claims, families),
        quota=200,
        programme_end=dt.date(2019, 6, 30),
        min_history=30,
    )
    assert not q.fallback


def test_earliest_possible_takes_the_first_pending_route() -> None:
    d1, d2 = dt.date(2018, 8, 1), dt.date(2018, 9, 1)
    frame = pl.DataFrame(
        {
            "state:ssp": ["pending", "pending", "met", "pending", "not_met"],
            "earliest:ssp": [d2, d2, None, None, None],
            "state:ce": ["pending", "not_met", "pending", "pending", "not_met"],
            "earliest:ce": [d1, None, d1, d1, None],
        }
    )
    got = frame.select(projection.earliest_possible()).to_series().to_list()
    assert got == [d1, d2, d1, None, None]


# ---------------------------------------------------------------------------
# the files


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[projection.Projection, dict[str, projection.WrittenFile]]:
    tmp_path = tmp_path_factory.mktemp("projection")
    claims, families = cohorts(20)
    p = build_projection(
        ProjectionInputs(E, claims, families, plan_name="phase2", plan_hash="ab" * 32),
        quota=200,
        programme_end=dt.date(2019, 6, 30),
    )
    return p, projection.write_projection(p, tmp_path / "out")


def test_chart_files_are_valid_png_and_svg(
    written: tuple[projection.Projection, dict[str, projection.WrittenFile]],
) -> None:
    _, files = written
    png = files[projection.CHART_PNG].path
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    root = ET.parse(files[projection.CHART_SVG].path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = files[projection.CHART_SVG].path.read_text(encoding="utf-8")
    assert "<dc:date>" not in text  # no timestamp
    for f in files.values():
        assert f.path.stat().st_mode & 0o777 == 0o644
        assert hashlib.sha256(f.path.read_bytes()).hexdigest() == f.sha256


def test_files_are_reproducible(
    tmp_path: Path, written: tuple[projection.Projection, dict[str, projection.WrittenFile]]
) -> None:
    p, files = written
    again = projection.write_projection(p, tmp_path / "again")
    assert {n: w.sha256 for n, w in files.items()} == {n: w.sha256 for n, w in again.items()}


def test_table_csv_xlsx_and_manifest(
    written: tuple[projection.Projection, dict[str, projection.WrittenFile]],
) -> None:
    import openpyxl

    p, files = written
    lines = files[projection.TABLE_CSV].path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(projection.TABLE_COLUMNS)
    assert lines[1] == "2017-09,4,4,0,,,,,200"  # the first claim's month: 4 claims at lag 3
    assert lines[-1].startswith("2019-06,,,,")  # no actuals after E
    assert len(lines) == 1 + p.table.height
    book = openpyxl.load_workbook(files[projection.TABLE_XLSX].path)
    assert book.sheetnames == ["projection", "headline", "pipeline by locality"]
    sheet = book["projection"]
    assert [c.value for c in sheet[1]] == list(projection.TABLE_COLUMNS)
    assert sheet.cell(2, 1).value == dt.datetime(2017, 9, 1)
    last = [c.value for c in sheet[sheet.max_row]]
    assert last[5] == p.method("run_rate").total and last[7] == p.method("pipeline").total
    doc = json.loads(files[projection.MANIFEST_JSON].path.read_text(encoding="utf-8"))
    assert doc["methods"]["pipeline"]["total_at_programme_end"] == p.method("pipeline").total
    assert doc["plan"]["hash"] == "ab" * 32
    assert set(doc["files"]) == set(files) - {projection.MANIFEST_JSON}
    html = files[projection.REPORT_HTML].path.read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in html


def test_locality_names_are_neutralised_in_csv(tmp_path: Path) -> None:
    claims, families = cohorts(20)
    families = families.with_columns(
        pl.when(pl.col("locality") == "North")
        .then(pl.lit("=HYPERLINK(1)"))
        .otherwise(pl.col("locality"))
        .alias("locality")
    )
    p = build_projection(
        ProjectionInputs(E, claims, families), quota=200, programme_end=dt.date(2019, 6, 30)
    )
    files = projection.write_projection(p, tmp_path)
    text = files[projection.LOCALITY_CSV].path.read_text(encoding="utf-8")
    assert "'=HYPERLINK(1)" in text and "\n=HYPERLINK" not in text


# ---------------------------------------------------------------------------
# the whole job on a synthetic council (SQLite)


def _pass_all(engine: Engine, window: str) -> list[dict[str, object]]:
    with warehouse.batch_reader(engine, window) as tx:
        sampled = tx.sample().get_column("family_id").to_list()
    return [
        {
            "family_id": f,
            "result": "pass",
            "note": "",
            "auditor": "A. Auditor",
            "checked_on": dt.date(2018, 3, 10),
        }
        for f in sampled
    ]


def test_end_to_end_on_a_synthetic_council(
    sqlite_engine: Engine, synth_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sqlite_engine
    warehouse.load_folder(engine, synth_folder)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False), output_dir=tmp_path / "out"
    )
    e = dt.date(2018, 2, 28)
    # no batch yet: E defaults to today
    assert projection.default_as_of(engine, today=dt.date(2018, 5, 1)) == dt.date(2018, 5, 1)
    batch.prepare(settings, engine, "2018-02", seed="s")
    batch.verify(settings, engine, "2018-02", _pass_all(engine, "2018-02"))
    batch.finalise(settings, engine, "2018-02")
    submitted = warehouse.submitted_lines(engine)
    withdrawn_family = submitted.get_column("family_id")[0]
    batch.withdraw(engine, withdrawn_family, "MHCLG spot check")
    assert projection.default_as_of(engine) == e

    result = projection.run_projection(settings, engine)
    p = result.projection
    assert p.as_of == e
    assert result.folder == tmp_path / "out" / "projection-2018-02-28"
    history = warehouse.read_table(engine, "claims").filter(pl.col("claimed_on") <= e)
    assert p.history_claims == history.height
    assert p.batch_claims == submitted.height - 1
    assert p.withdrawn == 1
    assert p.claims_to_date == history.height + submitted.height - 1
    assert p.table.filter(pl.col("month") <= e)["actual_cumulative"][-1] == p.claims_to_date
    # every family the evaluation counts as claimed is a claim to date or the withdrawn one
    families = warehouse.read_table(engine, "families")
    attached = families.filter(pl.col("attached_on") <= e).height
    all_row = p.by_locality.filter(pl.col("locality") == "All").row(0, named=True)
    assert all_row["attached"] == attached
    assert all_row["already_claimed"] == p.claims_to_date + p.withdrawn
    for m in p.methods:
        assert m.total >= p.claims_to_date
    assert p.plan_hash and p.evaluation_run_id is not None
    for name in (
        projection.TABLE_CSV,
        projection.TABLE_XLSX,
        projection.CHART_PNG,
        projection.CHART_SVG,
        projection.REPORT_HTML,
        projection.LOCALITY_CSV,
        projection.MANIFEST_JSON,
    ):
        assert (result.folder / name).is_file(), name
    assert result.report == result.folder / projection.REPORT_HTML

    # the command line: the same figures as JSON, the files where --out says
    from claims.cli import main

    capsys.readouterr()
    main(["project", "--database", settings.database_url, "--out", str(tmp_path / "cli"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["as_of"] == "2018-02-28"
    assert (doc["claims_to_date"], doc["withdrawn_claims"]) == (p.claims_to_date, 1)
    assert doc["methods"]["pipeline"]["total_at_programme_end"] == p.method("pipeline").total
    assert doc["report"] == str(tmp_path / "cli" / projection.REPORT_HTML)
    assert all(Path(f).is_file() for f in doc["files"].values())

    # an earlier E sees neither the batch nor later history claims
    before = projection.gather_inputs(engine, dt.date(2017, 6, 30))
    assert before.claims.filter(pl.col("source") == "batch").height == 0
    assert before.claims["month"].max() <= dt.date(2017, 6, 30)  # type: ignore[operator]
