"""The plan language: the shipped plan loads, and every kind of error names file, key and reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rules import PlanError, default_plan_path, load_plan, parse_plan

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad_plans").glob("*.yaml"))


def _expected(path: Path) -> str:
    for line in path.read_bytes().decode("latin-1").splitlines():
        if line.startswith("# expect: "):
            return line.removeprefix("# expect: ")
    raise AssertionError(f"{path} has no '# expect:' line")


def test_there_is_one_fixture_per_kind_of_error() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_plan_is_rejected_with_file_key_and_reason(path: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    message = str(caught.value)
    assert f"{path}: {_expected(path)}" in message, message
    assert caught.value.file == str(path)
    assert caught.value.problems


def test_problems_carry_line_numbers() -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(HERE / "bad_plans" / "unknown_key.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "headlines[0].indicators[0].test.count.windw"
    assert problem.line == 24
    assert str(caught.value).endswith("unknown key (line 24)")


def test_every_problem_is_reported() -> None:
    text = (HERE / "plans" / "minimal.yaml").read_text(encoding="utf-8")
    text = text.replace("months: 12", "months: 0").replace("kind: [offence]", "kind: [theft]")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, "two.yaml")
    assert len(caught.value.problems) == 1  # shape errors first ...
    text = text.replace("months: 0", "months: 12")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, "two.yaml")
    assert "two.yaml: headlines[0].indicators[0].test.count.where.kind[0]" in str(caught.value)


def test_missing_file() -> None:
    with pytest.raises(PlanError, match=r"nowhere\.yaml: \(document\): cannot read"):
        load_plan(HERE / "nowhere.yaml")


def test_minimal_plan_loads() -> None:
    plan = load_plan(HERE / "plans" / "minimal.yaml")
    assert plan.name == "minimal"
    assert plan.continuous_employment is not None


def test_shipped_plan_loads_and_is_the_default() -> None:
    plan = load_plan()
    assert plan.source == str(default_plan_path())
    assert plan.name == "phase2"
    assert [h.code for h in plan.headlines] == [
        "crime",
        "education",
        "children_who_need_help",
        "worklessness",
        "domestic_abuse",
        "health",
    ]
    assert plan.eligibility.min_headlines == 2
    assert plan.continuous_employment is not None
    for headline in plan.headlines:
        assert headline.reference
        for indicator in headline.indicators:
            assert indicator.reference and indicator.effective_from


def test_content_hash_is_sha256_of_canonical_bytes() -> None:
    raw = default_plan_path().read_bytes()
    plan = load_plan()
    assert plan.content_hash == hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()
    crlf = parse_plan(raw.replace(b"\n", b"\r\n"), "crlf.yaml")
    bom = parse_plan(b"\xef\xbb\xbf" + raw, "bom.yaml")
    assert crlf.content_hash == bom.content_hash == plan.content_hash
    edited = parse_plan(raw.replace(b"at_least_percent: 33", b"at_least_percent: 34"), "x.yaml")
    assert edited.content_hash != plan.content_hash
