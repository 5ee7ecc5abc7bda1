"""The HTML report in a real headless Chromium: it renders and every figure loads.

How the page is checked is in tests/helpers/reports.py (`browser_check`).
"""
from __future__ import annotations

import re
import shutil

import pytest

from simlab.report import write_report
from tests.helpers.reports import browser_check, write_compare_dir, write_sweep_dir

@pytest.fixture(scope="module")
def reports(tmp_path_factory, bad_canary_dir):
    """One report of each kind: a real simulated run, a hand-made compare and sweep."""
    root = tmp_path_factory.mktemp("browser")
    dirs = {"run": bad_canary_dir, "compare": write_compare_dir(root / "results" / "compare"),
            "sweep": write_sweep_dir(root / "results" / "sweep")}
    return {kind: write_report(d, out_root=root / "reports") / "report.html" for kind, d in dirs.items()}


@pytest.mark.parametrize("kind,figures", [("run", 2), ("compare", 2), ("sweep", 2)])
def test_report_renders_in_chromium_and_every_figure_loads(reports, kind, figures, tmp_path):
    found = browser_check(reports[kind], tmp_path)
    assert found["title"].startswith(f"simlab {kind}")
    assert found["images"] == figures
    assert found["broken"] == []
    assert all(w >= 500 for w in found["widths"]), found["widths"]
    assert found["height"] > 1000


def test_the_check_catches_a_figure_that_is_not_embedded(reports, tmp_path):
    """Guards the guard: a figure loaded by reference is blocked by the CSP and reported broken."""
    page = tmp_path / "report.html"
    html = reports["compare"].read_text()
    shutil.copy(reports["compare"].with_name("bad_requests.png"), tmp_path / "bad_requests.png")
    page.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src="bad_requests.png"', html, count=1))
    found = browser_check(page, tmp_path)
    assert found["images"] == 2 and len(found["broken"]) == 1
