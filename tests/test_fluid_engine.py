"""The fluid engine's contract: the same Result shape, reproducible, batch rows equal single runs, control exact."""
from __future__ import annotations

import numpy as np
import pytest

from simlab import SUMMARY_KEYS, simulate
from simlab.engines.fluid.engine import FluidEngine, Lockstep, simulate_batch
from simlab.engines.fluid.instances import READY
from simlab.results import TIMELINE_COLUMNS
from simlab.rng import stream
from simlab.simulation import choose_engine
from tests.helpers.scenarios import scenario

BAD = [{"kind": "error_rate", "rate": 0.2}]
SHORT = {"duration": "6m", "release.at": "1m"}


def test_same_result_shape_as_the_request_engine_and_every_request_ends_once():
    result = simulate(scenario("canary", **{"release.defects": BAD, **SHORT}), seed=1, engine="fluid")
    s, tl = result.summary, result.timeline
    assert list(s.to_dict())[: len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert tuple(tl.columns) == TIMELINE_COLUMNS and len(tl) == 360
    assert s["engine"] == "fluid" and s["outcome"] == "rolled_back"
    assert (tl["offered"] == tl["succeeded"] + tl["failed"]).all()
    assert s["requests"] == tl["offered"].sum() and s["failed_error"] > 0
    assert {"release_started", "analysis", "rollback_finished"} <= set(result.events["kind"])


def test_same_seed_same_numbers_other_seed_other_numbers():
    sc = scenario("canary", **{"release.defects": BAD, **SHORT})
    a, b = FluidEngine(sc, 5).run(), FluidEngine(sc, 5).run()
    assert a.summary.to_dict() == b.summary.to_dict() and a.timeline.equals(b.timeline)
    c = FluidEngine(sc, 6).run()
    assert list(a.timeline["offered"]) != list(c.timeline["offered"])
    rolling = FluidEngine(scenario("rolling", **{"release.defects": BAD, **SHORT}), 5).run()
    assert list(a.timeline["offered"]) == list(rolling.timeline["offered"])  # common random numbers


@pytest.mark.parametrize("strategy,extra", [
    ("canary", {"release.defects": BAD}),
    ("rolling", {}),
    ("big_bang", {"release.defects": BAD, "duration": "10m"}),
    ("blue_green", {"release.defects": [{"kind": "crash", "mtbf": "1m"}], "duration": "8m"}),
    ("canary", {"release": None, "failures": [{"kind": "zone_outage", "zone": 1, "at": "2m", "duration": "1m"}]}),
])
def test_waking_the_controller_only_when_it_can_act_changes_nothing(strategy, extra):
    """The batch ticks a controller at its own deadlines and on fleet changes; ticking every second must agree."""
    sc = scenario(strategy, **{**SHORT, **extra})
    woken = FluidEngine(sc, 2).run()
    every = FluidEngine(sc, 2, exact_control=True).run()
    assert woken.events.equals(every.events)
    assert woken.summary.to_dict() == every.summary.to_dict()


@pytest.mark.parametrize("strategy,extra", [
    ("canary", {"release.defects": BAD}),
    ("rolling", {}),
    ("big_bang", {"release.defects": BAD, "duration": "10m"}),  # the burn-rate alert fires
])
def test_an_alert_check_found_quiet_without_the_controller_is_one_where_its_tick_does_nothing(strategy, extra):
    """The batch checks due alerts for all replications at once and ticks only those that may fire or have
    another reason to wake; ticking every controller every second, those ticks return no action and emit no event."""
    sc = scenario(strategy, **{**SHORT, **extra})
    woken = Lockstep(sc, [2], record=True).run()
    every = Lockstep(sc, [2], record=True, exact_control=True).run()
    skipped = set(woken.trace["quiet"])
    assert len(skipped) >= 2 and every.trace["acted"]
    assert not skipped & every.trace["acted"]
    assert woken.controllers[0].events == every.controllers[0].events


def test_a_batch_of_one_is_the_single_run_and_rows_keep_their_seed():
    sc = scenario("canary", **{"release.defects": BAD, **SHORT})
    single = FluidEngine(sc, 3).run().summary.to_dict()
    row = simulate_batch(sc, [3]).iloc[0].to_dict()
    for key in SUMMARY_KEYS:
        if isinstance(single[key], float):
            assert row[key] == pytest.approx(single[key]), key
        elif single[key] is None:
            assert row[key] is None or row[key] != row[key], key  # None or NaN in a DataFrame
        else:
            assert row[key] == single[key], key
    batch = simulate_batch(sc, [3, 4, 5])
    assert list(batch["seed"]) == [3, 4, 5] and (batch["outcome"] == "rolled_back").all()


def test_bad_release_drawn_per_replication_from_the_release_stream():
    sc = scenario("canary", **{"release.defects": BAD, **SHORT})
    seeds = list(range(12))
    df = simulate_batch(sc, seeds, p_bad=0.3)
    expected = [stream(s, "release").random() < 0.3 for s in seeds]
    assert list(df["bad_release"]) == expected and 0 < sum(expected) < len(seeds)
    assert (df[df.bad_release]["outcome"] == "rolled_back").all()
    assert (df[~df.bad_release]["outcome"] == "promoted").all()
    good = df[~df.bad_release]
    # a good release ships without its defect: no errors; the service-time tail past the 2 s timeout may still
    # time out a request in 10^5, as it does on the request engine (1 timeout in 12 of these runs there)
    assert good["failed_error"].max() == 0
    assert good["failed"].sum() <= 1e-4 * good["requests"].sum()


def test_auto_picks_the_request_engine_for_small_runs_and_fluid_for_large_fleets():
    small = scenario("canary", **SHORT)
    assert choose_engine(small) == "request"
    assert simulate(small, seed=1, engine="auto").summary["engine"] == "request"
    many = scenario("canary", **{"fleet.instances": 150, "duration": "2m", "release.at": "1m"})
    busy = scenario("canary", **{"duration": "4h"})  # 2.16 million requests at utilisation 0.25
    assert choose_engine(many) == "fluid" and choose_engine(busy) == "fluid"
    assert simulate(many, seed=1, engine="auto").summary["engine"] == "fluid"


def test_crashes_take_instances_down_and_back():
    failures = [{"kind": "instance_crash", "mtbf": "2m", "restart": "20s"}]
    result = FluidEngine(scenario("canary", **{"release": None, "failures": failures, "duration": "8m"}), 1).run()
    tl = result.timeline
    crashes = result.events[result.events.kind == "instance_crash"]
    assert len(crashes) > 5 and tl["old_down"].max() >= 1
    alive = tl["old_ready"] + tl["old_down"] + tl["old_starting"]
    assert (alive == 6).all()  # a crashed instance restarts, it is not replaced
    assert result.summary["failed_reset"] > 0  # what it held when it crashed


def test_lockstep_counts_match_the_instances_it_keeps():
    sim = Lockstep(scenario("rolling", **SHORT), [1, 2]).run()
    for r, fleet in enumerate(sim.fleets):
        ins = fleet.ins
        ready = ins.in_rot[:ins.n] & (ins.state[:ins.n] == READY)
        live = [int(np.count_nonzero(ready & (ins.version[:ins.n] == v))) for v in (0, 1)]
        assert list(sim.plane.live[r]) == live
        assert fleet.fleet_state().new.ready == 6 and np.isnan(sim.plane.weight[r])


def test_a_memory_leak_slows_the_new_version_and_ends_in_ooms():
    leak = [{"kind": "memory_leak", "fraction": 1.0, "oom_after": "2m", "max_slowdown": 4}]
    result = FluidEngine(scenario("canary", **{"release.defects": leak, "duration": "8m", "release.at": "1m"}), 1).run()
    crashes = result.events[result.events.kind == "instance_crash"]
    assert len(crashes) > 0 and {d["why"] for d in crashes["detail"]} == {"oom"}
    assert result.timeline["latency_p99_ms"].max() > 250  # slower than the 200 ms p99 of a healthy instance


def test_blocks_of_unchanged_ticks_draw_the_same_distribution_as_single_ticks(monkeypatch):
    """Quiet stretches are drawn k ticks at a time; counts and control agree with drawing tick by tick."""
    from simlab.engines.fluid.plane import Plane

    sc = scenario("canary", **{"release.defects": BAD, "duration": "10m", "release.at": "1m"})
    seeds = list(range(6))
    blocked = Lockstep(sc, seeds).run()
    assert blocked.block_ticks > 0.3 * 600  # the quiet seconds before the release and after the rollback
    monkeypatch.setattr(Plane, "tick_block", lambda self, t, k: False)
    single = Lockstep(sc, seeds).run()
    assert single.block_ticks == 0
    a = [blocked.summary(r) for r in range(len(seeds))]
    b = [single.summary(r) for r in range(len(seeds))]
    assert [x["requests"] for x in a] == [x["requests"] for x in b]  # arrivals are drawn up front
    assert [x["outcome"] for x in a] == [x["outcome"] for x in b] == ["rolled_back"] * len(seeds)
    errors_a, errors_b = sum(x["failed_error"] for x in a), sum(x["failed_error"] for x in b)
    assert errors_a == pytest.approx(errors_b, rel=0.1) and errors_a > 500
    slow_a, slow_b = sum(x["slow"] for x in a), sum(x["slow"] for x in b)
    assert slow_a == pytest.approx(slow_b, rel=0.15, abs=20)
    assert np.mean([x["latency_p99_ms"] for x in a]) == pytest.approx(np.mean([x["latency_p99_ms"] for x in b]), rel=0.02)


def test_starting_instances_at_once_is_starting_them_one_by_one():
    """launch_many (what a StartInstances action does) makes the same instances, draws and events as one at a time;
    the instances started together wait as one heap entry, and come up and enter rotation as one by one."""
    leak = [{"kind": "memory_leak", "fraction": 0.5, "oom_after": "2m", "max_slowdown": 4}]
    sc = scenario("canary", **{"release.defects": leak, **SHORT})
    one, many = Lockstep(sc, [4]).fleets[0], Lockstep(sc, [4]).fleets[0]
    for _ in range(5):
        one.launch_many(1, 1, 7.0)
    many.launch_many(1, 5, 7.0)
    names = ("zone", "first_check", "leaky", "state", "in_rot")
    fields = lambda f: [getattr(f.ins, k)[:f.ins.n].tolist() for k in names]  # noqa: E731
    assert fields(one) == fields(many) and any(many.ins.leaky)
    assert len(one.heap) == 5 and len(many.heap) == 1 and {e[0] for e in one.heap} == {many.heap[0][0]}
    for f in (one, many):
        f.advance(60.0, inclusive=False)  # up at 17 s, in rotation at their checks, OOM kills pending
    assert fields(one) == fields(many) and all(many.ins.in_rot[6:11])
    assert sorted(e[:2] + e[3:] for e in one.heap) == sorted(e[:2] + e[3:] for e in many.heap)
    assert one.counts == many.counts and one.leaky_alive == many.leaky_alive
