"""What a report says: formatted numbers, the narrative, which figures and tables each kind of results gets."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from simlab.report import build_report, write_report
from simlab.report.document import render_html, render_markdown
from simlab.report.figures_compare import ecdf
from simlab.report.figures_run import marker_times, rollout_window
from simlab.report.figures_sweep import pareto_front
from simlab.report.formatting import count_ci, pct, pct_ci
from tests.helpers.reports import compare_table, png_size, write_compare_dir, write_sweep_dir


def test_probabilities_read_as_percent_with_their_interval():
    assert pct_ci(0.97, 0.91, 0.99) == "97% [91–99%]"
    assert pct_ci(0.5, None, None) == "50%"
    assert pct_ci(float("nan"), 0.1, 0.2) == "-"
    assert [pct(p) for p in (0, 1, 0.025, 0.05, 0.003, 0.0004, 0.999)] == [
        "0%", "100%", "2.5%", "5%", "0.3%", "0.04%", "99.9%"]
    assert pct_ci(0.0, 2.7755575615628914e-17, 0.354) == "0% [0–35%]"  # float noise in a real interval
    assert pct(0.00000005) == "<0.01%"
    assert count_ci(1440.0, 1300.0, 1600.0) == "1,440 [1,300–1,600]"


def test_compare_report_has_the_table_with_intervals_and_a_narrative_from_the_numbers(tmp_path):
    report = build_report(write_compare_dir(tmp_path / "cmp"))
    text = " ".join(p for s in report.sections for p in s.paragraphs)
    assert "canary caught 97% of bad releases within 4.2m on median" in text
    assert "With no release at all, the same seeds serve 50 bad requests per run" in text
    assert ("Bad requests added by a bad release: canary 140 [90–200], rolling 1,120 [980–1,280] and "
            "big_bang 2,780 [2,500–3,100].") in text
    assert ("Added by a good release, the price of deploying it: canary 0.4 [-3–3.8], rolling 0.4 [-3–3.8] and "
            "big_bang 1,440 [1,390–1,490].") in text
    assert "big_bang in 40% [35–46%]" in text  # bad releases promoted
    assert "35.0m to promote with canary against 60.0s with big_bang" in text
    table = next(s.table for s in report.sections if s.table is not None)
    assert [row[0] for row in table.rows] == ["canary", "rolling", "big_bang"]
    canary = dict(zip(table.columns, table.rows[0]))
    assert canary["caught bad release"] == "97% [91–99%]"
    # bad and good releases apart, as the figure (bad releases only) shows them; never their mixed mean
    assert canary["bad requests per bad release"] == "190 [140–250]"
    assert canary["per good release"] == "50 [40–60]" and canary["with no release"] == "50"
    assert canary["added by a bad release"] == "140 [90–200]"
    assert "bad requests, mean" not in table.columns and "bad p95" not in table.columns
    assert canary["detect p50 / p95"] == "4.2m / 8.4m"
    assert [f.name for f in report.figures] == ["bad_requests", "detect_recover"]
    for fig in report.figures:
        width, height = png_size(fig.png)
        assert width > 500 and height > 300


def test_results_written_before_the_split_still_read_with_their_mixed_mean(tmp_path):
    d = write_compare_dir(tmp_path / "cmp")
    old = pd.read_csv(d / "compare.csv")
    old.drop(columns=[c for c in old.columns if c.startswith(("bad_given", "no_release", "added"))]).to_csv(
        d / "compare.csv", index=False)
    runs = pd.read_parquet(d / "runs.parquet")
    runs.drop(columns=["no_release_bad", "added_bad"]).to_parquet(d / "runs.parquet")
    report = build_report(d)
    text = " ".join(p for s in report.sections for p in s.paragraphs)
    assert "big_bang served 12× more bad requests on average than canary" in text
    canary = dict(zip(*(lambda t: (t.columns, t.rows[0]))(next(s.table for s in report.sections if s.table))))
    assert canary["bad requests, mean"] == "120 [95–150]"
    assert [f.name for f in report.figures] == ["bad_requests", "detect_recover"]


def test_when_every_variant_catches_everything_the_narrative_says_so_and_compares_speed():
    from simlab.report.narrative import compare_narrative

    table = compare_table().assign(p_rollback_bad=1.0)
    first = compare_narrative(table, {})[0]
    assert first == "Every variant caught 100% of bad releases; median time to detect ran from 4.2m (canary) to 6.8m (big_bang)."


def test_compare_without_runs_still_reports_the_table(tmp_path):
    d = write_compare_dir(tmp_path / "cmp")
    (d / "runs.parquet").unlink()
    report = build_report(d)
    assert report.figures == []
    assert any(s.heading == "Comparison" for s in report.sections)


def test_compare_of_good_releases_only_says_why_it_draws_no_harm(tmp_path):
    d = write_compare_dir(tmp_path / "cmp")
    runs = pd.read_parquet(d / "runs.parquet").assign(bad_release=False)
    runs.to_parquet(d / "runs.parquet")
    report = build_report(d)
    assert report.figures == []
    assert "No run drew a bad release" in next(s for s in report.sections if s.heading == "Bad releases").paragraphs[0]


def test_sweep_report_draws_the_pareto_front_and_a_heatmap_for_two_parameters(tmp_path):
    report = build_report(write_sweep_dir(tmp_path / "sweep"))
    assert [f.name for f in report.figures] == ["pareto", "heatmap"]
    text = " ".join(p for s in report.sections for p in s.paragraphs)
    assert "6 grid points over strategy.steps[0].bake, analysis.interval, 50 runs each." in text
    assert "3 of them are on the Pareto front" in text
    grid = next(s.table for s in report.sections if s.heading == "Grid")
    assert grid.columns[:3] == ["#", "strategy.steps[0].bake", "analysis.interval"]  # '#': the figure's numbers
    assert grid.rows[0][:3] == ["1", "1m", "30s"]


def test_a_sweep_over_three_parameters_says_why_it_has_no_heatmap(tmp_path):
    report = build_report(write_sweep_dir(tmp_path / "sweep3", three_params=True))
    assert [f.name for f in report.figures] == ["pareto"]
    heat = next(s for s in report.sections if s.heading == "Heatmap")
    assert "3 parameters vary" in heat.paragraphs[0]


def test_pareto_front_keeps_only_points_nothing_beats_on_both_axes():
    table = pd.DataFrame({"deploy_duration_good_mean_s": [60, 300, 310, 900, 1000],
                          "bad_mean": [900, 400, 500, 100, 100]})
    assert list(pareto_front(table).index) == [0, 1, 3]


def test_ecdf_leaves_undetected_runs_below_one():
    x, y = ecdf(np.array([3.0, np.nan, 1.0, 2.0]), total=4)
    assert list(x) == [1.0, 2.0, 3.0] and list(y) == [0.25, 0.5, 0.75]


def test_run_report_from_a_real_simulation(bad_canary_dir):
    report = build_report(bad_canary_dir)
    text = " ".join(p for s in report.sections for p in s.paragraphs)
    assert re.search(r"was detected \S+ after it started \(analysis failed 2 times\) and was rolled back", text)
    assert "2 analyses ran; 2 failed." in text
    assert [f.name for f in report.figures] == ["timeline", "rollout"]
    events = next(s.table for s in report.sections if s.heading == "Events")
    kinds = [row[1] for row in events.rows]
    assert kinds.index("detected") < kinds.index("rollback_finished")
    assert any("status=failed" in row[2] for row in events.rows)


def test_timeline_markers_come_from_the_event_log(bad_canary_dir):
    from simlab.report.sources import load_run

    r = load_run(bad_canary_dir)
    times = marker_times(r.result.events)
    assert len(times["analysis_failed"]) == 2 and len(times["detected"]) == 1
    assert times["rollback_started"][0] <= times["rollback_finished"][0]
    start, end = rollout_window(r.result.timeline, r.result.events)
    assert start == times["release_started"][0] - 60 and end > times["rollback_finished"][0]


def test_html_is_self_contained_and_markdown_points_at_the_written_pngs(tmp_path, bad_canary_dir):
    out = write_report(bad_canary_dir, out_root=tmp_path / "reports", name="bad")
    assert out == tmp_path / "reports" / "bad"
    html = (out / "report.html").read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "url(" not in html and "@import" not in html
    md = (out / "report.md").read_text()
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert pngs == ["timeline.png", "rollout.png"]
    for name in pngs:
        assert png_size((out / name).read_bytes())[0] > 500


def test_rendering_escapes_text_from_results():
    from simlab.report.document import Report, Section, Table

    report = Report("<b>x</b>", "a|b", [Section("s", ["<script>"], Table(["v"], [["a|b"]]))])
    assert "<script>" not in render_html(report).split("</style>")[1]
    assert "a\\|b" in render_markdown(report)
