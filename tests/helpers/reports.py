"""What the report tests share: hand-made results directories, a PNG's size, the headless-Chromium check.

The compare and sweep directories are made by hand in the formats compare/sweep
write, so the report is tested against the documented file formats, not against
whatever the experiment code happens to produce today; tests/test_report_fixtures.py
keeps them honest.

`browser_check` loads a report in a real headless Chromium: a copy of the report
gets a small script that, on load, writes into the DOM how many images there are
and which did not decode; Chromium's --dump-dom gives that back. The report's own
Content-Security-Policy stays in force (only inline script is added to it), so an
image that is not embedded would be blocked and show up as broken. The window is
1280 px wide: the page's width, any element that scrolls sideways, images without
alt text and the sections present are measured as a reader's laptop shows them.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simlab import SUMMARY_KEYS
from simlab.report.document import CSP

VARIANTS = ("canary", "rolling", "big_bang")

COMPARE_ROWS = [
    # variant, p_rollback_bad [lo, hi], p_false_rollback, p_bad_promoted, bad_mean [lo, hi], ttd_p50_s, deploy_good_s
    ("canary", 0.97, 0.91, 0.99, 0.02, 0.0, 120.0, 95.0, 150.0, 252.0, 2100.0),
    ("rolling", 0.88, 0.80, 0.93, 0.0, 0.04, 610.0, 540.0, 690.0, 300.0, 900.0),
    ("big_bang", 0.60, 0.50, 0.69, 0.0, 0.40, 1440.0, 1300.0, 1600.0, 410.0, 60.0),
]


def compare_table() -> pd.DataFrame:
    rows = []
    for v, p, lo, hi, false, promoted, bad, bad_lo, bad_hi, ttd, deploy in COMPARE_ROWS:
        rows.append({
            "variant": v, "runs": 200, "bad_runs": 100, "good_runs": 100,
            "p_rollback_bad": p, "p_rollback_bad_lo": lo, "p_rollback_bad_hi": hi,
            "p_false_rollback": false, "p_false_rollback_lo": 0.0, "p_false_rollback_hi": false + 0.05,
            "p_bad_promoted": promoted, "p_bad_promoted_lo": max(0.0, promoted - 0.05),
            "p_bad_promoted_hi": promoted + 0.06,
            "bad_mean": bad, "bad_mean_lo": bad_lo, "bad_mean_hi": bad_hi, "bad_p95": bad * 2.5,
            "ttd_mean_s": ttd * 1.2, "ttd_p50_s": ttd, "ttd_p95_s": ttd * 2,
            "ttr_mean_s": ttd + 90, "ttr_p95_s": ttd * 2 + 120,
            "deploy_duration_good_mean_s": deploy, "deploy_duration_good_p95_s": deploy * 1.1,
            "error_budget_mean": bad / 1e6, "extra_instance_seconds_mean": 3600.0 if v == "canary" else 0.0,
            # half the runs are bad releases; the same seeds serve 50 bad requests with no release
            "bad_given_bad_mean": 2 * bad - 50, "bad_given_bad_mean_lo": 2 * bad_lo - 50,
            "bad_given_bad_mean_hi": 2 * bad_hi - 50, "bad_given_good_mean": 50.0 + (bad if v == "big_bang" else 0),
            "bad_given_good_mean_lo": 40.0, "bad_given_good_mean_hi": 60.0 + (bad if v == "big_bang" else 0),
            "no_release_bad_mean": 50.0,
            "added_given_bad_mean": 2 * bad - 100, "added_given_bad_mean_lo": 2 * bad_lo - 100,
            "added_given_bad_mean_hi": 2 * bad_hi - 100, "added_given_good_mean": bad if v == "big_bang" else 0.4,
            "added_given_good_mean_lo": bad - 50 if v == "big_bang" else -3.0,
            "added_given_good_mean_hi": bad + 50 if v == "big_bang" else 3.8,
            "added_mean": bad - 50, "added_mean_lo": bad_lo - 50, "added_mean_hi": bad_hi - 50,
        })
    return pd.DataFrame(rows)


def runs_frame(variants=VARIANTS, per_variant: int = 40, params: dict[str, object] | None = None,
               seed: int = 0) -> pd.DataFrame:
    """One row per run: every summary key plus variant, run, run_seed, bad_release and param.* columns."""
    rng = np.random.default_rng(seed)
    scale = {"canary": 120.0, "rolling": 600.0, "big_bang": 1500.0}
    catch = {"canary": 0.97, "rolling": 0.88, "big_bang": 0.6}
    rows = []
    for v in variants:
        for run in range(per_variant):
            bad_release = run % 2 == 0
            caught = bad_release and rng.random() < catch.get(v, 0.9)
            ttd = float(rng.gamma(4.0, 60.0)) if caught else None
            row = {k: None for k in SUMMARY_KEYS}
            row.update({
                "scenario": "fixture", "strategy": v, "engine": "request", "seed": 1000 + run,
                "outcome": "rolled_back" if caught else "promoted",
                "requests": 100_000,
                "bad": int(rng.lognormal(np.log(scale.get(v, 300.0)), 0.6)) if bad_release else int(rng.poisson(3)),
                "detected_at_s": ttd, "rollback_done_at_s": None if ttd is None else ttd + 60.0,
                "deploy_duration_s": None if caught else 600.0,
                "variant": v, "run": run, "run_seed": 1000 + run, "bad_release": bad_release,
            })
            row["no_release_bad"] = float(3 + run % 3)  # the same seed with no release: the same for every variant
            row["added_bad"] = row["bad"] - row["no_release_bad"]
            for name, value in (params or {}).items():
                row[f"param.{name}"] = value
            rows.append(row)
    return pd.DataFrame(rows)


def write_compare_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    compare_table().to_csv(d / "compare.csv", index=False)
    runs_frame().to_parquet(d / "runs.parquet", index=False)
    (d / "meta.json").write_text(json.dumps({"kind": "compare", "scenario": "checkout", "runs": 200, "seed": 7,
                                             "engine": "request"}))
    return d


BAKES = ("1m", "5m", "15m")
INTERVALS = ("30s", "1m")


def sweep_table(params=("strategy.steps[0].bake", "analysis.interval")) -> pd.DataFrame:
    """Slower bakes and shorter intervals: fewer bad requests, longer deploys (with one dominated point)."""
    rows = []
    for i, bake in enumerate(BAKES):
        for j, interval in enumerate(INTERVALS):
            rows.append({
                params[0]: bake, params[1]: interval, "runs": 50, "bad_runs": 25, "good_runs": 25,
                "p_rollback_bad": 0.7 + 0.1 * i - 0.05 * j, "p_rollback_bad_lo": 0.6, "p_rollback_bad_hi": 0.95,
                "p_false_rollback": 0.0, "p_bad_promoted": 0.3 - 0.1 * i,
                "bad_mean": 900.0 / (1 + i) * (1 + 0.5 * j), "bad_mean_lo": 100.0, "bad_mean_hi": 1500.0,
                "bad_p95": 2000.0, "ttd_mean_s": 200.0, "ttd_p50_s": 180.0 + 60 * j, "ttd_p95_s": 400.0,
                "ttr_mean_s": 260.0, "ttr_p95_s": 500.0,
                "deploy_duration_good_mean_s": 300.0 * (1 + 2 * i) + 30 * j,
                "deploy_duration_good_p95_s": 330.0 * (1 + 2 * i), "error_budget_mean": 0.001,
                "extra_instance_seconds_mean": 100.0,
            })
    return pd.DataFrame(rows)


def write_sweep_dir(d: Path, three_params: bool = False) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    names = ["strategy.steps[0].bake", "analysis.interval"]
    table = sweep_table()
    if three_params:
        names.append("analysis.failure_limit")
        table = pd.concat([table.assign(**{names[2]: n}) for n in (1, 2)], ignore_index=True)
        table = table[names + [c for c in table.columns if c not in names]]
    table.to_csv(d / "table.csv", index=False)
    from simlab.report.figures_sweep import pareto_front

    pareto_front(table).to_csv(d / "pareto.csv", index=False)
    runs = pd.concat([runs_frame(("canary",), 6, {names[0]: b, names[1]: iv}, seed=k)
                      for k, (b, iv) in enumerate((b, iv) for b in BAKES for iv in INTERVALS)], ignore_index=True)
    runs.to_parquet(d / "sweep.parquet", index=False)
    (d / "meta.json").write_text(json.dumps({"kind": "sweep", "scenario": "checkout", "params": names, "runs": 50,
                                             "seed": 7, "engine": "request"}))
    return d


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG (fails on anything that is not one)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


# -- headless Chromium ----------------------------------------------------------------

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
    height: document.body.scrollHeight,
    viewport: window.innerWidth,
    pageWidth: document.documentElement.scrollWidth,
    sideways: Array.prototype.slice.call(document.querySelectorAll("body *"))
                .filter(function (e) { return e.scrollWidth > e.clientWidth + 1 &&
                                              /auto|scroll/.test(getComputedStyle(e).overflowX); })
                .map(function (e) { return e.tagName + "." + e.className + " " + e.scrollWidth + ">" + e.clientWidth; }),
    noAlt: imgs.filter(function (i) { return !(i.getAttribute("alt") || "").trim(); }).length,
    sections: Array.prototype.slice.call(document.querySelectorAll("section[id]")).map(function (e) { return e.id; })
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
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000", "--window-size=1280,1000",
        "--dump-dom", page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="simlab-check">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"Chromium did not run the check (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
