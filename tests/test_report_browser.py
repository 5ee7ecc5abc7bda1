"""The HTML report in a real headless Chromium: it renders and every figure loads.

A copy of the report gets a small script that, on load, writes into the DOM
how many images there are and which did not decode; Chromium's --dump-dom
gives that back. The report's own Content-Security-Policy stays in force
(only inline script is added to it), so an image that is not embedded would
be blocked and show up here as broken.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine_scenarios import scenario
from simlab import simulate
from simlab.report import write_report
from simlab.report.document import CSP
from test_report_fixtures import write_compare_dir, write_sweep_dir

INSTALL_HINT = (
    "Chromium is needed for the report browser test: `make system-deps` or "
    "`sudo apt-get install -y chromium` (Debian/Ubuntu)"
)

CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement("pre");
  out.id = "simlab-check";
  out.textContent = JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute("data-figure") || i.src.slice(0, 40); }),
    widths: imgs.map(function (i) { return i.naturalWidth; }),
    title: document.querySelector("h1") && document.querySelector("h1").textContent,
    height: document.body.scrollHeight
  });
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(INSTALL_HINT)


def browser_check(html_path: Path, tmp_path: Path) -> dict:
    """Load a checked copy of the report in headless Chromium; return what the page found."""
    html = html_path.read_text()
    assert CSP in html, "the report lost its Content-Security-Policy"
    checked = html.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", CHECK + "</body>")
    page = html_path.with_name("checked.html")
    page.write_text(checked)
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
        "--dump-dom", page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="simlab-check">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"Chromium did not run the check (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One report of each kind: a real simulated run, a hand-made compare and sweep."""
    root = tmp_path_factory.mktemp("browser")
    run = simulate(scenario("canary", duration="12m", **{"release.defects": [{"kind": "error_rate", "rate": 0.2}]}),
                   seed=2).write(root / "results" / "run")
    dirs = {"run": run, "compare": write_compare_dir(root / "results" / "compare"),
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
