"""analysis-quality: false rollbacks against an exact computation, detection rising with severity, false rollbacks
falling as the threshold rises, the command and its report.

The world of the exact test: a blue-green release switched at T (all traffic to the new version), analysed every
minute on one-minute windows while the old fleet is kept 10 minutes; a dependency fails 0.8% of every request the
whole run, the release itself is good. Each window's requests are Poisson (20 rps x its seconds of new-version
traffic) and its errors binomial given them, windows are disjoint, so they are independent. The first window
reaches back before T (visible_until(T + 60) - 60 < T: at most 30 s of new traffic, 600 requests expected) and
is inconclusive below min_requests 1100; the other nine are full 60 s windows.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from simlab.experiment.quality import parse_severities, run_quality, verdicts
from simlab.linter import noise
from simlab.errors import ScenarioError
from simlab.scenario import validate_scenario

RPS, BACKGROUND, LIMIT, MIN_REQUESTS = 20, 0.008, 0.01, 1100
WORLD = {
    "name": "background-errors", "duration": "14m", "fleet": {"instances": 4, "service_time": "20ms"},
    "traffic": {"rps": RPS}, "release": {"at": "1m"},
    "strategy": {"kind": "blue_green", "warmup": 0, "keep_old": "10m"},
    "analysis": {"interval": "1m", "failure_limit": 2, "min_requests": MIN_REQUESTS,
                 "metrics": [{"metric": "error_rate", "max": LIMIT}]},
    "failures": [{"kind": "dependency", "at": 0, "duration": "14m", "error_rate": BACKGROUND}],
}


def window_failure(seconds: float) -> float:
    """P(a window fails): N ~ Poisson(rate x seconds) requests, X ~ Bin(N, p) errors, failed iff
    N >= min_requests and X / N > limit; the linter's computation (simlab.linter.noise), which the hand-checked
    cases below hold to its definition."""
    return noise.window_failure(RPS * seconds, BACKGROUND, LIMIT, MIN_REQUESTS)


rollback_probability = noise.rollback_probability


def test_the_exact_computation_on_hand_checked_cases():
    assert rollback_probability([0.5, 0.5], 2, "cumulative") == pytest.approx(0.25)
    assert rollback_probability([0.5] * 3, 2, "cumulative") == pytest.approx(0.5)  # 1 - 1/8 - 3/8
    assert rollback_probability([0.5] * 3, 2, "consecutive") == pytest.approx(0.375)  # FF?, ?FF: 2/8 + 1/8
    assert noise.window_failure(1200, 0.0, LIMIT, MIN_REQUESTS) == 0.0 and window_failure(30) == pytest.approx(0.0, abs=1e-12)
    # a window of exactly 1100 requests: binomial tail above 11 errors
    assert window_failure(55) > binom.sf(11, 1100, BACKGROUND) * 0.3


@pytest.fixture(scope="module")
def background():
    """320 runs of the good release, cumulative and consecutive counting (about 20 s)."""
    variants = [{"name": counting, "set": {"analysis.failure_counting": counting}}
                for counting in ("cumulative", "consecutive")]
    return run_quality(validate_scenario(WORLD), variants=variants, severities=[], runs=320, engine="fluid",
                       executor="serial")


@pytest.mark.parametrize("counting", ["cumulative", "consecutive"])
def test_false_rollbacks_of_a_threshold_match_the_exact_binomial_computation(background, counting):
    runs = background.runs[background.runs["variant"] == counting]
    switched = 60.0 + runs["deploy_duration_s"]  # blue-green is promoted at the switch
    assert switched.between(61, 120).all()
    q = [window_failure(60.0)] * 9  # measurements 2..10 after the switch; the first is inconclusive
    exact = rollback_probability(q, 2, counting)
    row = background.table.set_index("variant").loc[counting]
    assert row["runs"] == 320
    assert row["p_rollback_lo"] <= exact <= row["p_rollback_hi"], (counting, exact, row["p_rollback"])
    assert 0.2 < exact < 0.8  # a rate the test can tell apart from its neighbours, not a trivial 0 or 1
    first = runs["analysis_inconclusive"]
    assert (first >= 1).all()  # the partial first window, in every run


def test_false_rollbacks_fall_as_the_threshold_rises_and_detection_rises_with_severity():
    """Rates over a small grid, same seeds for every variant and release (the fluid engine's lockstep batches
    share one data-plane stream, so two variants' runs agree draw for draw only until one of the batch acts
    differently: the property is on the rates, not run by run)."""
    limits = (0.008, 0.01, 0.012, 0.015)
    variants = [{"name": f"max {m}", "set": {"analysis.metrics": [{"metric": "error_rate", "max": m}]}} for m in limits]
    q = run_quality(validate_scenario(WORLD), variants=variants, severities="error_rate=0.002,0.005,0.02", runs=64,
                    engine="fluid", executor="serial")
    table = q.table.set_index(["variant", "release"])["p_rollback"]
    good = [table[(f"max {m}", "good")] for m in limits]
    assert good[0] > good[-1] and good == sorted(good, reverse=True)
    for m in limits:
        detection = [table[(f"max {m}", r)] for r in ("error_rate=0.002", "error_rate=0.005", "error_rate=0.02")]
        assert detection == sorted(detection), (m, detection)
    assert table[("max 0.015", "error_rate=0.02")] > table[("max 0.015", "error_rate=0.002")] + 0.5
    assert set(q.table["defect"]) == {"none", "error_rate"}
    assert (q.table.loc[q.table["release"] == "good", "added_bad_mean"].abs() < 50).all()


# -- the grid, verdicts, the command --------------------------------------------------------------------------

def test_severities_read_as_written_and_bad_ones_name_themselves():
    grid = parse_severities(["error_rate=0.002,0.01", "latency=+10ms,+200ms"])
    assert [(s.kind, s.value, s.label) for s in grid] == [
        ("error_rate", 0.002, "error_rate=0.002"), ("error_rate", 0.01, "error_rate=0.01"),
        ("latency", 0.01, "latency=+10ms"), ("latency", 0.2, "latency=+200ms")]
    assert parse_severities("latency=x1.5")[0].defect == {"kind": "latency", "multiplier": 1.5}
    assert parse_severities("crash=5m")[0].defect == {"kind": "crash", "mtbf": 300.0}
    for bad, words in [("error_rate=2", "at most 1, found '2'"), ("oops=1", "KIND one of"),
                       ("latency=10ms", "added latency (+50ms)"), ("latency=+10ms,x2", "one form"),
                       ("error_rate=0.1,0.1", "once")]:
        with pytest.raises(ScenarioError, match=words.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
            parse_severities(bad)


def test_a_scenario_without_a_release_has_nothing_to_judge():
    with pytest.raises(ScenarioError, match="expected a `release:`"):
        run_quality(validate_scenario({**WORLD, "release": None}), runs=1)


def test_verdicts_name_the_mildest_severity_caught_and_the_target():
    rows = [("a", "good", "none", math.nan, 0.02, 0.0, 0.07), ("a", "error_rate=0.002", "error_rate", 0.002, 0.5, 0.4, 0.6),
            ("a", "error_rate=0.01", "error_rate", 0.01, 0.97, 0.9, 0.99), ("a", "error_rate=0.05", "error_rate", 0.05, 1.0, 0.95, 1.0),
            ("b", "good", "none", math.nan, 0.3, 0.2, 0.4), ("b", "error_rate=0.002", "error_rate", 0.002, 0.96, 0.9, 0.99),
            ("b", "error_rate=0.01", "error_rate", 0.01, 0.9, 0.8, 0.95), ("b", "error_rate=0.05", "error_rate", 0.05, 1.0, 0.95, 1.0)]
    table = pd.DataFrame(rows, columns=["variant", "release", "defect", "severity", "p_rollback", "p_rollback_lo",
                                        "p_rollback_hi"])
    a, b = verdicts(table, 0.05, 0.95, catch="error_rate=0.01")
    assert a["catches"]["error_rate"]["from"] == "error_rate=0.01" and a["meets"]
    # b catches 0.2% but misses 1%: the grid above its mildest catch must hold all the way up
    assert b["catches"]["error_rate"]["from"] == "error_rate=0.05" and not b["false_rollback_ok"] and not b["meets"]


def test_the_command_prints_the_table_and_the_verdict_and_writes_a_report(tmp_path, capsys):
    from simlab.cli.main import main

    scenario = tmp_path / "world.yaml"
    scenario.write_text(json.dumps(WORLD))
    out = tmp_path / "quality"
    code = main(["analysis-quality", str(scenario), "--severity", "error_rate=0.05", "--runs", "8",
                 "--executor", "serial", "--out", str(out), "--report", "--catch", "error_rate=0.05", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "error_rate=0.05" in printed and "Target (false rollbacks ≤ 5% and catches error_rate=0.05" in printed
    assert {p.name for p in out.iterdir()} >= {"quality.csv", "runs.parquet", "meta.json", "report.html", "report.md",
                                              "quality.png"}
    report = (out / "report.md").read_text()
    assert "rolls back" in report and "false rollback" in report and "![" in report
    assert main(["report", str(out), "--out-root", str(tmp_path / "again")]) == 0  # `simlab report` knows the kind
    assert (tmp_path / "again" / "quality" / "report.html").is_file()
    capsys.readouterr()

    code = main(["analysis-quality", str(scenario), "--severity", "error_rate=0.05", "--runs", "4", "--executor",
                 "serial", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["release"] for r in data["table"]] == ["good", "error_rate=0.05"]
    assert data["verdicts"][0]["variant"] == "scenario"


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    from simlab.cli.main import main

    scenario = tmp_path / "world.yaml"
    scenario.write_text(json.dumps(WORLD))
    assert main(["analysis-quality", str(scenario), "--severity", "error_rate=abc", "--runs", "2"]) == 2
    assert "--severity error_rate: expected" in capsys.readouterr().err
    assert main(["analysis-quality", str(scenario), "--catch", "error_rate=0.3", "--runs", "2"]) == 2
    assert "--catch: expected one of the severities" in capsys.readouterr().err


def test_the_benchmark_runs_its_grid_at_a_few_runs(capsys):
    """benchmarks/analysis_quality.py as the README runs it, with 4 runs instead of 200 (about 3 s)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "analysis_quality.py"
    spec = importlib.util.spec_from_file_location("analysis_quality_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--runs", "4", "--executor", "serial"])
    assert out["simulated_runs"] == 3 * 7 * 4 + 4
    assert {"threshold-1%", "threshold-2%x3", "mann-whitney"} <= set(out)
    assert json.loads(capsys.readouterr().out)["wall_s"] == out["wall_s"]
