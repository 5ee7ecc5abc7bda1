"""Counting measurements (cumulative or consecutive failures, inconclusive_limit with rollback or pause), dry-run
metrics that never change a decision, and the cause every rollback is attributed to.

The harness: fleet of 4, release at 10s, canary at 10% from 20s, a measurement every 10s from 20s,
failure_limit 2, on_call.ack 1m (tests/helpers/control.py).
"""
import numpy as np
import pytest

from simlab.control import WindowStats
from simlab.scenario import validate_scenario
from tests.helpers.control import HEALTHY, ScriptedMetrics, build_scenario, drive

FAIL = WindowStats(requests=100, errors=50)
PASS = WindowStats(requests=100, errors=0)
THIN = WindowStats(requests=10, errors=0)  # below min_requests: inconclusive
LONG_BAKE = {"kind": "canary", "steps": [{"weight": 10, "bake": "10m"}, {"weight": 100}]}
SHORT_BAKE = {"kind": "canary", "steps": [{"weight": 10, "bake": "30s"}, {"weight": 100}]}


def script(*windows: WindowStats, then: WindowStats = PASS):
    """The new version's window of the k-th measurement (t = 20 + 10k), `then` after the script."""
    return lambda t: windows[int(t - 20) // 10] if 0 <= int(t - 20) // 10 < len(windows) else then


SCRIPT = (FAIL, PASS, FAIL, THIN, FAIL, FAIL)


@pytest.mark.parametrize("counting, detected_at, counts", [
    ("cumulative", 40.0, [1, 1, 2]),  # the second failure, a pass in between or not
    ("consecutive", 70.0, [1, 0, 1, 0, 1, 2]),  # a pass or an inconclusive window starts the count again
])
def test_failure_counting(counting, detected_at, counts):
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"failure_counting": counting})
    run = drive(scenario, metrics=ScriptedMetrics(new=script(*SCRIPT)))
    assert [n for _, _, n in run.measurements()] == counts
    assert run.controller.detected_at == detected_at
    in_a_row = " in a row" if counting == "consecutive" else ""
    assert (detected_at, "detected", {"reason": f"analysis failed 2 times{in_a_row}"}) in run.trace


def test_the_summary_counts_every_failed_measurement_whatever_the_counting_rule():
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"failure_counting": "consecutive"})
    run = drive(scenario, metrics=ScriptedMetrics(new=script(*SCRIPT)))
    assert (run.controller.failures, run.controller.inconclusive) == (4, 1)


def test_inconclusive_limit_rolls_back_at_the_limit_th_inconclusive_measurement():
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"inconclusive_limit": 3})
    run = drive(scenario, metrics=ScriptedMetrics(new=script(THIN, PASS, THIN, THIN)))
    c = run.controller
    assert (c.outcome, c.detected_at, c.rollback_cause, c.rollback_by) == ("rolled_back", 50.0, "inconclusive",
                                                                           "controller")
    assert [d.get("inconclusive") for t, k, d in run.trace if k == "analysis"] == [1, 1, 2, 3]
    assert (50.0, "rollback_started", {"reason": "analysis inconclusive 3 times", "cause": "inconclusive"}) in run.trace


def test_without_an_inconclusive_limit_thin_windows_only_hold_the_step():
    run = drive(build_scenario(strategy=LONG_BAKE), metrics=ScriptedMetrics(new=lambda t: THIN), until=300.0)
    assert run.controller.phase == "rollout" and run.controller.inconclusive == 29


def test_a_paused_rollout_holds_until_the_on_call_resumes_it():
    scenario = build_scenario(strategy=SHORT_BAKE, analysis={"inconclusive_limit": 2, "on_inconclusive": "pause"})
    run = drive(scenario, metrics=ScriptedMetrics(new=lambda t: THIN if t < 60 else PASS))
    # paused at the 2nd inconclusive (30s); the bake ends at 50 and passes from 60, but nothing moves until
    # the on-call looks at 30 + 1m and finds neither a failed analysis nor an alert
    assert [(t, k) for t, k, _ in run.milestones() if k in ("paused", "resumed", "step_started", "promoted")] == [
        (10.0, "step_started"), (30.0, "paused"), (90.0, "resumed"), (90.0, "step_started"), (100.0, "promoted")]
    assert not [a for t, a in run.actions if 30.0 < t < 90.0]
    assert run.controller.outcome == "promoted"
    # two more while paused (40, 50), a pass at 90 measured before the on-call acts, then counted from zero
    assert [d["inconclusive"] for t, k, d in run.trace if k == "analysis" and t >= 90] == [4, 0]


def test_a_failed_analysis_during_a_pause_still_rolls_back():
    scenario = build_scenario(strategy=SHORT_BAKE, analysis={"inconclusive_limit": 1, "on_inconclusive": "pause"})
    run = drive(scenario, metrics=ScriptedMetrics(new=script(THIN, FAIL, FAIL)))
    c = run.controller
    assert (c.outcome, c.detected_at, c.rollback_cause) == ("rolled_back", 40.0, "error_rate")
    assert c.paused_at is None


def test_the_on_call_rolls_back_a_paused_rollout_whose_alert_burns():
    scenario = build_scenario(strategy=SHORT_BAKE, analysis={"inconclusive_limit": 1, "on_inconclusive": "pause"},
                              slo={"alert": {"burn_rate": 1000}})  # the alert never fires on its own
    burning = WindowStats(requests=100, errors=100)
    run = drive(scenario, metrics=ScriptedMetrics(new=lambda t: THIN, total=lambda t, s: burning if t >= 60 else HEALTHY))
    c = run.controller
    assert (c.rollback_started_at, c.rollback_cause, c.rollback_by) == (80.0, "alert", "on_call")  # paused at 20 + 1m


# -- what every rollback is attributed to -------------------------------------------------------------------

def test_a_manual_rollback_after_a_failed_analysis_is_the_on_calls_with_the_metric_as_cause():
    checks = [{"metric": "latency_p99", "max": "200ms"}, {"metric": "error_rate", "max": 0.01}]
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"metrics": checks}, rollback={"automatic": False})
    slow_and_failing = WindowStats(requests=100, errors=50, latency_p99=0.5)
    run = drive(scenario, metrics=ScriptedMetrics(new=lambda t: slow_and_failing))
    c = run.controller
    assert (c.detected_at, c.rollback_started_at, c.rollback_cause, c.rollback_by) == (
        30.0, 90.0, "latency_p99+error_rate", "on_call")


def test_a_ratio_check_names_its_ratio():
    scenario = build_scenario(strategy=LONG_BAKE,
                              analysis={"metrics": [{"metric": "error_rate", "max_ratio_to_baseline": 2}]})
    run = drive(scenario, metrics=ScriptedMetrics(new=lambda t: FAIL, old=lambda t: PASS))
    assert run.controller.rollback_cause == "error_rate_ratio_to_baseline"


# -- dry-run metrics ----------------------------------------------------------------------------------------

def noisy(seed: int):
    """Scripted windows drawn once per second from a seeded generator: error rates around the 1% bound,
    p99 latencies around a 120ms bound, some thin windows."""
    rng = np.random.default_rng(seed)
    n = 4000
    requests = rng.choice([20, 200], size=n, p=[0.15, 0.85])
    errors = rng.binomial(requests, 0.008)
    p99 = rng.gamma(20, 0.006, size=n)
    new = [WindowStats(int(r), int(e), 0, 0.05, 0.04, float(p)) for r, e, p in zip(requests, errors, p99)]
    return lambda t: new[int(t)]


def decisions(run):
    """Everything the controller decided: actions, milestones and each measurement's verdict (not dry-run)."""
    events = [(t, k, {key: v for key, v in d.items() if key != "dry_run"}) for t, k, d in run.trace
              if k != "dry_run_failed"]
    return run.actions, events, run.controller.outcome


DRY_LATENCY = {"metric": "latency_p99", "max": "120ms", "dry_run": True}
ACTING = [{"metric": "error_rate", "max": 0.01}]
STRATEGY = {"kind": "canary", "steps": [{"weight": 10, "bake": "2m"}, {"weight": 50, "bake": "2m"}, {"weight": 100}]}


@pytest.mark.parametrize("seed", range(12))
def test_dry_run_metrics_never_change_a_decision(seed):
    metrics = ScriptedMetrics(new=noisy(seed))
    plain = drive(build_scenario(strategy=STRATEGY, analysis={"metrics": ACTING}), metrics=metrics, until=1500.0)
    dry = drive(build_scenario(strategy=STRATEGY, analysis={"metrics": [*ACTING, DRY_LATENCY]}), metrics=metrics,
                until=1500.0)
    assert decisions(dry) == decisions(plain)
    shown = [d["dry_run"] for t, k, d in dry.trace if k == "analysis"]
    assert shown and all("status" in d and "failures" in d for d in shown)
    assert any("latency_p99" in d for d in shown)  # judged wherever the window is not thin


def test_dry_run_metrics_report_when_they_would_have_rolled_back():
    scenario = build_scenario(strategy=LONG_BAKE, analysis={"metrics": [*ACTING, DRY_LATENCY]})
    slow = WindowStats(requests=100, errors=0, latency_p99=0.3)
    run = drive(scenario, metrics=ScriptedMetrics(new=lambda t: slow), until=900.0)
    c = run.controller
    assert (c.outcome, c.dry_run_detected_at, c.failures) == ("promoted", 30.0, 0)
    assert [(t, d) for t, k, d in run.trace if k == "dry_run_failed"] == [(30.0, {"metrics": "latency_p99"})]


def test_only_dry_run_metrics_run_the_rollout_as_without_analysis():
    metrics = ScriptedMetrics(new=lambda t: FAIL)
    none = drive(build_scenario(strategy=STRATEGY, analysis={"metrics": []}), metrics=metrics)  # no analysis
    dry = drive(build_scenario(strategy=STRATEGY, analysis={"metrics": [{**ACTING[0], "dry_run": True}]}),
                metrics=metrics)
    assert dry.actions == none.actions and dry.controller.outcome == "promoted"
    assert [d["status"] for t, k, d in dry.trace if k == "analysis"][:2] == ["dry_run_only"] * 2
    assert dry.controller.dry_run_detected_at == 30.0


def test_dry_run_metrics_of_the_mann_whitney_judge_never_change_a_decision():
    ranks = np.random.default_rng(5)
    table = {t: tuple(WindowStats(100, int(e), 0, None, None, float(p))
                      for e, p in zip(ranks.integers(0, 3, 4), ranks.gamma(20, 0.006, 4))) for t in range(1600)}
    metrics = ScriptedMetrics(samples=lambda version, t, n: table[int(t) + (version == "old")])
    judge = {"kind": "mann_whitney", "samples": 4}
    plain = drive(build_scenario(strategy=STRATEGY, analysis={"judge": judge, "metrics": [{"metric": "error_rate"}]}),
                  metrics=metrics, until=1500.0)
    dry = drive(build_scenario(strategy=STRATEGY, analysis={"judge": judge, "metrics": [
        {"metric": "error_rate"}, {"metric": "latency_p99", "dry_run": True, "critical": True}]}),
        metrics=metrics, until=1500.0)
    assert decisions(dry) == decisions(plain)
    assert any(d["dry_run"]["classes"]["latency_p99"] in ("high", "pass") for t, k, d in dry.trace if k == "analysis")


def test_on_the_request_engine_dry_run_metrics_change_no_decision():
    """A whole simulated run: same actions and milestones, same summary but for dry_run_detected_at_s."""
    from simlab.simulation import simulate

    base = {"name": "dry", "duration": "14m", "fleet": {"instances": 4, "service_time": "40ms"},
            "traffic": {"rps": 100}, "release": {"at": "1m", "defects": [{"kind": "latency", "add": "80ms"}]},
            "strategy": STRATEGY, "monitoring": {"delay": "15s"}}
    checks = [{"metric": "error_rate", "max": 0.01}]
    plain = simulate(validate_scenario({**base, "analysis": {"metrics": checks}}), seed=4, engine="request")
    dry = simulate(validate_scenario({**base, "analysis": {"metrics": [*checks, {**DRY_LATENCY, "max": "100ms"}]}}),
                   seed=4, engine="request")
    strip = lambda r: [(t, k, {x: v for x, v in d.items() if x != "dry_run"}) for t, k, d in  # noqa: E731
                       zip(r.events["time"], r.events["kind"], r.events["detail"]) if k != "dry_run_failed"]
    assert strip(dry) == strip(plain)
    a, b = plain.summary.to_dict(), dry.summary.to_dict()
    assert b.pop("dry_run_detected_at_s") is not None and a.pop("dry_run_detected_at_s") is None
    assert a == b


@pytest.mark.parametrize("strategy, cause, by", [
    ({"kind": "canary", "steps": [{"weight": 10, "bake": "5m"}, {"weight": 100}]}, "error_rate", "controller"),
    ({"kind": "big_bang"}, "alert", "on_call"),
])
def test_the_summary_names_what_rolled_back_and_who(strategy, cause, by):
    from simlab.simulation import simulate

    s = validate_scenario({"name": "cause", "duration": "20m", "fleet": {"instances": 4, "service_time": "40ms"},
                           "traffic": {"rps": 100}, "strategy": strategy,
                           "release": {"at": "1m", "defects": [{"kind": "error_rate", "rate": 0.5}]}})
    summary = simulate(s, seed=1, engine="fluid").summary
    assert (summary["outcome"], summary["rollback_cause"], summary["rollback_by"]) == ("rolled_back", cause, by)
    good = simulate(s.model_copy(update={"release": s.release.model_copy(update={"defects": ()})}), seed=1,
                    engine="fluid").summary
    assert (good["outcome"], good["rollback_cause"], good["rollback_by"]) == ("promoted", None, None)
