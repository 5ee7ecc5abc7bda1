"""Analysis: one measurement's verdict, failure_limit, and inconclusive windows that gate a step."""
import pytest

from simlab.control import WindowStats
from simlab.control.analysis import measure
from simlab.scenario.strategy import MetricCheck
from tests.helpers.control import ScriptedMetrics, build_scenario, drive

ERROR_RATE = (MetricCheck(metric="error_rate", max=0.01),)
PASS = WindowStats(requests=100, errors=0)
FAIL = WindowStats(requests=100, errors=50)
THIN = WindowStats(requests=10, errors=10)  # every request failed, but too few to judge (min_requests 50)


# -- one measurement ----------------------------------------------------------


def test_a_window_below_min_requests_is_inconclusive_whatever_it_holds():
    m = measure(ERROR_RATE, THIN, None, min_requests=50)
    assert (m.status, m.requests, m.checks) == ("inconclusive", 10, ())


def test_an_empty_window_is_inconclusive_even_with_min_requests_zero():
    assert measure(ERROR_RATE, WindowStats(), None, min_requests=0).status == "inconclusive"


@pytest.mark.parametrize("errors, status", [(1, "passed"), (2, "failed")])
def test_absolute_bound_is_exclusive(errors, status):
    m = measure(ERROR_RATE, WindowStats(requests=100, errors=errors), None, min_requests=50)
    assert m.status == status
    assert m.as_detail() == {"status": status, "requests": 100, "error_rate": errors / 100}


def test_a_latency_bound_given_in_ms_is_compared_in_seconds():
    checks = (MetricCheck(metric="latency_p99", max="500ms"),)
    assert measure(checks, WindowStats(requests=60, latency_p99=0.4), None, min_requests=50).status == "passed"
    assert measure(checks, WindowStats(requests=60, latency_p99=0.6), None, min_requests=50).status == "failed"


def test_a_metric_the_window_does_not_report_cannot_pass():
    checks = (MetricCheck(metric="latency_p99", max="500ms"),)
    m = measure(checks, WindowStats(requests=60, errors=60, latency_p99=None), None, min_requests=50)
    assert m.status == "inconclusive"


RATIO = (MetricCheck(metric="error_rate", max_ratio_to_baseline=2.0),)


@pytest.mark.parametrize("new_errors, status", [(20, "passed"), (21, "failed")])
def test_ratio_to_the_old_version(new_errors, status):
    baseline = WindowStats(requests=1000, errors=10)  # 1%
    m = measure(RATIO, WindowStats(requests=1000, errors=new_errors), baseline, min_requests=50)
    assert m.status == status
    assert m.checks[0].metric == "error_rate_ratio_to_baseline"
    assert m.checks[0].value == pytest.approx(new_errors / 10)


def test_a_clean_baseline_counts_as_one_error_in_its_window():
    baseline = WindowStats(requests=1000, errors=0)  # floor: 1/1000
    assert measure(RATIO, WindowStats(requests=1000, errors=2), baseline, min_requests=50).status == "passed"
    assert measure(RATIO, WindowStats(requests=1000, errors=3), baseline, min_requests=50).status == "failed"


def test_a_thin_baseline_makes_the_ratio_inconclusive():
    m = measure(RATIO, FAIL, WindowStats(requests=5, errors=0), min_requests=50)
    assert m.status == "inconclusive"
    both = measure(ERROR_RATE + RATIO, FAIL, WindowStats(requests=5), min_requests=50)
    assert both.status == "failed"  # the absolute bound still judges


# -- measurements over a rollout ---------------------------------------------

# The canary's first step bakes for 10 minutes; measurements come every 10s from t=20.
LONG_BAKE = {"kind": "canary", "steps": [{"weight": 10, "bake": "10m"}, {"weight": 100}]}
SCRIPT = [FAIL, PASS, THIN, FAIL, PASS, FAIL, FAIL, FAIL, FAIL]
STATUS = {id(FAIL): "failed", id(PASS): "passed", id(THIN): "inconclusive"}


def scripted(t: float) -> WindowStats:
    k = int(t - 20) // 10
    return SCRIPT[k] if 0 <= k < len(SCRIPT) else PASS


@pytest.mark.parametrize("failure_limit, detected_at", [(1, 20.0), (2, 50.0), (3, 70.0), (4, 80.0)])
def test_rollback_at_exactly_the_failure_limit_th_failed_measurement(failure_limit, detected_at):
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"failure_limit": failure_limit})
    run = drive(scenario, metrics=ScriptedMetrics(new=scripted))

    expected, failures = [], 0
    for k, window in enumerate(SCRIPT):
        t = 20.0 + 10 * k
        if t > detected_at:
            break
        failures += window is FAIL
        expected.append((t, STATUS[id(window)], failures))
    assert run.measurements() == expected  # failed ones counted, passed/inconclusive ones neither reset nor count
    assert expected[-1][1:] == ("failed", failure_limit)
    assert run.controller.detected_at == detected_at
    rollbacks = [(t, kind, d) for t, kind, d in run.trace if kind in ("detected", "rollback_started")]
    reason = f"analysis failed {failure_limit} times"
    assert rollbacks == [(detected_at, "detected", {"reason": reason}),
                         (detected_at, "rollback_started", {"reason": reason, "cause": "error_rate"})]


def test_inconclusive_windows_hold_a_step_until_a_measurement_passes():
    steps = {"kind": "canary", "steps": [{"weight": 10, "bake": "30s"}, {"weight": 100}]}
    run = drive(build_scenario(strategy=steps), metrics=ScriptedMetrics(new=lambda t: THIN if t < 100 else PASS))
    # bake 20..50 is over at 50, but nothing has passed: the step waits for the pass at 100
    assert [(t, kind) for t, kind, _ in run.milestones() if kind in ("step_started", "promoted")] == [
        (10.0, "step_started"), (100.0, "step_started"), (110.0, "promoted"),
    ]
    assert {status for t, status, _ in run.measurements() if t < 100} == {"inconclusive"}
    assert run.controller.failures == 0 and run.controller.outcome == "promoted"


def test_a_passed_measurement_before_the_bake_starts_does_not_count():
    steps = {"kind": "canary", "steps": [{"weight": 10, "bake": "30s"}, {"weight": 100}]}
    # Passes only at t=20, the tick the canary gets traffic and its bake starts.
    run = drive(build_scenario(strategy=steps), metrics=ScriptedMetrics(new=lambda t: PASS if t == 20 else THIN),
                until=200.0)
    assert [kind for _, kind, _ in run.milestones()].count("step_started") == 1
    assert run.controller.phase == "rollout"


def test_analysis_that_stays_inconclusive_past_the_progress_deadline_rolls_back():
    steps = {"kind": "canary", "progress_deadline": "1m", "steps": [{"weight": 10, "bake": "30s"}, {"weight": 100}]}
    run = drive(build_scenario(strategy=steps), metrics=ScriptedMetrics(new=lambda t: THIN))
    # bake starts at 20; 30s bake + 60s deadline
    assert run.controller.detected_at == 110.0
    assert run.controller.failures == 0
    assert (110.0, "rollback_started", {"reason": "analysis stayed inconclusive past the progress deadline",
                                             "cause": "deadline"}) in run.trace
