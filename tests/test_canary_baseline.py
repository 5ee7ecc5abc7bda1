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


def test_a_step_over_50_with_a_baseline_is_one_line_naming_file_line_field_value_and_expectation(tmp_path):
    from simlab.errors import ScenarioError
    from simlab.scenario import load_scenario

    path = tmp_path / "over.yaml"
    path.write_text("name: over\nduration: 10m\nfleet: {instances: 4, service_time: 40ms}\ntraffic: {rps: 100}\n"
                    "release: {at: 1m}\nstrategy:\n  kind: canary\n  baseline: true\n  steps:\n"
                    "    - {weight: 10, bake: 1m}\n    - {weight: 60, bake: 1m}\n    - {weight: 100}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    lines = [line for line in str(err.value).splitlines() if "steps" in line]
    assert lines == [f"  - {path}:11: strategy.steps[1].weight: expected at most 50 with baseline: true (the canary "
                     f"and the baseline each take the step's weight, the stable fleet the rest; only the last step, "
                     f"100, goes past), found 60"]


def test_haproxy_s_split_gives_the_new_version_and_the_baseline_their_cuts_of_the_draw():
    # Per request HAProxy draws in [0, 1e6): below `new` the canary's backend, below `baseline` the baseline's, else
    # the stable one's; an empty pool's share goes to the stable version there (tests/staging/test_staging_split.py).
    from simlab.staging.haproxy import split_cuts

    assert split_cuts(10, 10) == {"new": 100_000, "baseline": 200_000, "all": 0}
    assert split_cuts(100, 0) == {"new": 1_000_000, "baseline": 1_000_000, "all": 0}
    assert split_cuts(20) == split_cuts(20, 0)  # no baseline: nothing between the two cuts


BRIDGED = """\
name: bridged
duration: 30m
fleet: {instances: 10, service_time: 50ms}
traffic: {rps: 100}
release: {at: 1m}
strategy:
  kind: canary
  baseline: true
  steps: [{weight: 10, bake: 5m}, {weight: 40, bake: 5m}, {weight: 100}]
analysis: {judge: {kind: mann_whitney}, metrics: [{metric: error_rate}]}
"""


def test_argo_writes_a_baseline_as_weighted_experiments_and_reads_them_back(tmp_path):
    import yaml

    from simlab.bridges import UnmodelledWarning, export_argo, export_flagger, import_argo

    base = tmp_path / "bridged.yaml"
    base.write_text(BRIDGED)
    with pytest.warns(UnmodelledWarning, match="strategy.baseline: written as a weighted experiment per step"):
        text = export_argo(base)
    rollout = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Rollout")
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [
        {"experiment": {"duration": "5m", "templates": [
            {"name": "baseline", "specRef": "stable", "replicas": replicas, "weight": weight},
            {"name": "canary", "specRef": "canary", "replicas": replicas, "weight": weight}]}}
        for replicas, weight in ((1, 10), (4, 40))]
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    with pytest.warns(UnmodelledWarning, match="a baseline \\(specRef stable\\) and a canary at 10% each"):
        back = import_argo(path, base=base)
    assert back.strategy.baseline and [(s.weight, s.bake) for s in back.strategy.steps] == [
        (10, 300), (40, 300), (100, 0)]
    # Argo's experiment weights add up as simlab's: a baseline and a canary at 60% each is refused where written.
    path.write_text(text.replace("weight: 40", "weight: 60"))
    from simlab.bridges import ManifestError

    with pytest.raises(ManifestError, match=r"rollout.yaml:\d+: Rollout bridged: spec.strategy.canary.steps\[1\]"
                                            r".experiment.templates\[1\].weight: expected at most 50"):
        import_argo(path, base=base)
    with pytest.warns(UnmodelledWarning, match="strategy.baseline: true: Flagger has no baseline"):
        export_flagger(base)
