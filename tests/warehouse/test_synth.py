"""The synthetic council: contract-shaped, deterministic, and exercising the whole plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from warehouse.contract import TABLES, Table, table
from warehouse.synth import SynthSummary, synthesise

SMALL = 300
HORIZON = dt.date(2019, 7, 31)


def read(folder: Path, name: str) -> pl.DataFrame:
    """A written CSV with every column as a string (empty field = null)."""
    return pl.read_csv(folder / f"{name}.csv", infer_schema=False)


def read_all(folder: Path) -> dict[str, pl.DataFrame]:
    return {t.name: read(folder, t.name) for t in TABLES}


def dates(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).str.to_date("%Y-%m-%d") for c in columns)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("small")
    return out, synthesise(out, families=SMALL, seed=7)


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pl.DataFrame]]:
    """The default council: 3,000 families, seed 2018."""
    out = tmp_path_factory.mktemp("council")
    synthesise(out)
    return out, read_all(out)


# ----------------------------------------------------------------------------- shape


def test_every_table_is_written_with_the_contract_columns_in_order(
    small: tuple[Path, SynthSummary],
) -> None:
    out, summary = small
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t.name}.csv" for t in TABLES)
    assert summary.files == [out / f"{t.name}.csv" for t in TABLES]
    assert summary.families == SMALL
    assert list(summary.rows) == [t.name for t in TABLES]
    for t in TABLES:
        raw = (out / f"{t.name}.csv").read_bytes()
        raw.decode("utf-8")
        header = raw.split(b"\n", 1)[0].decode()
        assert header == ",".join(t.column_names), t.name
        assert raw.count(b"\n") == summary.rows[t.name] + 1, t.name
        assert summary.rows[t.name] > 0, t.name


def test_parquet_holds_the_same_data_as_csv(tmp_path: Path) -> None:
    csv = synthesise(tmp_path / "csv", families=200, seed=3)
    pq = synthesise(tmp_path / "pq", families=200, seed=3, fmt="parquet", chunk_size=64)
    assert pq.rows == csv.rows
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == sorted(
        f"{t.name}.parquet" for t in TABLES
    )
    for t in TABLES:
        frame = pl.read_parquet(tmp_path / "pq" / f"{t.name}.parquet")
        assert tuple(frame.columns) == t.column_names
        as_text = frame.select(pl.all().cast(pl.String))
        assert as_text.equals(read(tmp_path / "csv", t.name)), t.name


def test_progress_reports_every_family(tmp_path: Path) -> None:
    seen: list[int] = []
    synthesise(tmp_path, families=250, seed=1, progress=seen.append, chunk_size=100)
    assert seen == [100, 100, 50]


def test_no_families_gives_header_only_files(tmp_path: Path) -> None:
    summary = synthesise(tmp_path, families=0)
    assert all(n == 0 for n in summary.rows.values())
    for t in TABLES:
        assert read(tmp_path, t.name).columns == list(t.column_names)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(
    small: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    out, _ = small
    synthesise(tmp_path, families=SMALL, seed=7)
    for t in TABLES:
        name = f"{t.name}.csv"
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_another_seed_gives_other_files(small: tuple[Path, SynthSummary], tmp_path: Path) -> None:
    out, _ = small
    synthesise(tmp_path, families=SMALL, seed=8)
    for name in ("families.csv", "people.csv", "attendance.csv", "offences.csv"):
        assert (tmp_path / name).read_bytes() != (out / name).read_bytes(), name


def test_chunk_boundaries_change_nothing(small: tuple[Path, SynthSummary], tmp_path: Path) -> None:
    out, summary = small
    chunked = synthesise(tmp_path, families=SMALL, seed=7, chunk_size=37)
    assert chunked.rows == summary.rows
    for t in TABLES:
        name = f"{t.name}.csv"
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    frames = read_all(tmp_path)
    for t in TABLES:
        _check_references(t, frames)
        _check_keys(t, frames[t.name])


# ----------------------------------------------------------------------------- contract


def _check_references(t: Table, frames: dict[str, pl.DataFrame]) -> None:
    for c in t.columns:
        if c.references is not None:
            key = "family_id" if c.references == "families" else "person_id"
            known = frames[c.references][key]
            missing = frames[t.name].filter(~pl.col(c.name).is_in(known.implode()))
            assert missing.height == 0, f"{t.name}.{c.name}: {missing.head(3)}"


def _check_keys(t: Table, frame: pl.DataFrame) -> None:
    for key in t.keys:
        assert not frame.select(key).is_duplicated().any(), f"{t.name} {key}"


@pytest.mark.parametrize("which", ["small", "council"])
def test_values_obey_the_contract(which: str, request: pytest.FixtureRequest) -> None:
    out = request.getfixturevalue(which)[0]
    frames = read_all(out)
    earliest, latest = dt.date(1900, 1, 1), HORIZON
    for t in TABLES:
        frame = frames[t.name]
        for c in t.columns:
            values = frame[c.name]
            if c.required:
                assert values.null_count() == 0, f"{t.name}.{c.name} has nulls"
            present = values.drop_nulls()
            if c.choices is not None:
                assert set(present.unique()) <= set(c.choices), f"{t.name}.{c.name}"
            if c.type == "date":
                parsed = present.str.to_date("%Y-%m-%d", strict=True)
                assert parsed.len() == 0 or (earliest <= parsed.min() <= parsed.max() <= latest)  # type: ignore[operator]
                assert present.str.contains(r"^\d{4}-\d{2}-\d{2}$").all(), f"{t.name}.{c.name}"
            if c.type == "int":
                assert present.str.contains(r"^\d+$").all(), f"{t.name}.{c.name}"
                assert (present.cast(pl.Int64) >= (c.minimum or 0)).all()
            if c.type == "decimal":
                assert present.str.contains(r"^\d+\.\d{2}$").all(), f"{t.name}.{c.name}"
            if c.pattern is not None:
                assert present.str.contains(c.pattern).all(), f"{t.name}.{c.name}"
        for start, end in t.spans:
            spans = dates(frame, start, end).drop_nulls([start, end])
            assert (spans[end] >= spans[start]).all(), f"{t.name} {end} < {start}"
        for small_col, large_col in t.not_exceeding:
            ints = frame.select(pl.col(small_col, large_col).cast(pl.Int64))
            assert (ints[small_col] <= ints[large_col]).all(), t.name
        for end, other in t.null_while_open:
            assert frame.filter(pl.col(end).is_null() & pl.col(other).is_not_null()).height == 0
        _check_references(t, frames)
        _check_keys(t, frame)
    families, people = frames["families"], frames["people"]
    assert families["family_id"].str.contains(r"^\d{7}$").all()
    assert families["family_id"].str.starts_with("0").all()
    assert people["person_id"].str.contains(r"^P\d{8}$").all()
    claims = frames["claims"]
    assert (claims["claim_window"] == claims["claimed_on"].str.slice(0, 7)).all()


# ----------------------------------------------------------------------------- the plan


@pytest.fixture(scope="module")
def attached(council: tuple[Path, dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """person_id, family_id, role, birth_date, A for every member of an attached family."""
    _, f = council
    fams = dates(f["families"], "attached_on").filter(pl.col("attached_on").is_not_null())
    people = dates(f["people"], "birth_date")
    return people.join(fams.select("family_id", "attached_on"), on="family_id")


def _within_year_before_a(column: str) -> pl.Expr:
    return (pl.col(column) <= pl.col("attached_on")) & (
        pl.col(column) > pl.col("attached_on").dt.offset_by("-12mo")
    )


def test_every_identifying_event_kind_occurs_in_the_year_before_attachment(
    council: tuple[Path, dict[str, pl.DataFrame]], attached: pl.DataFrame
) -> None:
    _, f = council
    for name, column, kinds in (
        ("offences", "occurred_on", table("offences").column("kind").choices),
        ("domestic_abuse", "occurred_on", table("domestic_abuse").column("kind").choices),
        ("exclusions", "excluded_on", table("exclusions").column("kind").choices),
    ):
        events = dates(f[name], column).join(attached, on="person_id")
        recent = events.filter(_within_year_before_a(column))
        assert set(recent["kind"].unique()) == set(kinds or ()), name
        assert recent.filter(pl.col(column) == pl.col("attached_on")).height > 0, name


def test_education_indicators_and_missing_attendance(
    council: tuple[Path, dict[str, pl.DataFrame]], attached: pl.DataFrame
) -> None:
    _, f = council
    terms = dates(f["attendance"], "term_start", "term_end").with_columns(
        pl.col("possible_sessions", "unauthorised_sessions").cast(pl.Int64)
    )
    before = terms.join(attached, on="person_id").filter(
        _within_year_before_a("term_end") & (pl.col("possible_sessions") > 0)
    )
    rates = before.group_by("person_id").agg(
        pl.col("unauthorised_sessions").sum() * 10 >= pl.col("possible_sessions").sum()
    )
    assert rates["unauthorised_sessions"].sum() > 50  # persistent absentees
    exactly = before.filter(
        (pl.col("possible_sessions") == 130) & (pl.col("unauthorised_sessions") == 13)
    )
    assert exactly.height > 0  # exactly 10%
    assert terms.filter(pl.col("possible_sessions") == 0).height > 0
    sessions = terms["possible_sessions"].filter(terms["possible_sessions"] > 0)
    assert sessions.min() >= 120 and sessions.max() <= 140  # type: ignore[operator]
    exclusions = dates(f["exclusions"], "excluded_on").join(attached, on="person_id")
    fixed = exclusions.filter(
        _within_year_before_a("excluded_on") & (pl.col("kind") == "fixed_term")
    )
    assert (fixed.group_by("person_id").len()["len"] >= 3).sum() > 20
    # Children of school age at the horizon whose attendance stopped arriving.
    children = dates(f["people"], "birth_date").filter(pl.col("role") == "child")
    with_rows = terms.group_by("person_id").agg(pl.col("term_end").max().alias("last"))
    stopped = children.join(with_rows, on="person_id").filter(
        (pl.col("last") < dt.date(2018, 7, 1)) & (pl.col("birth_date") > dt.date(2005, 1, 1))
    )
    assert stopped.height > 10
    # Term dates follow the three-term year.
    starts = set(terms["term_start"].dt.strftime("%m-%d").unique())
    assert {"09-01", "01-05", "04-15"} <= starts


def test_care_health_and_neet_spells_cover_attachment(
    council: tuple[Path, dict[str, pl.DataFrame]], attached: pl.DataFrame
) -> None:
    _, f = council
    care = dates(f["social_care"], "started_on", "ended_on").join(attached, on="person_id")
    covering = care.filter(
        (pl.col("started_on") <= pl.col("attached_on"))
        & (pl.col("ended_on").is_null() | (pl.col("ended_on") > pl.col("attached_on")))
    )
    assert set(covering["episode"].unique()) >= {"cin", "cp"}
    assert care.filter(pl.col("ended_on") > pl.col("attached_on")).height > 50  # episodes close
    assert set(care["episode"].unique()) == {"early_help", "cin", "cp", "lac"}

    health = dates(f["health"], "started_on", "ended_on").join(attached, on="person_id")
    assert set(health["service"].unique()) == {"mental_health", "substance_misuse"}
    completed = health.filter(
        (pl.col("end_reason") == "completed") & (pl.col("ended_on") > pl.col("attached_on"))
    )
    assert completed.height > 20
    assert health.filter(pl.col("ended_on").is_null()).height > 20  # sustained engagement
    assert set(health["end_reason"].drop_nulls().unique()) >= {"completed", "disengaged"}

    neet = dates(f["neet"], "started_on", "ended_on").join(attached, on="person_id")
    young = neet.filter(
        (pl.col("started_on") <= pl.col("attached_on"))
        & (pl.col("ended_on").is_null() | (pl.col("ended_on") >= pl.col("attached_on")))
    ).with_columns(
        age=(pl.col("attached_on").dt.year() - pl.col("birth_date").dt.year()),
    )
    assert young.filter(pl.col("age").is_between(16, 24)).height > 20
    assert young["birth_date"].null_count() > 0  # NEET with no date of birth


def test_both_benefit_groups_lead_to_employment(
    council: tuple[Path, dict[str, pl.DataFrame]], attached: pl.DataFrame
) -> None:
    _, f = council
    benefits = dates(f["benefits"], "started_on", "ended_on").join(attached, on="person_id")
    covering = benefits.filter(
        (pl.col("role") == "adult")
        & (pl.col("started_on") <= pl.col("attached_on"))
        & (pl.col("ended_on").is_null() | (pl.col("ended_on") >= pl.col("attached_on")))
    )
    jobs = dates(f["employment"], "started_on", "ended_on")
    later_work = jobs.join(covering.select("person_id", "attached_on"), on="person_id").filter(
        pl.col("started_on") > pl.col("attached_on")
    )
    moved = covering.filter(pl.col("person_id").is_in(later_work["person_id"].implode()))
    groups = set(moved["benefit"].unique())
    assert groups & {"jsa", "uc_not_working"}
    assert groups & {"esa", "income_support", "incapacity_benefit"}
    assert set(benefits["benefit"].unique()) == set(
        table("benefits").column("benefit").choices or ()
    )
    # Near the boundary: a benefit ending the day work starts, and a one-day gap in work.
    same_day = covering.join(
        jobs, left_on=["person_id", "ended_on"], right_on=["person_id", "started_on"]
    )
    assert same_day.height > 0
    gap = jobs.join(
        jobs.with_columns(pl.col("started_on") - pl.duration(days=2)),
        left_on=["person_id", "ended_on"],
        right_on=["person_id", "started_on"],
    )
    assert gap.height > 0
    hours = f["employment"]["hours_per_week"]
    assert hours.null_count() > 0 and (hours == "0.00").any()


def test_arrears_cross_the_threshold_and_some_kinds_stop(
    council: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    _, f = council
    fams = dates(f["families"], "attached_on").filter(pl.col("attached_on").is_not_null())
    debt = dates(f["debt"], "recorded_on").with_columns(
        pence=pl.col("amount").str.replace(".", "", literal=True).cast(pl.Int64)
    )
    at_a = (
        debt.join(fams.select("family_id", "attached_on"), on="family_id")
        .filter(
            (pl.col("recorded_on") <= pl.col("attached_on"))
            & (pl.col("recorded_on") > pl.col("attached_on").dt.offset_by("-3mo"))
        )
        .sort("recorded_on")
        .group_by("family_id", "kind")
        .agg(pl.col("pence").last())
        .group_by("family_id")
        .agg(pl.col("pence").sum())
    )
    assert (at_a["pence"] >= 100_000).sum() > 100
    assert (at_a["pence"] == 100_000).sum() > 0  # exactly GBP 1,000.00
    assert (at_a["pence"] < 100_000).sum() > 50
    last = debt.group_by("family_id", "kind").agg(pl.col("recorded_on").max())
    assert (last["recorded_on"] < dt.date(2019, 1, 1)).sum() > 5  # a kind stops arriving
    assert set(debt["kind"].unique()) == {"rent_arrears", "council_tax_arrears"}


def test_people_are_realistic(council: tuple[Path, dict[str, pl.DataFrame]]) -> None:
    _, f = council
    people = dates(f["people"], "birth_date")
    assert set(people["role"].unique()) == {"adult", "child"}
    share_null = people["birth_date"].null_count() / people.height
    assert 0.005 < share_null < 0.05
    assert people["given_name"].null_count() == 0 and people["family_name"].null_count() == 0
    localities = f["families"]["locality"].value_counts()
    counts = dict(zip(localities["locality"], localities["count"], strict=True))
    assert set(counts) == {"North", "Mid", "South"}
    assert len(set(counts.values())) == 3  # uneven shares
    fams = dates(f["families"], "attached_on", "closed_on")
    assert fams["lead_worker"].null_count() < fams.height
    assert fams.filter(pl.col("closed_on").is_not_null()).height > 300
    assert (
        fams.drop_nulls(["attached_on", "closed_on"])
        .select((pl.col("closed_on") >= pl.col("attached_on")).all())
        .item()
    )
    by_year = fams["attached_on"].drop_nulls().dt.year().value_counts()
    years = dict(zip(by_year["attached_on"], by_year["count"], strict=True))
    assert set(years) == {2015, 2016, 2017, 2018}
    assert years[2016] > years[2015] and years[2017] > years[2018]
    a = fams["attached_on"].drop_nulls()
    assert a.min() >= dt.date(2015, 4, 1) and a.max() <= dt.date(2018, 6, 30)  # type: ignore[operator]


def test_default_council_has_about_2600_attached_and_900_earlier_claims(
    council: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    _, f = council
    fams = dates(f["families"], "attached_on")
    assert fams.height == 3000
    assert abs(int(fams["attached_on"].is_not_null().sum()) - 2600) <= 150
    claims = dates(f["claims"], "claimed_on").join(fams, on="family_id")
    assert abs(claims.height - 900) <= 100
    assert (claims["claimed_on"] < dt.date(2018, 1, 1)).all()
    assert (claims["claimed_on"] > claims["attached_on"]).all()
    basis = claims["basis"].value_counts()
    counts = dict(zip(basis["basis"], basis["count"], strict=True))
    assert counts["ssp"] > counts["ce"] > 0
    # Claims per month ramp up: more in 2017 than in 2016, more in 2016 than in 2015.
    by_year = claims["claimed_on"].dt.year().value_counts()
    years = dict(zip(by_year["claimed_on"], by_year["count"], strict=True))
    assert years[2017] > years[2016] > years.get(2015, 0)
