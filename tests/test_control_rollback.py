"""Rollback: progress deadline, manual rollback after the burn-rate alert, and what each strategy undoes.

Fleet of 4, instances ready 10s after start, release at t=10s, analysis every 10s,
failure_limit 2, rollback.duration 5s, on_call.ack 1m; the fake driver ticks once a second.
"""
import math

import pytest

from simlab.control import FleetState, Phase, SetWeight, StartInstances, StopInstances, VersionCount, WindowStats
from tests.helpers.control import HEALTHY, ScriptedMetrics, build_scenario, drive

FAIL = WindowStats(requests=100, errors=50)
CANARY = {"kind": "canary", "steps": [{"weight": 25, "bake": "10m"}, {"weight": 100}]}
ROLLING = {"kind": "rolling", "batch": 2, "max_surge": 1, "max_unavailable": 0, "bake": "1m"}
BLUE_GREEN = {"kind": "blue_green", "warmup": "30s", "keep_old": "30m"}
RESTORED = FleetState(old=VersionCount(alive=4, ready=4), new=VersionCount(alive=0, ready=0))


def crash_loop(version: str, k: int) -> float:
    """New instances never become ready; old ones start in 10s."""
    return math.inf if version == "new" else 10.0


@pytest.mark.parametrize(
    "strategy, waited_for, waited_since, done_at",
    [
        (CANARY, "1 canary instances ready", 10.0, 75.0),  # old fleet intact: new instances stopped, done
        (BLUE_GREEN, "4 green instances ready", 10.0, 75.0),
        (ROLLING, "2 new instances ready", 11.0, 76.0),  # surged one new instance, stopped no old one
        ({"kind": "big_bang"}, "4 new instances ready", 10.0, 85.0),  # old fleet gone: restarted at 75, ready at 85
    ],
    ids=["canary", "blue_green", "rolling", "big_bang"],
)
def test_progress_deadline_rolls_back_when_new_instances_never_become_ready(strategy, waited_for, waited_since,
                                                                            done_at):
    scenario = build_scenario(strategy={**strategy, "progress_deadline": "1m"})
    run = drive(scenario, startup=crash_loop)
    c = run.controller
    deadline = waited_since + 60.0
    assert (c.outcome, c.detected_at, c.rollback_started_at, c.rollback_done_at) == (
        "rolled_back", deadline, deadline, done_at)
    assert [(t, d["reason"]) for t, kind, d in run.trace if kind == "rollback_started"] == [
        (deadline, f"progress deadline: waited 60s for {waited_for}")]
    assert not [a for t, a in run.actions if deadline <= t < deadline + 5.0]  # rollback.duration passes first
    assert run.final == RESTORED


def test_big_bang_rollback_finishes_only_once_the_old_fleet_is_ready_again():
    run = drive(build_scenario(strategy={"kind": "big_bang", "progress_deadline": "1m"}), startup=crash_loop)
    assert run.milestones()[-3:] == [
        (70.0, "rollback_started", {"reason": "progress deadline: waited 60s for 4 new instances ready",
                                     "cause": "deadline"}),
        (75.0, "weight", {"new_percent": None}),
        (85.0, "rollback_finished", {}),
    ]
    assert run.actions_between(70.0) == [
        (75.0, StartInstances("old", 4)),
        (75.0, SetWeight(None)),
        (75.0, StopInstances("new", 4)),  # never ready: nothing to drain
    ]


def burning_from(start: float):
    """Every request bad from `start` on, in every alert window."""
    return lambda t, seconds: FAIL if t >= start else HEALTHY


def test_big_bang_is_rolled_back_by_the_on_call_after_the_burn_rate_alert():
    scenario = build_scenario(strategy={"kind": "big_bang"})
    run = drive(scenario, metrics=ScriptedMetrics(total=burning_from(30.0)), until=300.0, stop_when_done=False)
    assert run.trace == [
        (10.0, "release_started", {"strategy": "big_bang", "version": "v2"}),
        (10.0, "step_started", {"step": 0, "what": "replace all instances"}),
        (10.0, "weight", {"new_percent": None}),
        (20.0, "promoted", {}),
        (30.0, "alert", {"burn_rate_long": pytest.approx(500.0), "burn_rate_short": pytest.approx(500.0)}),
        (30.0, "detected", {"reason": "SLO burn-rate alert"}),
        (90.0, "rollback_started", {"reason": "on-call rolled back after the alert", "cause": "alert"}),  # alert + ack (1m)
        (95.0, "weight", {"new_percent": None}),  # + rollback.duration: old fleet restarted
        (106.0, "rollback_finished", {}),  # old ready at 105, the new fleet drained, confirmed a tick later
    ]
    assert run.controller.outcome == "rolled_back" and run.controller.done
    assert run.final == RESTORED


@pytest.mark.parametrize(
    "strategy, rollback, metrics, detected_at",
    [
        ({"kind": "big_bang"}, {"automatic": True}, ScriptedMetrics(total=burning_from(30.0)), 30.0),
        ({**ROLLING, "analysis": False}, {"automatic": True}, ScriptedMetrics(total=burning_from(30.0)), 30.0),
        (CANARY, {"automatic": False}, ScriptedMetrics(new=lambda t: FAIL), 30.0),  # 2nd failed measurement
    ],
    ids=["big_bang", "rolling_without_analysis", "canary_manual"],
)
def test_manual_rollback_starts_an_on_call_ack_after_detection(strategy, rollback, metrics, detected_at):
    scenario = build_scenario(strategy=strategy, rollback=rollback)
    run = drive(scenario, metrics=metrics, until=400.0, stop_when_done=False)
    c = run.controller
    assert (c.detected_at, c.rollback_started_at) == (detected_at, detected_at + 60.0)
    assert c.outcome == "rolled_back" and run.final == RESTORED


def test_until_the_on_call_acts_the_rollout_carries_on():
    scenario = build_scenario(strategy={"kind": "rolling", "batch": 1, "bake": 0, "analysis": False})
    run = drive(scenario, metrics=ScriptedMetrics(total=burning_from(20.0)), until=300.0, stop_when_done=False)
    assert [(t, kind) for t, kind, _ in run.milestones()] == [
        (10.0, "release_started"), (10.0, "weight"), (10.0, "step_started"),
        (20.0, "alert"), (20.0, "detected"),
        (21.0, "step_started"), (32.0, "step_started"), (43.0, "step_started"), (54.0, "promoted"),
        (80.0, "rollback_started"),  # alert + ack: the bad release is already everywhere
        (85.0, "weight"), (96.0, "rollback_finished"),
    ]
    assert run.actions_between(80.0) == [
        (85.0, StartInstances("old", 4)), (85.0, SetWeight(None)), (95.0, StopInstances("new", 4))]
    assert run.controller.outcome == "rolled_back" and run.final == RESTORED


def test_a_burn_rate_below_the_threshold_raises_no_alert():
    mild = WindowStats(requests=1000, errors=10)  # 1% bad: burn rate 10 < 14.4
    run = drive(build_scenario(strategy={"kind": "big_bang"}), metrics=ScriptedMetrics(total=lambda t, s: mild),
                until=300.0, stop_when_done=False)
    assert "alert" not in [kind for _, kind, _ in run.trace] and run.controller.outcome == "promoted"


def test_blue_green_rolls_back_by_switching_traffic_to_the_kept_blue_fleet():
    run = drive(build_scenario(strategy=BLUE_GREEN), metrics=ScriptedMetrics(new=lambda t: FAIL if t >= 50 else HEALTHY))
    c = run.controller
    assert run.measurements() == [(60.0, "failed", 1), (70.0, "failed", 2)]  # analysed from the switch at 50
    assert (c.detected_at, c.rollback_done_at, c.outcome) == (70.0, 75.0, "rolled_back")
    assert run.actions_between(70.0) == [(75.0, SetWeight(0)), (75.0, StopInstances("new", 4))]
    assert run.final == RESTORED


def test_rolling_rolls_back_by_restarting_old_instances_before_draining_new_ones():
    run = drive(build_scenario(strategy=ROLLING), metrics=ScriptedMetrics(new=lambda t: FAIL))
    c = run.controller
    assert (c.detected_at, c.outcome) == (30.0, "rolled_back")
    assert run.actions_between(30.0) == [
        (35.0, StartInstances("old", 1)),  # one old instance was replaced at 20
        (35.0, SetWeight(None)),
        (35.0, StopInstances("new", 1)),  # keeps 3 old + 1 new ready
        (45.0, StopInstances("new", 1)),  # the restarted old instance is ready
    ]
    assert c.rollback_done_at == 46.0
    ready = [s.old.ready + s.new.ready for t, s in run.states if t >= 30.0]
    assert min(ready) == 4  # rolling back never takes capacity below the fleet size
    assert run.final == RESTORED


def test_blue_green_rollback_is_faster_than_rolling():
    bg = drive(build_scenario(strategy=BLUE_GREEN), metrics=ScriptedMetrics(new=lambda t: FAIL)).controller
    rolling = drive(build_scenario(strategy=ROLLING), metrics=ScriptedMetrics(new=lambda t: FAIL)).controller
    assert bg.rollback_done_at - bg.rollback_started_at == 5.0  # rollback.duration, nothing to start
    assert rolling.rollback_done_at - rolling.rollback_started_at == 16.0  # + startup of the old instance


def test_canary_rollback_moves_traffic_back_and_stops_the_canary():
    run = drive(build_scenario(strategy=CANARY), metrics=ScriptedMetrics(new=lambda t: FAIL))
    assert run.actions_between(30.0) == [(35.0, SetWeight(0)), (35.0, StopInstances("new", 1))]
    assert run.controller.rollback_done_at == 35.0 and run.controller.weight == 0


def test_a_crashed_old_instance_does_not_turn_a_canary_rollback_into_a_restart():
    """Hand-made observations: one old instance is restarting when the rollback acts."""
    from simlab.control import RolloutController

    c = RolloutController(build_scenario(strategy=CANARY))
    failing = ScriptedMetrics(new=lambda t: FAIL)
    whole, canary = VersionCount(4, 4), VersionCount(1, 1)
    assert c.tick(10.0, FleetState(whole, VersionCount(0, 0)), failing.at(10.0)) == [
        SetWeight(0), StartInstances("new", 1)]
    assert c.tick(20.0, FleetState(whole, canary), failing.at(20.0)) == [SetWeight(25.0)]
    assert c.tick(30.0, FleetState(whole, canary), failing.at(30.0)) == []
    assert c.rollback_started_at == 30.0
    one_restarting = FleetState(VersionCount(alive=4, ready=3), canary)
    assert c.tick(35.0, one_restarting, failing.at(35.0)) == [SetWeight(0), StopInstances("new", 1)]
    assert (c.rollback_done_at, c.weight, c.done) == (35.0, 0, True)


def test_an_alert_that_stopped_burning_by_the_ack_is_resolved_not_rolled_back():
    # A big bang's own start-up gap burns for a while, then the good release serves.
    scenario = build_scenario(strategy={"kind": "big_bang"})
    run = drive(scenario, metrics=ScriptedMetrics(total=lambda t, s: FAIL if 10 <= t < 40 else HEALTHY),
                until=300.0, stop_when_done=False)
    assert [(t, kind) for t, kind, _ in run.trace] == [
        (10.0, "release_started"), (10.0, "alert"), (10.0, "detected"),  # monitoring is watched before acting
        (10.0, "step_started"), (10.0, "weight"), (20.0, "promoted"),
        (70.0, "alert_resolved"),  # the on-call looks at alert + ack and finds nothing burning
    ]
    c = run.controller
    assert (c.outcome, c.detected_at, c.rollback_started_at, c.done) == ("promoted", None, None, True)


def test_rolling_back_is_the_phase_from_the_rollback_start_to_its_end_and_only_then():
    run = drive(build_scenario(strategy=CANARY), metrics=ScriptedMetrics(new=lambda t: FAIL))
    c = run.controller
    rolling_back = [t for t, phase in run.phases if phase == Phase.ROLLING_BACK]
    assert (rolling_back[0], rolling_back[-1] + 1) == (c.rollback_started_at, c.rollback_done_at) == (30.0, 35.0)
    assert rolling_back == [30.0, 31.0, 32.0, 33.0, 34.0]
    assert [str(p) for t, p in run.phases if t in (9.0, 10.0, 35.0)] == ["stable", "rollout", "rolled_back"]
    assert (c.phase, c.rolling_back, c.done) == ("rolled_back", False, True)
