"""The decision a compare, sweep, analysis-quality or optimize report opens with (issue 16): who qualifies under
the scenario's `decide:` limits, who is recommended and why each other is out, with claims only where the paired
95% interval over the common seeds makes them; and the sweep's figure draws every grid point honestly.

The sweeps here are made from runs whose truth is set by hand (each point's mean harm, its false rollbacks),
with a term every point shares run by run, as common random numbers give; the report is built from them
exactly as `simlab report` builds it from a sweep's directory. The compare is the README's demo, committed
in reports/examples/demo (tests/test_examples.py keeps it fresh).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.text import Annotation

from simlab import SUMMARY_KEYS
from simlab.experiment.aggregate import Z95, pareto, table as aggregate_table
from simlab.experiment.decision import Z80, decide
from simlab.report import build_report
from simlab.report.decision import decision_section, phrase
from simlab.report.document import render_html
from simlab.report.formatting import count
from simlab.report.figures_sweep import draw_tradeoff, points_from_decision
from simlab.scenario.decide import OBJECTIVES, Decide

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ["strategy.steps[0].bake", "analysis.interval"]
GRID = [(bake, interval) for bake in ("1m", "5m", "15m") for interval in ("30s", "1m")]
REMAINING = 3000.0  # seconds from the release to the end of a run


def sweep_runs(harm: list[float], noise: float, runs: int = 30, false_rollbacks: dict[int, int] | None = None,
               seed: int = 0) -> pd.DataFrame:
    """Runs of the six grid points: point k adds harm[k] bad requests on average; run i adds a term every point
    shares (the seed's traffic) and each point its own noise; every third run's release is bad. Point k rolls
    back its first false_rollbacks[k] good releases; the others promote in (10 + 3k) minutes."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 30, runs)
    rows = []
    for k, (bake, interval) in enumerate(GRID):
        good_seen = 0
        for i in range(runs):
            bad_release = i % 3 == 0
            rolled = bad_release or (good_seen < (false_rollbacks or {}).get(k, 0))
            good_seen += not bad_release
            added = harm[k] + shared[i] + rng.normal(0, noise)
            row = {key: None for key in SUMMARY_KEYS}
            row.update({
                PARAMS[0]: bake, PARAMS[1]: interval, "run": i, "run_seed": 100 + i, "bad_release": bad_release,
                "outcome": "rolled_back" if rolled else "promoted", "bad": added + 60.0, "no_release_bad": 60.0,
                "added_bad": added, "detected_at_s": 120.0 if rolled else None,
                "rollback_done_at_s": 180.0 if rolled else None,
                "deploy_duration_s": None if rolled else 60.0 * (10 + 3 * k) + rng.normal(0, 5),
                "error_budget_used": 0.001, "extra_instance_seconds": 100.0,
                "rollback_cause": ("error_rate" if rolled else None),
            })
            rows.append(row)
    return pd.DataFrame(rows)


def write_sweep(d: Path, runs: pd.DataFrame, spec: Decide | None = None) -> tuple[Path, dict]:
    """A sweep's results directory as `simlab sweep --out` writes it, its decision included."""
    d.mkdir(parents=True, exist_ok=True)
    table = aggregate_table(runs, PARAMS)
    decision = decide(runs, PARAMS, spec, REMAINING, np.random.default_rng(0), int(runs["run"].nunique()))
    table.to_csv(d / "table.csv", index=False)
    pareto(table).to_csv(d / "pareto.csv", index=False)
    runs.to_parquet(d / "sweep.parquet", index=False)
    meta = {"kind": "sweep", "scenario": "checkout", "params": PARAMS, "runs": int(runs["run"].nunique()), "seed": 0,
            "engine": "fluid", "synopsis": ["checkout: a hand-made sweep."], "decision": decision}
    (d / "meta.json").write_text(json.dumps(meta))
    return d, decision


def text_of(report) -> str:
    return " ".join([report.title] + [p for s in report.sections for p in s.paragraphs]
                    + [" ".join(row) for s in report.sections if s.table for row in s.table.rows])


def section(report, heading: str):
    return next(s for s in report.sections if s.heading == heading)


def test_the_decide_objectives_are_the_metrics_optimize_knows():
    from simlab.experiment.objectives import METRICS

    assert OBJECTIVES == tuple(METRICS)


def test_a_sweep_whose_leaders_overlap_is_indistinguishable_and_names_no_winner(tmp_path):
    # the case: 62.8 against 64.7 bad requests, intervals overlapping; the rest clearly worse
    runs = sweep_runs([62.8, 64.7, 140, 150, 160, 170], noise=15)
    d, decision = write_sweep(tmp_path / "overlap", runs)
    assert decision["status"] == "indistinguishable" and decision["recommended"] is None
    assert sorted(decision["tied"]) == [0, 1]
    report = build_report(d)
    verdict = " ".join(section(report, "Decision").paragraphs)
    assert "No single recommendation: #1 (bake=1m, interval=30s) and #2 (bake=1m, interval=1m) are indistinguishable " \
           "at 30 runs" in verdict
    assert "Recommended" not in verdict and "indistinguishable at 30 runs" in report.title
    # the runs that would separate them: ((z.975 + z.8) sd / |difference|)² from the observed paired differences
    a, b = (runs[(runs[PARAMS[0]] == "1m") & (runs[PARAMS[1]] == iv)]["added_bad"].to_numpy() for iv in ("30s", "1m"))
    need = math.ceil(((Z95 + Z80) * np.std(b - a, ddof=1) / abs(np.mean(b - a))) ** 2)
    other = next(i for i in decision["tied"] if i != decision["best"])
    assert decision["variants"][other]["runs_to_separate"] == need
    assert f"about {need:,} runs each ({need - 30:,} more) would separate a difference this size" in verdict
    words = text_of(report).lower()
    assert not any(claim in words for claim in ("safest", "fastest", "better")), words


def test_a_clear_winner_is_named_with_its_margin(tmp_path):
    runs = sweep_runs([20, 60, 140, 150, 160, 170], noise=5)
    d, decision = write_sweep(tmp_path / "clear", runs)
    assert decision["status"] == "recommended" and decision["recommended"] == 0
    diff = decision["variants"][1]["vs_best"]  # #2 − #1, paired
    assert 30 < diff[1] < diff[0] < diff[2] < 50
    report = build_report(d)
    verdict = " ".join(section(report, "Decision").paragraphs)
    assert (f"Recommended: #1 (bake=1m, interval=30s), with {round(20 + 0.0):d}" in verdict
            or "Recommended: #1 (bake=1m, interval=30s), with " in verdict)
    lo, hi = sorted([abs(diff[1]), abs(diff[2])])
    assert (f"{diff[0]:.1f} [{lo:.1f}–{hi:.1f}] fewer than #2 (bake=1m, interval=1m), the next within the limits "
            f"(paired 95% interval over the same 30 seeds)") in verdict
    assert report.title.endswith("— which setting? #1 (bake=1m, interval=30s), the lowest bad requests added per "
                                 "deploy within the limits")


def test_an_excluded_grid_point_is_drawn_and_labelled_not_dropped(tmp_path):
    # #3 (bake=5m, interval=30s) would be the least harmful, but it rolls back every good release
    runs = sweep_runs([40, 60, 10, 150, 160, 170], noise=5, false_rollbacks={2: 20})
    d, decision = write_sweep(tmp_path / "excluded", runs)
    out = decision["variants"][2]
    assert not out["qualifies"] and out["metrics"]["false_rollback"][0] == 1.0
    report = build_report(d)
    rows = {row[0]: row for row in section(report, "Decision").table.rows}
    assert rows["#3 (bake=5m, interval=30s)"][2].startswith("Out: rolled back all 20 good releases (100% [")
    assert "no good release ever ships" in rows["#3 (bake=5m, interval=30s)"][2]
    grid = section(report, "Grid").table
    assert [row[0] for row in grid.rows] == ["1", "2", "3", "4", "5", "6"]
    assert grid.rows[2][-1] == "out: 100% false rollbacks" and grid.rows[0][-1] == "recommended"
    figure = section(report, "Trade-off").figures[0]
    assert f"point 3 at 50.0m and {count(out['metrics']['bad_requests_added'][0])}, out: 100% false rollbacks" \
        in figure.alt
    # the figure itself: six points drawn, the third hollow at the run's end, labelled with its reason
    points = points_from_decision(decision)
    fig = draw_tradeoff(points, "bad requests added per deploy")
    ax = fig.axes[0]
    scatters = {c.get_label(): c for c in ax.collections if isinstance(c, PathCollection)}
    assert sum(len(c.get_offsets()) for c in scatters.values()) == 6
    hollow = scatters["out (why, beside it)"]
    assert np.allclose(hollow.get_offsets(), [[50.0, points[2].y]]) and np.allclose(hollow.get_facecolors()[0], 1)
    labels = {a.get_text(): a for a in ax.texts if isinstance(a, Annotation)}
    assert set(labels) == {"1", "2", "3: 100% false rollbacks", "4", "5", "6"}
    # axes fitted to the points (not from 0), and no label covers a point other than its own
    low, high = min(p.y_lo for p in points), max(p.y_hi for p in points)
    assert ax.get_xlim()[0] > 5 and low - 0.1 * (high - low) < ax.get_ylim()[0] < low
    renderer = fig.canvas.get_renderer()
    centres = ax.transData.transform([[p.x / 60.0, p.y] for p in points])
    for k, p in enumerate(points):
        box = labels[p.label].get_window_extent(renderer)
        hidden = [j + 1 for j, (x, y) in enumerate(centres) if j != k and box.x0 - 5 < x < box.x1 + 5
                  and box.y0 - 5 < y < box.y1 + 5]
        assert hidden == [], f"label {p.label!r} covers point(s) {hidden}"


def test_the_demo_compare_report_recommends_a_policy_and_says_why_blue_green_is_out():
    report = build_report(ROOT / "reports" / "examples" / "demo")
    decision = json.loads((ROOT / "reports" / "examples" / "demo" / "meta.json").read_text())["decision"]
    assert decision["status"] == "recommended"
    chosen = decision["variants"][decision["recommended"]]["label"]
    assert report.title.startswith(f"simlab compare: checkout-canary — which rollout policy? {chosen}")
    assert [s.heading for s in report.sections[:3]] == ["Scenario", "Decision", "Findings"]
    decision_text = section(report, "Decision")
    assert f"Recommended: {chosen}, with " in " ".join(decision_text.paragraphs)
    why = {row[0]: row[2] for row in decision_text.table.rows}
    assert set(why) == {"big_bang", "rolling", "blue_green", "canary"} - {chosen}
    good = int((pd.read_parquet(ROOT / "reports/examples/demo/runs.parquet").query("variant == 'blue_green'")
                ["bad_release"] == False).sum())  # noqa: E712
    assert why["blue_green"].startswith(f"Out: rolled back all {good} good releases (100% [")
    assert "limit 5%" in why["blue_green"] and "no good release ever ships" in why["blue_green"]
    # what made each false rollback's metric cross, counted as rollback_trigger has it in the runs
    runs = pd.read_parquet(ROOT / "reports/examples/demo/runs.parquet")
    false = runs[(runs["variant"] == "blue_green") & ~runs["bad_release"] & (runs["outcome"] == "rolled_back")]
    failure = int((false["rollback_trigger"] == "failure").sum())
    assert failure > 0 and f"during a scheduled failure {failure}" in why["blue_green"]


def test_without_a_decide_block_the_defaults_apply_and_the_report_says_so(tmp_path):
    runs = sweep_runs([20, 60, 140, 150, 160, 170], noise=5)
    _, default = write_sweep(tmp_path / "default", runs)
    assert default["spec"]["source"] == "defaults" and default["spec"]["max_false_rollback"] == 0.05
    tight, decided = write_sweep(tmp_path / "tight", runs, Decide(max_deploy_duration=660.0))
    assert decided["status"] == "recommended" and decided["spec"]["source"] == "scenario"
    report = build_report(tight)
    verdict = " ".join(section(report, "Decision").paragraphs)
    assert "Limits (the scenario's decide: block): good releases rolled back at most 5%; mean deploy time of a good " \
           "release at most 11.0m." in verdict
    # #1 promotes in 10 minutes, every other point in 13 or more: only #1 keeps the limit
    assert "Within the limits: #1 (bake=1m, interval=30s) (1 of 6)." in verdict
    assert [f["metric"] for f in decided["variants"][1]["fails"]] == ["deploy_duration_mean"]


def test_a_wide_table_is_split_for_the_page_with_its_row_names_repeated(tmp_path):
    runs = sweep_runs([20, 60, 140, 150, 160, 170], noise=5)
    d, _ = write_sweep(tmp_path / "wide", runs)
    html = render_html(build_report(d))
    grid = html.split('<section id="grid">')[1].split("</section>")[0]
    tables = grid.count("<table")
    assert tables >= 2
    assert grid.count("<th>#</th>") == tables and grid.count("<th>strategy.steps[0].bake</th>") == tables


@pytest.mark.parametrize("objective", ["false_rollback", "deploy_duration_p50"])
def test_any_objective_decides_and_reads(tmp_path, objective):
    runs = sweep_runs([20, 60, 140, 150, 160, 170], noise=5, false_rollbacks={0: 1, 1: 0})
    _, decision = write_sweep(tmp_path / objective, runs, Decide(objective=objective, max_false_rollback=0.5))
    assert decision["objective"] == objective and decision["status"] in ("recommended", "indistinguishable")
    said = decision_section(decision, lambda i: f"#{i + 1}")
    assert f"Objective: the lowest {phrase(objective)}" in said.paragraphs[0]
    assert len(said.table.rows) == len(GRID) - (decision["recommended"] is not None)  # every other one, a sentence


def test_the_readme_quotes_the_demo_reports_decision_as_written():
    readme = (ROOT / "README.md").read_text()
    report = (ROOT / "reports" / "examples" / "demo" / "report.md").read_text()
    decision = report[report.index("## Decision\n") + len("## Decision\n"):report.index("\n## Findings")].strip("\n")
    start = readme.index("## What `make demo` shows")
    quoted = [line[2:] if line.startswith("> ") else "" for line in readme[start:].splitlines()
              if line.startswith(">")]
    assert "\n".join(quoted) == decision, "README's demo section quotes another decision: run `make examples`"
    title = " ".join(readme[start:].split("in its title (`", 1)[1].split("`)", 1)[0].split())
    assert report.splitlines()[0] == f"# {title}"


def test_results_written_before_decisions_say_how_to_get_one(tmp_path):
    from tests.helpers.reports import write_compare_dir

    report = build_report(write_compare_dir(tmp_path / "old"))
    assert [s.heading for s in report.sections[:2]] == ["Scenario", "Decision"]
    assert "run the experiment again with --out" in section(report, "Decision").paragraphs[0]
    assert report.title.endswith("which rollout policy? no decision recorded")


def test_the_demo_decision_is_the_one_the_code_makes_today():
    """meta.json keeps the decision made when the compare ran; it must be today's rule on the committed runs."""
    from simlab.experiment.objectives import remaining
    from simlab.scenario import load_scenario

    demo = ROOT / "reports" / "examples" / "demo"
    meta = json.loads((demo / "meta.json").read_text())
    scenario = load_scenario(ROOT / "experiments" / "checkout-canary.yaml")
    today = decide(pd.read_parquet(demo / "runs.parquet"), ["variant"], scenario.decide, remaining(scenario),
                   np.random.default_rng(meta["seed"]), meta["runs"])
    assert json.loads(json.dumps(today)) == meta["decision"], "the demo's decision is stale: run `make examples`"
