"""Every kind of report in a real headless Chromium at 1280 px: it renders, every figure loads and has alt text,
nothing scrolls sideways, and each report of a choice opens with its decision.

The run is a real simulated rollout; the compare, sweep, analysis-quality and optimize results come from the
library on a tiny world (4 instances at 30 rps for 8 minutes, fluid engine, a few runs each), so each report
is built from what the commands write today. How the page is checked is in tests/helpers/reports.py
(`browser_check`).
"""
from __future__ import annotations

import re
import shutil

import pytest
import yaml

from simlab.report import write_report
from tests.helpers.reports import browser_check
from tests.test_optimize import WORLD as OPTIMIZE_WORLD

# test_optimize's tiny world, with a decide: block of its own
WORLD = {**OPTIMIZE_WORLD, "name": "tiny", "decide": {"max_false_rollback": 0.2, "max_deploy_duration": "5m"}}
KNOBS = {"knobs": {"analysis.failure_limit": {"int": [1, 3]}, "strategy.steps[0].weight": {"choice": [5, 25, 50]}}}
RUNS = 10
KINDS = {  # kind: figures it holds
    "run": 2, "compare": 2, "sweep": 2, "quality": 1, "optimize": 1,
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory, bad_canary_dir):
    """One report of each kind, written as `simlab report` writes it."""
    from simlab.experiment.comparison import compare
    from simlab.experiment.optimization import optimize
    from simlab.experiment.quality import run_quality
    from simlab.experiment.sweeps import sweep

    root = tmp_path_factory.mktemp("browser")
    world = root / "tiny.yaml"
    world.write_text(yaml.safe_dump(WORLD, sort_keys=False))
    (root / "knobs.yaml").write_text(yaml.safe_dump(KNOBS, sort_keys=False))
    common = {"runs": RUNS, "engine": "fluid", "executor": "serial"}
    compare(world, out=root / "compare", **common)
    sweep(world, {"analysis.failure_limit": [1, 2], "strategy.steps[0].bake": ["1m", "2m"]}, out=root / "sweep",
          **common)
    run_quality(world, severities="error_rate=0.01,0.05", **common).write(root / "quality")
    optimize(world, root / "knobs.yaml", trials=4, runs_per_trial=6, fresh_runs=RUNS, engine="fluid",
             executor="serial", out=root / "optimize")
    dirs = {"run": bad_canary_dir, **{kind: root / kind for kind in ("compare", "sweep", "quality", "optimize")}}
    return {kind: write_report(d, out_root=root / "reports", name=kind) / "report.html" for kind, d in dirs.items()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_report_renders_at_1280px_without_sideways_scroll(reports, kind, tmp_path):
    found = browser_check(reports[kind], tmp_path)
    assert found["title"].startswith(f"simlab {'analysis-quality' if kind == 'quality' else kind}")
    assert found["images"] == KINDS[kind] and found["broken"] == []
    assert all(w >= 500 for w in found["widths"]), found["widths"]
    assert found["noAlt"] == 0
    assert found["viewport"] <= 1280 and found["pageWidth"] <= found["viewport"], found
    assert found["sideways"] == [], found["sideways"]
    if kind != "run":  # every report of a choice: the scenario, then the decision, before the evidence
        assert found["sections"][:2] == ["scenario", "decision"], found["sections"]
        assert "— which " in found["title"]


def test_the_check_catches_a_figure_that_is_not_embedded(reports, tmp_path):
    """Guards the guard: a figure loaded by reference is blocked by the CSP and reported broken."""
    page = tmp_path / "report.html"
    html = reports["compare"].read_text()
    shutil.copy(reports["compare"].with_name("bad_requests.png"), tmp_path / "bad_requests.png")
    page.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src="bad_requests.png"', html, count=1))
    found = browser_check(page, tmp_path)
    assert found["images"] == 2 and len(found["broken"]) == 1


def test_the_check_catches_a_table_that_scrolls_sideways_and_a_figure_without_alt(reports, tmp_path):
    """Guards the guard: the report's own CSS let a 40-column table wrap no more, and one figure lose its alt."""
    page = tmp_path / "report.html"
    html = reports["sweep"].read_text()
    wide = "<div class=\"scroll\"><table><tr>" + "<td><span>1,234,567 [1,000,000–1,500,000]</span></td>" * 40 + \
           "</tr></table></div>"
    html = html.replace("</body>", wide + "</body>", 1)
    page.write_text(re.sub(r'alt="[^"]*"', 'alt=""', html, count=1))
    found = browser_check(page, tmp_path)
    assert found["noAlt"] == 1 and len(found["sideways"]) == 1
