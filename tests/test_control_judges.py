"""The mann_whitney judge: hand-computed classifications and scores, the controller acting on them, and a
simulated bad release it catches while a good one passes.

Hand computations: with 4 canary and 4 baseline values and no ties, the U statistic of the canary has the
exact null distribution of C(8, 4) = 70 equally likely rank sets, so "every canary value above every
baseline value" (U = 16) has one-sided p = 1/70 and two-sided p = 2/70.
"""
import pytest

from simlab.control import WindowStats
from simlab.control import mann_whitney as mw
from simlab.scenario import validate_scenario
from simlab.scenario.strategy import MannWhitneyJudge, MetricCheck
from tests.helpers.control import HEALTHY, ScriptedMetrics, build_scenario, drive

JUDGE = MannWhitneyJudge(kind="mann_whitney")  # confidence 0.95, pass 95, marginal 75
LOW, HIGH = [1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]


def check(metric="latency_p99", **kw) -> MetricCheck:
    return MetricCheck(metric=metric, **kw)


# -- one metric ---------------------------------------------------------------------------------------------

def test_every_canary_value_above_every_baseline_value_is_high_at_p_one_in_seventy():
    r = mw.classify(check(), HIGH, LOW, 0.95)
    assert (r.classification, r.status) == ("high", "failed")
    assert r.p_value == pytest.approx(1 / 70)
    assert (r.value, r.limit) == (6.5, 2.5)  # the canary's and the baseline's means


def test_interleaved_values_are_not_significant():
    r = mw.classify(check(), [1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0], 0.95)  # U = 0+1+2+3 = 6 of 16
    assert (r.classification, r.status) == ("pass", "passed") and r.p_value > 0.5


def test_a_significant_shift_within_the_tolerance_passes():
    canary, baseline = [10.5, 10.6, 10.7, 10.8], [10.1, 10.2, 10.3, 10.4]  # p = 1/70, means +3.9%
    assert mw.classify(check(tolerance=0.05), canary, baseline, 0.95).classification == "pass"
    assert mw.classify(check(tolerance=0.03), canary, baseline, 0.95).classification == "high"


def test_a_stricter_confidence_needs_a_smaller_p():
    assert mw.classify(check(), HIGH, LOW, 0.98).classification == "high"  # 1/70 = 0.0143 < 0.02
    assert mw.classify(check(), HIGH, LOW, 0.99).classification == "pass"  # not < 0.01


@pytest.mark.parametrize("direction, canary, baseline, expected, p", [
    ("increase", LOW, HIGH, "pass", 1.0),  # a drop is no regression for an increase metric
    ("decrease", LOW, HIGH, "low", 1 / 70),
    ("either", LOW, HIGH, "low", 2 / 70),  # two-sided
    ("either", HIGH, LOW, "high", 2 / 70),
])
def test_direction_picks_the_side_of_the_test(direction, canary, baseline, expected, p):
    r = mw.classify(check(direction=direction), canary, baseline, 0.95)
    assert r.classification == expected
    assert r.p_value == pytest.approx(p)


def test_fewer_than_three_values_on_a_side_is_nodata():
    r = mw.classify(check(), [9.0, 9.0], LOW, 0.95)
    assert (r.classification, r.status, r.p_value) == ("nodata", "inconclusive", None)


def test_identical_values_on_both_sides_pass_without_a_test():
    r = mw.classify(check(metric="error_rate"), [0.0] * 4, [0.0] * 4, 0.95)
    assert (r.classification, r.p_value) == ("pass", 1.0)


def test_a_zero_baseline_mean_leaves_significance_alone_to_decide():
    # A relative change from 0 is undefined: the tolerance cannot excuse errors on a clean baseline.
    r = mw.classify(check(metric="error_rate", tolerance=100.0), [0.01, 0.02, 0.03, 0.04], [0.0] * 4, 0.95)
    assert r.classification == "high"


def test_sub_windows_without_a_value_are_left_out():
    samples = [WindowStats(requests=100, errors=1), WindowStats(), WindowStats(requests=50, errors=0)]
    assert mw.values(samples, "error_rate") == [0.01, 0.0]


# -- the score ----------------------------------------------------------------------------------------------

def ranked(cls: str):
    """Samples a metric classifies as high (canary far above the baseline) or pass (the same on both sides)."""
    return (HIGH if cls == "high" else LOW), LOW


def measurement(classes: dict, checks: list[MetricCheck]):
    results = [mw.classify(c, *ranked(classes[c.metric]), 0.95) if classes[c.metric] != "nodata"
               else mw.classify(c, [], [], 0.95) for c in checks]
    return mw.score(JUDGE, checks, results, requests=400)


THREE = [check("error_rate", weight=1), check("latency_p99", weight=3), check("latency_p50", weight=1)]


@pytest.mark.parametrize("classes, status, verdict, score", [
    ({"error_rate": "pass", "latency_p99": "pass", "latency_p50": "pass"}, "passed", "pass", 100.0),
    ({"error_rate": "high", "latency_p99": "pass", "latency_p50": "pass"}, "inconclusive", "marginal", 80.0),
    ({"error_rate": "pass", "latency_p99": "high", "latency_p50": "pass"}, "failed", "fail", 40.0),
    ({"error_rate": "high", "latency_p99": "pass", "latency_p50": "nodata"}, "inconclusive", "marginal", 75.0),
    ({"error_rate": "nodata", "latency_p99": "nodata", "latency_p50": "nodata"}, "inconclusive", "nodata", None),
])
def test_weighted_score_against_pass_and_marginal_thresholds(classes, status, verdict, score):
    # 1 of weight 5 failing: 80 (marginal, 75 <= 80 < 95); 3 of 5: 40 (fail); nodata is left out of the
    # weights: 3 of 4 pass = 75, exactly the marginal threshold (inclusive).
    m = measurement(classes, THREE)
    assert (m.status, m.verdict, m.score) == (status, verdict, score)


def test_a_critical_metric_that_regresses_fails_whatever_the_score():
    checks = [check("error_rate", critical=True), check("latency_p99", weight=99)]
    m = measurement({"error_rate": "high", "latency_p99": "pass"}, checks)
    assert (m.status, m.verdict, m.score) == ("failed", "critical_fail", 0.0)  # would score 99 otherwise
    assert m.failed_metrics == ("error_rate",)
    plain = measurement({"error_rate": "high", "latency_p99": "pass"}, [check("error_rate"), checks[1]])
    assert (plain.status, plain.score) == ("passed", 99.0)


def test_a_thin_canary_is_inconclusive_before_any_metric_is_ranked():
    thin = [WindowStats(requests=10, errors=5)] * 4
    m = mw.judge(JUDGE, [check("error_rate")], thin, [HEALTHY] * 4, min_requests=50)
    assert (m.status, m.requests, m.checks) == ("inconclusive", 40, ())


# -- the controller on mann_whitney measurements --------------------------------------------------------------

MW = {"judge": {"kind": "mann_whitney", "samples": 4}, "metrics": [{"metric": "error_rate"}]}
LONG_BAKE = {"kind": "canary", "steps": [{"weight": 10, "bake": "5m"}, {"weight": 100}]}


def errors(*rates: float) -> tuple[WindowStats, ...]:
    return tuple(WindowStats(requests=100, errors=round(r * 100)) for r in rates)


CLEAN, BAD = errors(0.01, 0.02, 0.03, 0.04), errors(0.05, 0.06, 0.07, 0.08)  # no ties: exact p


def test_the_controller_rolls_back_at_the_second_significant_regression():
    metrics = ScriptedMetrics(samples=lambda version, t, n: BAD if version == "new" and t >= 40 else CLEAN)
    run = drive(build_scenario(strategy=LONG_BAKE, analysis=MW), metrics=metrics)
    assert run.measurements()[:4] == [(20.0, "passed", 0), (30.0, "passed", 0), (40.0, "failed", 1),
                                      (50.0, "failed", 2)]
    first = next(d for t, kind, d in run.trace if kind == "analysis" and t == 40.0)
    assert first["classes"] == {"error_rate": "high"} and first["p_values"]["error_rate"] == pytest.approx(1 / 70)
    c = run.controller
    assert (c.outcome, c.detected_at, c.rollback_cause, c.rollback_by) == ("rolled_back", 50.0, "error_rate", "controller")


def test_the_baseline_is_the_old_version_over_the_same_window():
    # The canary is as clean as the baseline it is compared with, however bad both are.
    metrics = ScriptedMetrics(samples=lambda version, t, n: BAD)
    run = drive(build_scenario(strategy=LONG_BAKE, analysis=MW), metrics=metrics)
    assert run.controller.outcome == "promoted" and run.controller.failures == 0


def test_samples_come_from_the_scenarios_number_of_sub_windows():
    asked = []
    metrics = ScriptedMetrics(samples=lambda version, t, n: asked.append(n) or (HEALTHY,) * n)
    drive(build_scenario(strategy=LONG_BAKE, analysis={**MW, "judge": {"kind": "mann_whitney", "samples": 7}}),
          metrics=metrics, until=60.0)
    assert asked and set(asked) == {7}


# -- simulated ------------------------------------------------------------------------------------------------

SIMULATED = {
    "name": "mw-judge", "duration": "30m", "fleet": {"instances": 10, "service_time": "40ms"},
    "traffic": {"rps": 400},
    "strategy": {"kind": "canary", "steps": [{"weight": 10, "bake": "5m"}, {"weight": 50, "bake": "5m"},
                                             {"weight": 100}]},
    "analysis": {"interval": "1m", "failure_limit": 2, "judge": {"kind": "mann_whitney", "samples": 6},
                 "metrics": [{"metric": "error_rate", "tolerance": 0.2}]},
    "failures": [{"kind": "dependency", "at": 0, "duration": "30m", "error_rate": 0.005}],  # background errors
}


def simulated(defects: list) -> dict:
    return {**SIMULATED, "release": {"at": "5m", "defects": defects}}


def test_on_the_fluid_engine_a_bad_release_is_caught_while_a_good_one_passes():
    """64 runs each. A good release fails a measurement with probability at most 1 - confidence = 5% per
    measurement, so two of its ~12 fail with probability at most 1 - 0.95^12 - 12 x 0.05 x 0.95^11 = 12%:
    more than 10 false rollbacks in 64 (15.6%) is a broken judge (binomial tail < 10%); a 3% error rate
    on the canary against 0.5% on the baseline is found every time."""
    from simlab.simulation import simulate_batch

    seeds = list(range(64))
    good = simulate_batch(validate_scenario(simulated([])), seeds)
    bad = simulate_batch(validate_scenario(simulated([{"kind": "error_rate", "rate": 0.03}])), seeds)
    assert (good["outcome"] == "rolled_back").sum() <= 10
    assert (good["outcome"] == "promoted").sum() >= 54
    assert (bad["outcome"] == "rolled_back").all()
    assert set(bad["rollback_cause"]) == {"error_rate"}


def test_on_the_request_engine_the_judge_reads_the_same_sub_windows():
    from simlab.simulation import simulate

    s = validate_scenario({**simulated([{"kind": "error_rate", "rate": 0.05}]), "duration": "12m",
                           "traffic": {"rps": 200}})
    result = simulate(s, seed=1, engine="request")
    assert result.summary["outcome"] == "rolled_back"
    assert result.summary["rollback_cause"] == "error_rate"
    ranked_ = [d for k, d in zip(result.events["kind"], result.events["detail"]) if k == "analysis" and d.get("classes")]
    assert any(d["classes"]["error_rate"] == "high" for d in ranked_)


@pytest.mark.parametrize("analysis, message", [
    ({"metrics": [{"metric": "error_rate", "max": 0.01, "tolerance": 0.2}]},
     "analysis.metrics[0].tolerance: expected only with judge mann_whitney"),
    ({"judge": {"kind": "mann_whitney"}, "metrics": [{"metric": "error_rate", "max": 0.01}]},
     "analysis.metrics[0].max: expected no bound with judge mann_whitney"),
    ({"metrics": [{"metric": "error_rate"}]}, "analysis.metrics[0]: expected `max` or `max_ratio_to_baseline`"),
    ({"judge": {"kind": "mann_whitney", "pass_score": 70}}, "marginal_score: expected at most pass_score (70)"),
    ({"judge": {"kind": "mann_whitney", "samples": 2}}, "samples"),
])
def test_metrics_that_do_not_fit_the_judge_are_one_clear_line(analysis, message):
    from simlab.errors import ScenarioError

    with pytest.raises(ScenarioError) as err:
        validate_scenario({**SIMULATED, "release": {"at": "5m"}, "analysis": analysis})
    assert len(err.value.problems) == 1 and message in err.value.problems[0], err.value.problems
