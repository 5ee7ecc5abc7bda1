"""The scenario's failures on the real fleet: a degraded dependency, zone outages, crashes."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from simlab.errors import StagingError
from simlab.scenario import parse_scenario
from simlab.simulation import simulate
from simlab.staging import faults, procs
from simlab.staging.deployer import deploy
from simlab.staging.faults import FaultSchedule
from simlab.staging.supervisor import Staging
from staging_helpers import (
    SMALL, deploy_scenario, get_many, small_scenario, until_every_instance, wait_for,
)


# -- the schedule (pure) ---------------------------------------------------------
def _schedule(failures: str, seed: int = 1) -> FaultSchedule:
    return FaultSchedule(parse_scenario(SMALL + "failures:\n" + failures), np.random.default_rng(seed))


def test_windows_begin_and_end_on_time_and_a_window_inside_one_tick_still_happens():
    sched = _schedule(
        "  - {kind: dependency, at: 3s, duration: 4s, error_rate: 0.5, add_latency: 20ms}\n"
        "  - {kind: zone_outage, zone: 0, at: 5s, duration: 200ms}\n"
    )
    steps = {t: [s.kind for s in sched.step(float(t), [])] for t in range(10)}
    assert steps[3] == ["dependency_on"] and steps[7] == ["dependency_off"]
    assert steps[5] == ["zone_down"] and steps[6] == ["zone_up"] or steps[6] == ["zone_down", "zone_up"]
    assert sum(len(v) for v in steps.values()) == 4
    assert sched.active_dependency(2.9) is None
    assert sched.active_dependency(3.0) == {"add_latency": 0.02, "error_rate": 0.5}


def test_overlapping_dependency_failures_combine_as_the_simulator_does():
    sched = _schedule(
        "  - {kind: dependency, at: 0s, duration: 10s, error_rate: 0.5}\n"
        "  - {kind: dependency, at: 5s, duration: 10s, error_rate: 0.5, add_latency: 10ms}\n"
    )
    assert sched.active_dependency(6.0) == {"add_latency": 0.01, "error_rate": 0.75}


def test_instance_crashes_are_a_poisson_process_per_instance_with_the_scenarios_mtbf():
    sched = _schedule("  - {kind: instance_crash, mtbf: 20s, restart: 2s}\n", seed=7)
    running = [f"old-{i}" for i in range(5)]
    crashes = [s for t in range(2001) for s in sched.step(float(t), running)]
    expected = 5 * 2000 / 20.0 * (20.0 * (1 - math.exp(-1 / 20.0)))  # per-tick probability 1 - exp(-1/mtbf)
    assert abs(len(crashes) - expected) < 4 * math.sqrt(expected), (len(crashes), expected)
    assert {s.detail["restart_after"] for s in crashes} == {1.5}  # restart less the 500 ms start-up
    again = _schedule("  - {kind: instance_crash, mtbf: 20s, restart: 2s}\n", seed=7)
    assert [s for t in range(2001) for s in again.step(float(t), running)] == crashes


def test_a_bad_dependency_fault_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="error_rate: expected a probability"):
        faults.set_dependency_fault(tmp_path, error_rate=1.5)
    with pytest.raises(ValueError, match="add_latency: expected seconds"):
        faults.set_dependency_fault(tmp_path, add_latency=-1)
    assert faults.dependency_fault(tmp_path) is None


# -- on the real fleet -----------------------------------------------------------
def test_a_dependency_fault_reaches_every_instance_and_clears(staging):
    faults.set_dependency_fault(staging.dir, add_latency=0.05, error_rate=0.5)
    until_every_instance(staging, lambda _, took: took >= 0.05, 10.0, "every instance to add the fault's 50 ms")
    t0 = time.monotonic()
    statuses = get_many(staging.url + "/", 200)
    took = time.monotonic() - t0
    failed = sum(s >= 500 for s in statuses) / len(statuses)
    assert 0.35 < failed < 0.65, failed
    assert took > 200 * 0.05 / 8 * 0.9  # 50 ms more per request, 8 at a time
    staging.restore()
    # Under 50 ms once: only an instance that no longer adds the fault's latency answers that fast.
    until_every_instance(staging, lambda status, took: status == 200 and took < 0.05, 10.0,
                         "every instance to serve without the fault")
    assert all(s == 200 for s in get_many(staging.url + "/", 100))


def test_a_zone_outage_takes_its_instances_down_until_the_zone_is_back(tmp_path):
    st = Staging.up(small_scenario("staging: {fleet: {zones: 3}}\n"), tmp_path / "state")
    try:
        assert sorted(st.zone_of(n) for n in st.members) == [0, 1, 2]
        with pytest.raises(StagingError, match="zone 3 does not exist"):
            st.zone_down(3)
        down = st.zone_down(1)
        assert down == ["old-1"] and not procs.is_running(st.members["old-1"].record)
        wait_for(lambda: st.ready_counts()["old"] == 2, 5, "HAProxy to take zone 1 out")
        assert all(s == 200 for s in get_many(st.url + "/", 60))  # the other zones serve
        assert st.reap() == []  # held down: not a crash to restart
        assert Staging.open(st.dir).running()  # a held instance is not a stale staging
        st.zone_up(1)
        wait_for(lambda: st.ready_counts()["old"] == 3, 10, "zone 1's instance back in rotation")
    finally:
        st.down()


def test_a_deploy_injects_the_scenarios_failures_and_matches_the_simulated_timing(tmp_path):
    # A good release under a dependency failing half the requests from 6 s to 10 s, and zone 1 down 12-16 s.
    extra = (
        "staging: {duration: 22s, fleet: {instances: 2, zones: 2}, strategy: {kind: big_bang},\n"
        "          failures: [{kind: dependency, at: 6s, duration: 4s, error_rate: 0.5},\n"
        "                     {kind: zone_outage, zone: 1, at: 12s, duration: 4s}]}\n"
    )
    s = deploy_scenario(extra)
    result = deploy(s, tmp_path / "state", with_load=True)
    tl = result.timeline.set_index("t")
    kinds = list(result.events["kind"])
    for kind in ("dependency_failure_started", "dependency_failure_ended", "zone_down", "zone_up"):
        assert kind in kinds
    errors = tl["failed_error"]
    during, outside = errors.loc[7:9].sum(), errors.loc[:5].sum() + errors.loc[12:].sum()
    assert during > 0.3 * tl["offered"].loc[7:9].sum() and outside <= 2, (during, outside)
    # Zone 1 held one instance: it was down during the outage and came back before the end.
    assert (tl["old_down"].loc[13:15] + tl["new_down"].loc[13:15]).min() >= 1
    assert tl.iloc[-1]["new_ready"] + tl.iloc[-1]["old_ready"] == 2
    # The simulator, given the same scenario, fails requests in the same window.
    sim = simulate(s).timeline.set_index("t")
    assert sim["failed"].loc[7:9].sum() > 0.3 * sim["offered"].loc[7:9].sum()
    assert not (tmp_path / "state" / "dependency.json").exists()
