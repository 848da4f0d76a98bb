"""The HTML evidence pack in a real browser: every value renders as text.

Uses Debian's headless Chromium. Skipped when it is missing, except under CI
(``CI`` set), where a skip would hide a regression.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import rules
from claims import outputs
from claims.documents import BatchInfo, Member, SampledClaim, Verification

A = dt.date(2017, 8, 31)
E = dt.date(2018, 9, 30)
SCRIPT = "<script>alert(1)</script>"
BOLD_ID = "<b>F1</b>"

INFO = BatchInfo(
    window="2018-09",
    as_of=E,
    la_code="E06000049",
    plan_name="phase2",
    plan_hash="9f" * 32,
    seed="<i>seed</i>",
    rate=Decimal("0.20"),
    strata=("basis", "locality"),
    software_version="0.1.0",
    load_batches={"families": 1, "people": 1, "offences": 1, "attendance": 1},
    load_files={1: {"families.csv": "a" * 64, "people.csv": "b" * 64}},
    generated_at=dt.datetime(2018, 10, 1, 9, 30, tzinfo=dt.UTC),
)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and Path("/usr/bin/chromium").exists():
        exe = "/usr/bin/chromium"
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI: .ci/run should install it")
        pytest.skip("Chromium is not installed")
    return exe


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def family(family_id: str) -> rules.FamilyResult:
    """Identified for crime, education and domestic abuse at A; SSP met at E."""
    records: dict[str, list[dict[str, Any]]] = {t: [] for t in rules.TABLES}
    records["families"] = [{"family_id": family_id, "attached_on": A, "locality": "North"}]
    records["people"] = [
        {"family_id": family_id, "person_id": "P1", "role": "adult", "birth_date": "1980-01-01"},
        {"family_id": family_id, "person_id": "C1", "role": "child", "birth_date": "2008-05-05"},
    ]
    records["offences"] = [{"person_id": "P1", "occurred_on": "2017-06-01", "kind": "offence"}]
    records["domestic_abuse"] = [
        {"person_id": "P1", "occurred_on": "2017-06-01", "kind": "incident"}
    ]
    records["attendance"] = [
        {
            "person_id": "C1",
            "term_start": s,
            "term_end": e,
            "possible_sessions": 100,
            "unauthorised_sessions": u,
        }
        for s, e, u in [
            ("2017-04-18", "2017-07-21", 30),
            ("2017-09-04", "2017-12-20", 2),
            ("2018-01-08", "2018-03-29", 2),
            ("2018-04-16", "2018-07-20", 2),
        ]
    ]
    [result] = rules.evaluate_reference(rules.load_plan(), rules.sources_from_records(records), E)
    return result


def sampled(family_id: str, given: str, lead_worker: str, note: str | None = None) -> SampledClaim:
    evidence = family(family_id)
    return SampledClaim(
        family_id=family_id,
        locality="North",
        lead_worker=lead_worker,
        basis="ssp",
        reason="random",
        stratum="ssp|North",
        attached_on=A,
        as_of=E,
        headlines=evidence.identified_headlines,
        members=(
            Member("P1", "adult", given, "Smith", dt.date(1980, 1, 1)),
            Member("C1", "child", "Billy", "Smith", dt.date(2008, 5, 5)),
        ),
        evidence=evidence,
        verification=Verification(note=note),
    )


def evidence_pack(tmp_path: Path) -> Path:
    claims = [
        sampled(BOLD_ID, SCRIPT, '"><img src=x onerror=alert(2)>', note="</td></tr></table>"),
        sampled("F2", "Alice", "Jo Bloggs"),
    ]
    path, _ = outputs.write_verification_html(tmp_path / "verification.html", INFO, claims)
    return path


def test_evidence_pack_renders_every_value_as_text(tmp_path: Path) -> None:
    path = evidence_pack(tmp_path)
    dom = run_chromium(tmp_path, "--dump-dom", path.as_uri()).stdout
    assert "<html" in dom and "</html>" in dom
    # the name is text: escaped in the serialised DOM, and no script or img element exists
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not re.search(r"<script\b", dom, re.IGNORECASE)
    assert not re.search(r"<img\b", dom, re.IGNORECASE)
    assert "&lt;b&gt;F1&lt;/b&gt;" in dom and "<b>" not in dom
    assert "&lt;i&gt;seed&lt;/i&gt;" in dom and "<i>" not in dom
    # the note could not close the result table early: both families' sections are whole
    assert dom.count('<section class="family"') == 2
    assert dom.count('<table class="result-box">') == 2
    assert "offences#2" in dom


@pytest.mark.manual
def test_screenshot_for_a_person_to_look_at(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Run by hand: ``pytest -m manual tests/claims/test_outputs_browser.py -s``.

    Writes the evidence pack and a 1200x1600 PNG of its first screen to
    ``$TFCLAIMS_SCREENSHOT_DIR`` (default: the test's temporary folder) and prints
    where they are.
    """
    if "manual" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("produces a screenshot for a person: run with -m manual")
    out = Path(os.environ.get("TFCLAIMS_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    html = evidence_pack(out)
    png = out / "verification.png"
    run_chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,1600", html.as_uri())
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    print(f"\nevidence pack: {html}\nscreenshot: {png}")
