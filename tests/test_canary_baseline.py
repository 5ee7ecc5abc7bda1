"""The canary baseline (strategy.canary.baseline): the controller's plan and what the analysis compares with.

The fake driver of tests/helpers/control.py: fleet of 4, instances ready 10s after start, release at t=10s,
analysis every 10s over a 10s window, failure_limit 2, rollback.duration 5s.
"""
import pytest

from simlab.control import SetWeight, StartInstances, StopInstances, WindowStats
from tests.helpers.control import HEALTHY, ScriptedMetrics, build_scenario, drive

STEPS = [{"weight": 25, "bake": "1m"}, {"weight": 50, "bake": "1m"}, {"weight": 100}]
WITH_BASELINE = {"kind": "canary", "baseline": True, "steps": STEPS}
FAIL = WindowStats(requests=100, errors=50)


def test_the_baseline_starts_with_the_canary_is_resized_with_each_step_and_stopped_at_weight_100():
    run = drive(build_scenario(strategy=WITH_BASELINE))
    assert run.controller.outcome == "promoted"
    assert [(t, a) for t, a in run.actions] == [
        (10.0, SetWeight(0)),
        (10.0, StartInstances("new", 1)),
        (10.0, StartInstances("baseline", 1)),  # started together: both warm up from 10s
        (20.0, SetWeight(25, 25)),  # once both are ready: 25% each, the stable fleet 50%
        (80.0, StartInstances("new", 1)),
        (80.0, StartInstances("baseline", 1)),
        (90.0, SetWeight(50, 50)),
        (150.0, StartInstances("new", 2)),
        (160.0, SetWeight(100)),  # the canary takes everything: the baseline has no share left
        (160.0, StopInstances("baseline", 2)),
        (160.0, StopInstances("old", 4)),
    ]
    steps = [d for _, kind, d in run.trace if kind == "step_started"]
    assert [(d["new_instances"], d["baseline_instances"]) for d in steps] == [(1, 1), (2, 2), (4, 0)]
    weights = [d for _, kind, d in run.trace if kind == "weight"]
    assert weights[1:] == [{"new_percent": 25, "baseline_percent": 25}, {"new_percent": 50, "baseline_percent": 50},
                           {"new_percent": 100, "baseline_percent": 0.0}]
    assert run.final.baseline.alive == 0


def test_without_a_baseline_the_plan_is_unchanged():
    run = drive(build_scenario(strategy={"kind": "canary", "steps": STEPS}))
    assert not [a for _, a in run.actions if getattr(a, "version", None) == "baseline"]
    assert all("baseline_percent" not in d for _, kind, d in run.trace if kind == "weight")
    assert all("against" not in d for _, kind, d in run.trace if kind == "analysis")


def test_a_rollback_stops_the_baseline_with_the_canary():
    metrics = ScriptedMetrics(new=lambda t: FAIL if t >= 40 else HEALTHY)
    run = drive(build_scenario(strategy=WITH_BASELINE), metrics=metrics)
    c = run.controller
    assert (c.outcome, c.rollback_started_at) == ("rolled_back", 50.0)
    assert run.actions_between(50.0) == [
        (55.0, SetWeight(0)),
        (55.0, StopInstances("baseline", 1)),
        (55.0, StopInstances("new", 1)),
    ]
    assert (run.final.new.alive, run.final.baseline.alive, run.final.old.alive) == (0, 0, 4)


SLOW, FAST = WindowStats(requests=100, latency_mean=0.08), WindowStats(requests=100, latency_mean=0.04)
MANN_WHITNEY = {"judge": {"kind": "mann_whitney", "samples": 5}, "metrics": [{"metric": "latency_mean"}]}


def cold_and_warm(version, t, count):
    """New instances and the baseline's are as slow (both fresh); the stable fleet's warm ones faster."""
    return (FAST if version == "old" else SLOW,) * count


@pytest.mark.parametrize("baseline, outcome, against", [(True, "promoted", "baseline"), (False, "rolled_back", None)])
def test_the_mann_whitney_judge_ranks_the_canary_against_the_baseline(baseline, outcome, against):
    scenario = build_scenario(strategy={**WITH_BASELINE, "baseline": baseline}, analysis=MANN_WHITNEY)
    run = drive(scenario, metrics=ScriptedMetrics(samples=cold_and_warm))
    assert run.controller.outcome == outcome
    measured = [d for _, kind, d in run.trace if kind == "analysis"]
    assert {d.get("against") for d in measured} == {against}
    if baseline:
        assert all(d["classes"] == {"latency_mean": "pass"} for d in measured)


def test_before_the_baseline_serves_the_analysis_says_it_read_the_stable_fleet():
    """A baseline window under min_requests (not ready yet): the stable fleet, as without a baseline."""
    thin = WindowStats(requests=5, latency_mean=0.08)  # 25 in the window, under min_requests
    samples = lambda version, t, count: (thin if version == "baseline" and t < 40 else  # noqa: E731
                                         cold_and_warm(version, t, 1)[0],) * count
    scenario = build_scenario(strategy=WITH_BASELINE, analysis={**MANN_WHITNEY, "failure_limit": 9})
    run = drive(scenario, metrics=ScriptedMetrics(samples=samples))
    measured = [(t, d["against"], d["status"]) for t, kind, d in run.trace if kind == "analysis"]
    assert measured[:3] == [(20.0, "stable", "failed"), (30.0, "stable", "failed"), (40.0, "baseline", "passed")]


def test_a_ratio_to_baseline_divides_by_the_baseline():
    ratio = {"metrics": [{"metric": "error_rate", "max_ratio_to_baseline": 2.0}]}
    noisy = WindowStats(requests=1000, errors=30)  # 3%: a dependency hurting every version alike
    metrics = ScriptedMetrics(new=lambda t: noisy, old=lambda t: WindowStats(requests=1000, errors=5),
                              baseline=lambda t: noisy)
    run = drive(build_scenario(strategy=WITH_BASELINE, analysis=ratio), metrics=metrics)
    assert run.controller.outcome == "promoted"
    ratios = {d["error_rate_ratio_to_baseline"] for _, kind, d in run.trace if kind == "analysis"}
    assert ratios == {1.0}
