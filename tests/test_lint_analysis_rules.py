"""simlab lint's analysis rules: `short-sub-windows` (the mann_whitney judge's sub-windows against the scrape
interval) and `unread-baseline` (a canary baseline no analysis compares with). Each fires on a scenario with the
problem and names the field and the numbers, the fix it proposes clears it, and what it says about the
simulators and the baseline's cost holds on the engines. About 2 s."""
from __future__ import annotations

import json

import pytest

from simlab.cli import main
from simlab.linter import lint
from simlab.linter.samples import fixes, lengths
from simlab.scenario import validate_scenario
from simlab.simulation import simulate
from tests.test_lint import BASE, merged

MW = {"analysis": {"judge": {"kind": "mann_whitney", "samples": 4}, "metrics": [{"metric": "error_rate"}]},
      "monitoring": {"scrape_interval": "3s", "window": "8s", "delay": "1s"}}
QUERY = {"metric": "lb_errors", "sim_metric": "error_rate",
         "query": 'sum(rate(errors_total{version="{{version}}"}[{{window}}])) / sum(rate(requests_total{version="{{version}}"}[{{window}}]))'}


def found(rule: str, **over):
    return [f for f in lint(validate_scenario(merged(BASE, over))) if f.id == rule]


# -- short-sub-windows ---------------------------------------------------------------------------------

def test_sub_windows_under_one_scrape_are_an_error_with_the_numbers_and_the_smallest_fixes():
    (f,) = found("short-sub-windows", **MW)
    assert (f.severity, f.field) == ("error", "analysis.judge.samples")
    for words in ("4 sub-windows of monitoring.window 8s are 2s long, under one scrape_interval 3s",
                  "about 2.7 of 4 hold one, fewer than the 3 a side the judge needs",
                  "the deploy's preflight refuses it", "the simulators count every second and rank all 4",
                  "Smallest fix: monitoring.window 24s (bakes then at least scrape + window + delay = 28s) or "
                  "monitoring.scrape_interval 1s"):
        assert words in f.reason, f.reason
    assert "samples 3" not in f.reason  # 3 sub-windows of 8s are 2-3s: fewer samples cannot do it
    assert f.data["fix_samples"] is None and f.data["fix_window_s"] == 24 and f.data["fix_scrape_interval_s"] == 1


@pytest.mark.parametrize("fix", [{"monitoring": {"window": "24s"}}, {"monitoring": {"scrape_interval": "1s"}}])
def test_the_proposed_fixes_clear_it(fix):
    assert found("short-sub-windows", **merged(MW, fix)) == []


def test_between_one_and_two_scrapes_a_warning_naming_the_query_metrics():
    over = merged(MW, {"monitoring": {"scrape_interval": "1.5s"}, "analysis": {"metrics": [{"metric": "error_rate"},
                                                                                           QUERY]}})
    (f,) = found("short-sub-windows", **over)
    assert f.severity == "warning" and f.field == "analysis.judge.samples"
    assert "are 2s long, under two scrape_intervals (2 x 1.5s = 3s)" in f.reason
    assert "analysis.metrics[1] (lb_errors): a query's rate() or increase() over {{window}}" in f.reason
    assert "monitoring.window 12s" in f.reason and "monitoring.scrape_interval 1s" in f.reason
    assert f.data["query_metrics"] == ["analysis.metrics[1] (lb_errors)"]
    # the built-in metrics read the counters' growth between a sub-window's edges: one scrape in it is enough
    assert found("short-sub-windows", **merged(MW, {"monitoring": {"scrape_interval": "1.5s"}})) == []


def test_fewer_samples_is_proposed_when_it_works_and_clears_it():
    over = merged(MW, {"analysis": {"judge": {"samples": 5}, "metrics": [{"metric": "error_rate"}, QUERY]},
                       "monitoring": {"scrape_interval": "2s", "window": "12s"}})
    (f,) = found("short-sub-windows", **over)
    assert f.severity == "warning" and "Smallest fix: samples 3 or monitoring.window 20s" in f.reason, f.reason
    assert found("short-sub-windows", **merged(over, {"analysis": {"judge": {"samples": 3}}})) == []


def test_zero_second_sub_windows_are_empty_in_the_simulators_too():
    (f,) = found("short-sub-windows", **merged(MW, {"analysis": {"judge": {"samples": 12}},
                                                    "monitoring": {"scrape_interval": "1s"}}))
    assert f.severity == "error" and "as short as 0s" in f.reason
    assert "4 of them are 0s long and empty in the simulators too" in f.reason and "Smallest fix: samples 4" in f.reason


@pytest.mark.parametrize("window,samples,scrape", [(8, 4, 3), (60, 4, 15), (60, 6, 15), (12, 5, 2), (10, 7, 0.5),
                                                   (30, 12, 1), (9.5, 4, 1.25), (100, 3, 20)])
def test_each_fix_is_the_smallest_that_gives_two_scrapes_per_sub_window(window, samples, scrape):
    fewer, longer, faster = fixes(window, samples, scrape)
    need = 2 * scrape
    assert min(lengths(longer, samples)) >= need and min(lengths(window, samples)) >= 2 * faster
    assert min(lengths(max(longer - 1, window), samples)) < need or longer == window
    if fewer is None:
        assert all(min(lengths(window, k)) < need for k in range(3, samples))
    else:
        assert min(lengths(window, fewer)) >= need and all(min(lengths(window, k)) < need
                                                             for k in range(fewer + 1, samples))


@pytest.mark.parametrize("over", [
    {"monitoring": {"scrape_interval": "1s"}},  # 2s sub-windows, two scrapes each
    {"analysis": {"judge": {"kind": "threshold"}, "metrics": [{"metric": "error_rate", "max": 0.02}]}},
    {"strategy": {"analysis": False}},
])
def test_quiet_with_two_scrapes_per_sub_window_or_no_judge_that_cuts_them(over):
    assert found("short-sub-windows", **merged(MW, over)) == []


@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_the_simulators_rank_every_sub_window_under_one_scrape(engine):
    """What the error says of the simulators: 2 s sub-windows under a 3 s scrape all have values there, so a
    good canary's measurements are judged (never nodata) once the canary serves."""
    s = validate_scenario({
        "name": "thin", "duration": "2m", "traffic": {"rps": 100}, "release": {"at": "10s"},
        "fleet": {"instances": 4, "service_time": "20ms", "startup": "5s"},
        "strategy": {"kind": "canary", "steps": [{"weight": 50, "bake": "1m"}, {"weight": 100}]},
        "analysis": {"interval": "10s", "min_requests": 10, "judge": {"kind": "mann_whitney", "samples": 4},
                     "metrics": [{"metric": "error_rate"}, {"metric": "latency_mean"}]},
        "monitoring": {"scrape_interval": "3s", "window": "8s", "delay": "0s"},
    })
    assert lint(s).ids() == ["short-sub-windows"]
    events = simulate(s, seed=1, engine=engine).events
    judged = [d for d in events[events["kind"] == "analysis"]["detail"] if d["requests"] >= 10]
    assert len(judged) >= 4 and all(d["verdict"] == "pass" and "nodata" not in d["classes"].values()
                                    for d in judged), judged


def test_the_command_points_at_the_samples_line(tmp_path, capsys):
    path = tmp_path / "thin.yaml"
    path.write_text(json.dumps(merged(BASE, MW), indent=1))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"samples"' in text)
    assert main(["lint", str(path)]) == 1
    assert f"short-sub-windows  {path}:{line}: analysis.judge.samples: 4 sub-windows" in capsys.readouterr().out


# -- unread-baseline -----------------------------------------------------------------------------------

ABSOLUTE = {"strategy": {"baseline": True}}  # BASE's analysis: error_rate max 0.02, the threshold judge


@pytest.mark.parametrize("over,why", [
    (ABSOLUTE, "the threshold judge's acting metrics have only absolute bounds (analysis.metrics[0].max)"),
    (merged(ABSOLUTE, {"analysis": {"metrics": [{"metric": "error_rate", "max_ratio_to_baseline": 2,
                                                 "dry_run": True}]}}), "every analysis metric is dry_run"),
    (merged(ABSOLUTE, {"strategy": {"analysis": False}}), "strategy.analysis is false"),
    (merged(ABSOLUTE, {"analysis": None}), "the scenario has no analysis"),
])
def test_a_baseline_nobody_reads_is_a_warning_with_its_cost(over, why):
    (f,) = found("unread-baseline", **over)
    assert (f.severity, f.field) == ("warning", "strategy.baseline")
    # BASE: 10 instances, startup 20s, 2 health checks every 5s: 1 baseline instance for 30s + 5m, then 5 for
    # 30s + 5m and the 30s the weight-100 canary takes to be ready
    assert f.data == {"instances": [1, 5], "instance_seconds": 1 * 330 + 5 * 360}
    assert "(1 at step 0 (10%), 5 at step 1 (50%)): about 2,130 instance-seconds per good release" in f.reason
    assert why in f.reason and "Drop `baseline: true`, or judge against it" in f.reason


@pytest.mark.parametrize("over", [
    merged(ABSOLUTE, {"analysis": {"metrics": [{"metric": "error_rate", "max": 0.02, "max_ratio_to_baseline": 3}]}}),
    merged(ABSOLUTE, {"analysis": {"judge": {"kind": "mann_whitney"}, "metrics": [{"metric": "error_rate"}]}}),
    {"strategy": {"baseline": False}},
    {"strategy": {"baseline": True, "steps": [{"weight": 100}]}},  # never below 100: no baseline starts
])
def test_quiet_when_the_analysis_compares_with_it_or_there_is_none(over):
    assert found("unread-baseline", **over) == []


def test_its_cost_is_what_the_engines_charge_for_the_baseline():
    """The instance-seconds a baseline adds to a good release on both engines, against the warning's figure:
    each step's readiness falls on the health checks' grid, so each of its instances may start its bake up to
    one check interval sooner or later (the tolerance)."""
    s = validate_scenario({
        "name": "cost", "duration": "6m", "traffic": {"rps": 20}, "release": {"at": "30s"},
        "fleet": {"instances": 10, "service_time": "20ms", "startup": "10s"},
        "strategy": {"kind": "canary", "baseline": True,
                     "steps": [{"weight": 10, "bake": "1m"}, {"weight": 40, "bake": "2m"}, {"weight": 100}]},
        "analysis": {"interval": "30s", "min_requests": 5, "metrics": [{"metric": "error_rate", "max": 0.05}]},
        "monitoring": {"scrape_interval": "5s", "window": "30s", "delay": "5s"},
    })
    (f,) = lint(s)
    predicted, sizes = f.data["instance_seconds"], f.data["instances"]
    tolerance = 5.0 * (sum(sizes) + sizes[-1])
    without = s.model_copy(update={"strategy": s.strategy.model_copy(update={"baseline": False})})
    for engine in ("request", "fluid"):
        runs = [simulate(x, seed=3, engine=engine).summary.values for x in (s, without)]
        assert [r["outcome"] for r in runs] == ["promoted", "promoted"]
        charged = runs[0]["instance_seconds"] - runs[1]["instance_seconds"]
        assert abs(charged - predicted) <= tolerance, (engine, charged, predicted)
