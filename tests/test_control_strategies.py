"""Each strategy's exact step sequence on a good release, as a trace of (time, event, detail).

Fleet of 4, instances ready 10s after start, release at t=10s, analysis every 10s
on healthy metrics; the fake driver ticks once a second.
"""
from simlab.control import Phase, SetWeight, StartInstances, StartMigration, StopInstances
from tests.helpers.control import build_scenario, drive


def analysis_times(run):
    return [t for t, status, failures in run.measurements()]


def test_big_bang_replaces_every_instance_at_once():
    run = drive(build_scenario(strategy={"kind": "big_bang"}))
    assert run.trace == [
        (10.0, "release_started", {"strategy": "big_bang", "version": "v2"}),
        (10.0, "step_started", {"step": 0, "what": "replace all instances"}),
        (10.0, "weight", {"new_percent": None}),
        (20.0, "promoted", {}),
    ]
    assert run.actions == [
        (10.0, StopInstances("old", 4)),
        (10.0, StartInstances("new", 4)),
        (10.0, SetWeight(None)),
    ]
    assert run.controller.outcome == "promoted" and run.controller.promoted_at == 20.0


def test_rolling_replaces_in_batches_within_surge_and_bakes_each_batch():
    run = drive(build_scenario(strategy={"kind": "rolling", "batch": 2, "max_surge": 1, "max_unavailable": 0,
                                         "bake": "20s"}))
    assert run.milestones() == [
        (10.0, "release_started", {"strategy": "rolling", "version": "v2"}),
        (10.0, "weight", {"new_percent": None}),
        (10.0, "step_started", {"step": 0, "new_instances": 2}),
        # batch 0 replaced at 30, confirmed a tick later; bake 20s (a passed measurement at 40) ends at 51
        (51.0, "step_started", {"step": 1, "new_instances": 4}),
        (92.0, "promoted", {}),
    ]
    assert run.actions == [
        (10.0, SetWeight(None)),
        (10.0, StartInstances("new", 1)),  # surge 1: one extra instance at a time
        (20.0, StopInstances("old", 1)),
        (20.0, StartInstances("new", 1)),
        (30.0, StopInstances("old", 1)),
        (51.0, StartInstances("new", 1)),
        (61.0, StopInstances("old", 1)),
        (61.0, StartInstances("new", 1)),
        (71.0, StopInstances("old", 1)),
    ]
    assert analysis_times(run) == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]


def test_rolling_without_surge_takes_instances_out_first():
    run = drive(build_scenario(strategy={"kind": "rolling", "batch": 2, "max_surge": 0, "max_unavailable": 1,
                                         "bake": 0, "analysis": False}))
    assert run.actions == [
        (10.0, SetWeight(None)),
        (10.0, StopInstances("old", 1)),
        (10.0, StartInstances("new", 1)),
        (20.0, StopInstances("old", 1)),
        (20.0, StartInstances("new", 1)),
        (30.0, StopInstances("old", 1)),  # batch 0 ready at 30; batch 1 starts at once (no bake, no analysis)
        (30.0, StartInstances("new", 1)),
        (40.0, StopInstances("old", 1)),
        (40.0, StartInstances("new", 1)),
    ]
    assert [(t, kind) for t, kind, _ in run.trace] == [
        (10.0, "release_started"), (10.0, "weight"), (10.0, "step_started"), (30.0, "step_started"),
        (50.0, "promoted"),
    ]


def test_blue_green_warms_green_switches_at_once_and_keeps_blue():
    run = drive(build_scenario(strategy={"kind": "blue_green", "warmup": "30s", "keep_old": "1m"}))
    assert run.milestones() == [
        (10.0, "release_started", {"strategy": "blue_green", "version": "v2"}),
        (10.0, "weight", {"new_percent": 0}),
        (10.0, "step_started", {"step": 0, "what": "start 4 green instances"}),
        (50.0, "step_started", {"step": 1, "what": "switch traffic to green"}),  # ready at 20 + 30s warmup
        (50.0, "weight", {"new_percent": 100}),
        (50.0, "promoted", {}),
        (110.0, "old_released", {}),  # blue kept for keep_old so a rollback is a switch back
    ]
    assert run.actions == [
        (10.0, SetWeight(0)),
        (10.0, StartInstances("new", 4)),
        (50.0, SetWeight(100)),
        (110.0, StopInstances("old", 4)),
    ]
    assert analysis_times(run) == [60.0, 70.0, 80.0, 90.0, 100.0, 110.0]  # green analysed after the switch


CANARY = {"kind": "canary", "steps": [{"weight": 10, "bake": "30s"}, {"weight": 50, "bake": "30s"}, {"weight": 100}]}


def test_canary_scales_new_instances_to_each_weight_then_promotes():
    run = drive(build_scenario(strategy=CANARY))
    assert run.milestones() == [
        (10.0, "release_started", {"strategy": "canary", "version": "v2"}),
        (10.0, "weight", {"new_percent": 0}),
        (10.0, "step_started", {"step": 0, "weight": 10.0, "new_instances": 1}),
        (20.0, "weight", {"new_percent": 10.0}),  # canary instance ready; bake 30s
        (50.0, "step_started", {"step": 1, "weight": 50.0, "new_instances": 2}),
        (60.0, "weight", {"new_percent": 50.0}),
        (90.0, "step_started", {"step": 2, "weight": 100.0, "new_instances": 4}),
        (100.0, "weight", {"new_percent": 100.0}),
        (100.0, "promoted", {}),
    ]
    assert run.actions == [
        (10.0, SetWeight(0)),
        (10.0, StartInstances("new", 1)),
        (20.0, SetWeight(10.0)),
        (50.0, StartInstances("new", 1)),
        (60.0, SetWeight(50.0)),
        (90.0, StartInstances("new", 2)),
        (100.0, SetWeight(100.0)),
        (100.0, StopInstances("old", 4)),
    ]
    assert analysis_times(run) == [20.0 + 10 * k for k in range(9)]
    assert all(status == "passed" for _, status, _ in run.measurements())


def test_canary_without_analysis_advances_on_bake_alone():
    run = drive(build_scenario(strategy={**CANARY, "analysis": False}))
    assert [(t, kind) for t, kind, _ in run.milestones() if kind in ("step_started", "promoted")] == [
        (10.0, "step_started"), (50.0, "step_started"), (90.0, "step_started"), (100.0, "promoted"),
    ]
    assert run.measurements() == []


def test_migration_runs_before_any_new_instance_starts():
    run = drive(build_scenario(strategy=CANARY, release={"migration": {"duration": "30s"}}))
    assert run.milestones()[:5] == [
        (10.0, "release_started", {"strategy": "canary", "version": "v2"}),
        (10.0, "migration_started", {"duration_s": 30.0}),
        (40.0, "migration_finished", {}),
        (40.0, "weight", {"new_percent": 0}),
        (40.0, "step_started", {"step": 0, "weight": 10.0, "new_instances": 1}),
    ]
    assert run.actions[:2] == [(10.0, StartMigration()), (40.0, SetWeight(0))]
    phases = {t: state.migration for t, state in run.states}
    assert (phases[9.0], phases[10.0], phases[39.0], phases[40.0]) == ("none", "none", "running", "done")
    assert run.controller.outcome == "promoted"


def test_big_bang_migrates_then_replaces():
    run = drive(build_scenario(strategy={"kind": "big_bang"}, release={"migration": {"duration": "1m"}}))
    assert [(t, kind) for t, kind, _ in run.trace] == [
        (10.0, "release_started"), (10.0, "migration_started"), (70.0, "migration_finished"),
        (70.0, "step_started"), (70.0, "weight"), (80.0, "promoted"),
    ]


def test_a_migration_longer_than_the_progress_deadline_is_not_a_stuck_rollout():
    scenario = build_scenario(strategy={**CANARY, "progress_deadline": "1m"}, release={"migration": {"duration": "3m"}})
    run = drive(scenario)
    assert run.controller.outcome == "promoted"
    assert run.controller.detected_at is None
    assert (190.0, "migration_finished", {}) in run.trace


def test_nothing_happens_before_the_release_or_without_one():
    run = drive(build_scenario(release={"at": "1m"}, strategy=CANARY))
    assert run.actions[0][0] == 60.0 and run.trace[0][0] == 60.0
    quiet = drive(build_scenario(release=None), until=120.0)
    assert quiet.actions == [] and quiet.trace == [] and quiet.controller.outcome == "no_release"
    assert len(quiet.states) == 121  # ticked to the end: nothing to settle


def phase_changes(run) -> list[tuple[float, str]]:
    """(time, phase) at each tick where the controller's phase changed, as plain strings."""
    changes: list[tuple[float, str]] = []
    for t, phase in run.phases:
        if not changes or changes[-1][1] != phase:
            changes.append((t, str(phase)))
    return changes


def test_a_promoted_release_goes_through_the_phases_timelines_show():
    run = drive(build_scenario(strategy={"kind": "big_bang"}, release={"at": "5s", "migration": {"duration": "1m"}}))
    # The values are a format: timelines, CSV files and recordings carry them as these strings.
    assert phase_changes(run) == [(0.0, "stable"), (5.0, "migrating"), (65.0, "rollout"), (75.0, "promoted")]
    assert run.controller.phase == Phase.PROMOTED and not run.controller.rolling_back
