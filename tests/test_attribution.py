"""What made a rollback happen (simlab.attribution): the rule on hand-built cases, and on simulated runs of a
good release whose only disturbances are a scheduled failure or instance crashes."""
from __future__ import annotations

import pytest

from simlab.attribution import lookback, rollback_trigger
from simlab.engines.versions import NEW, OLD
from simlab.scenario import validate_scenario

WORLD = {
    "name": "attribution", "duration": "20m", "fleet": {"instances": 4, "service_time": "20ms"},
    "traffic": {"rps": 40}, "release": {"at": "1m"},
    "strategy": {"kind": "canary", "steps": [{"weight": 50, "bake": "10m"}, {"weight": 100}]},
    "analysis": {"interval": "30s", "failure_limit": 2, "min_requests": 10,
                 "metrics": [{"metric": "error_rate", "max": 0.01}]},
    "monitoring": {"scrape_interval": "10s", "window": "1m", "delay": "10s"},
    "failures": [{"kind": "dependency", "at": "5m", "duration": "1m", "error_rate": 0.05}],
}


def test_crash_events_name_the_new_version_as_the_engines_do():
    import simlab.attribution

    assert simlab.attribution.NEW == NEW


def test_the_look_back_is_what_the_deciding_measurements_saw():
    s = validate_scenario(WORLD)
    assert lookback(s, "error_rate") == 10 + 10 + 60 + 30  # delay, one scrape, the window, one earlier interval
    assert lookback(s, "alert") == 10 + 10 + s.slo.alert.long_window


@pytest.mark.parametrize("detected, cause, bad, crashes, trigger", [
    (330.0, "error_rate", False, [], "failure"),  # the failure (300-360 s) is in view
    (330.0, "error_rate", True, [], "defect"),  # a bad release's rollback is the defect's, whatever else happened
    (360.0 + 109.0, "error_rate", False, [], "failure"),  # the failure's last second is still in the look-back
    (360.0 + 110.0, "error_rate", False, [], "noise"),  # ... and no longer
    (700.0, "error_rate", False, [(650.0, NEW)], "crash"),
    (700.0, "error_rate", False, [(650.0, OLD)], "noise"),  # the analysis reads the new version only
    (700.0, "alert", False, [(650.0, OLD)], "crash"),  # the SLO alert reads every instance
    (700.0, "error_rate", False, [(650.0, None)], "crash"),  # staging: the version is not known
    (700.0, "error_rate", False, [(560.0, NEW)], "noise"),  # before the look-back
    (700.0, "error_rate", False, [(701.0, NEW)], "noise"),  # after the detection
    (700.0, "deadline", False, [(650.0, NEW)], None),  # no metric crossed
    (700.0, "inconclusive", False, [], None),
    (None, None, False, [], None),  # not rolled back
])
def test_the_rule_on_hand_built_cases(detected, cause, bad, crashes, trigger):
    assert rollback_trigger(validate_scenario(WORLD), detected, cause, bad, crashes) == trigger


def _runs(world: dict, runs: int):
    from simlab.experiment.replication import replicate

    return replicate(validate_scenario(world), runs=runs, seed=3, engine="fluid", executor="serial")


def test_a_good_release_rolled_back_in_a_scheduled_failure_is_attributed_to_it():
    runs = _runs(WORLD, 12)
    rolled = runs[runs["outcome"] == "rolled_back"]
    assert len(rolled) >= 10  # 5% errors against a 1% threshold: the failure rolls back nearly every run
    assert set(rolled["rollback_trigger"]) == {"failure"}
    assert runs.loc[runs["outcome"] != "rolled_back", "rollback_trigger"].isna().all()


@pytest.mark.parametrize("engine", ["fluid", "request"])
def test_crashes_of_the_new_version_are_told_apart_from_noise(engine):
    """No scheduled failure; instances crash every few minutes, each failing the requests in flight on it and
    those sent to it until the health check takes it out. A threshold at 0.5%: rollbacks follow crashes of new
    instances, and one is attributed to a crash exactly when a new-version crash is in its look-back."""
    from simlab import simulate

    world = {**WORLD, "failures": [{"kind": "instance_crash", "mtbf": "3m", "restart": "20s"}],
             "duration": "8m", "fleet": {"instances": 4, "workers": 64, "service_time": "1s"},
             "analysis": {**WORLD["analysis"], "failure_limit": 1, "metrics": [{"metric": "error_rate", "max": 0.005}]}}
    s = validate_scenario(world)
    seen = set()
    for seed in range(8):
        r = simulate(s, seed=seed, engine=engine)
        trigger = r.summary["rollback_trigger"]
        seen.add(trigger)
        if trigger is None:
            continue
        at = s.release.at + r.summary["rollback_started_at_s"] - (s.rollback.on_call.ack if r.summary["rollback_by"] == "on_call" else 0)
        crashes = r.events[(r.events["kind"] == "instance_crash")]
        new = [t for t, d in zip(crashes["time"], crashes["detail"]) if d["version"] == NEW
               and at - lookback(s, r.summary["rollback_cause"]) < t <= at]
        assert (trigger == "crash") == bool(new), (seed, trigger, new)
    assert "crash" in seen


BIG_BANG = {**WORLD, "strategy": {"kind": "big_bang"}, "failures": [], "analysis": None,
            "fleet": {"instances": 4, "service_time": "20ms", "startup": "60s"},
            "rollback": {"automatic": True, "on_call": {"ack": "10s"}}}


def test_the_capacity_a_deploy_takes_out_of_rotation():
    from simlab.attribution import capacity_taken

    big_bang = validate_scenario(BIG_BANG)
    assert capacity_taken(big_bang, 95.0, None) == (60.0, 95.0)  # from the release until the new fleet serves
    assert capacity_taken(big_bang, None, 80.0) == (60.0, 80.0)  # ... or until the rollback was decided
    rolling = {**WORLD, "strategy": {"kind": "rolling", "batch": 1, "max_surge": 0, "max_unavailable": 1}}
    assert capacity_taken(validate_scenario(rolling), 300.0, None) == (60.0, 300.0)
    surge = {**WORLD, "strategy": {"kind": "rolling", "batch": 1, "max_surge": 1, "max_unavailable": 0}}
    assert capacity_taken(validate_scenario(surge), 300.0, None) is None  # new instances come before old ones go
    assert capacity_taken(validate_scenario(WORLD), 300.0, None) is None  # a canary adds instances
    s = validate_scenario(WORLD)
    assert rollback_trigger(s, 700.0, "error_rate", False, [], (60.0, 650.0)) == "rollout"
    assert rollback_trigger(s, 700.0, "error_rate", False, [], (60.0, 580.0)) == "noise"  # over before the look-back
    assert rollback_trigger(s, 700.0, "error_rate", False, [(650.0, NEW)], (60.0, 650.0)) == "crash"  # a crash first
    assert rollback_trigger(s, 330.0, "error_rate", False, [], (60.0, 650.0)) == "failure"  # a scheduled failure first


@pytest.mark.parametrize("engine", ["fluid", "request"])
def test_a_big_bang_that_trips_the_alert_by_its_restart_names_the_rollout(engine):
    """A good big_bang stops the whole fleet and waits a minute for the new one: every request in between fails,
    the SLO burn-rate alert fires, and the on-call, acknowledging in 10 s, rolls back. Nothing else happens in this world: before the rollout
    trigger existed, this read "noise"."""
    from simlab import simulate

    s = validate_scenario(BIG_BANG)
    r = simulate(s, seed=1, engine=engine)
    assert r.summary["rollback_cause"] == "alert", r.summary
    assert r.summary["rollback_trigger"] == "rollout"
