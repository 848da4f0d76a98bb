"""The managers' projection report in a real browser: the headline figures are in the DOM,
the chart loads, and data from the warehouse renders as text.

Uses Debian's headless Chromium. Skipped when it is missing, except under CI
(``CI`` set), where a skip would hide a regression.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import polars as pl
from test_outputs_browser import run_chromium
from test_projection import E, cohorts

from claims import projection
from claims.projection import ProjectionInputs, build_projection

EVIL = "<script>document.title='owned'</script>East"


def _text(dom: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', dom, re.S)
    assert m, f"no element #{element_id} in the DOM"
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()


def test_report_renders_with_the_headline_figures(tmp_path: Path) -> None:
    claims, families = cohorts(20)
    families = families.with_columns(
        pl.when(pl.col("locality") == "South")
        .then(pl.lit(EVIL))
        .otherwise(pl.col("locality"))
        .alias("locality")
    )
    p = build_projection(
        ProjectionInputs(E, claims, families, plan_name="phase2", plan_hash="cd" * 32),
        quota=200,
        programme_end=dt.date(2019, 6, 30),
    )
    files = projection.write_projection(p, tmp_path / "out")
    report = files[projection.REPORT_HTML].path
    dom = run_chromium(tmp_path, "--dump-dom", report.as_uri()).stdout

    assert _text(dom, "claims-to-date") == f"{p.claims_to_date:,}" == "74"
    assert _text(dom, "withdrawn") == "0"
    assert _text(dom, "quota") == "200"
    assert _text(dom, "needed") == f"{p.needed_per_month}" == "11"  # (200 - 74) / 12 = 10.5
    # Jan..Jun 2018: lag-3 claims of cohorts m = 4, 6, 7, 8 (4 x 4) and lag-5 claims of
    # cohorts m = 6..10 (5 x 6): 46 claims in 6 months, 7.67 a month
    assert _text(dom, "run-rate") == "7.7"
    run, pipe = p.method("run_rate"), p.method("pipeline")
    row = re.search(r'id="method-pipeline".*?</tr>', dom, re.S)
    assert row and f">{pipe.total:,}<" in row.group(0) and pipe.gap_text in row.group(0)
    row = re.search(r'id="method-run_rate".*?</tr>', dom, re.S)
    assert row and f">{run.total:,}<" in row.group(0) and run.quota_reached in row.group(0)
    verdict = _text(dom, "verdict")
    assert f"{p.still_to_claim:,} more claims are needed" in verdict

    # the chart is embedded and the page names the localities as text, never as markup
    assert 'src="data:image/svg+xml;base64,' in dom
    assert "<title>Claims against the quota: projection at 2018-06-30</title>" in dom
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt;East" in dom
    assert "<script>" not in dom
