"""End to end on the request engine: each strategy, good and bad releases, migrations, reproducibility."""
from __future__ import annotations

import pytest

from simlab import SUMMARY_KEYS, simulate
from tests.helpers.scenarios import scenario

BAD = [{"kind": "error_rate", "rate": 0.2}]


@pytest.mark.parametrize("strategy", ["canary", "rolling", "blue_green", "big_bang"])
def test_a_good_release_is_promoted_by_every_strategy(strategy):
    result = simulate(scenario(strategy), seed=1)
    s = result.summary
    assert list(s.to_dict())[: len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert s["outcome"] == "promoted"
    assert s["detected_at_s"] is None and s["rollback_done_at_s"] is None
    assert s["deploy_duration_s"] > 0
    assert result.timeline["new_weight"].iloc[-1] == pytest.approx(100.0)
    assert result.timeline["old_ready"].iloc[-1] == 0


@pytest.mark.parametrize("strategy", ["canary", "rolling"])
def test_a_bad_release_is_rolled_back_by_analysis(strategy):
    result = simulate(scenario(strategy, **{"release.defects": BAD}), seed=1)
    s = result.summary
    assert s["outcome"] == "rolled_back"
    assert s["analysis_failures"] == 2  # failure_limit
    assert s["rollback_done_at_s"] > s["detected_at_s"] > 0
    kinds = list(result.events["kind"])
    assert kinds.index("detected") < kinds.index("rollback_started") < kinds.index("rollback_finished")
    after = result.timeline[result.timeline["t"] >= 120 + s["rollback_done_at_s"] + 5]
    assert after["new_ready"].max() == 0 and after["failed"].sum() == 0
    assert s["failed_after_rollback"] == result.timeline.loc[result.timeline.t >= 120 + s["rollback_done_at_s"], "failed"].sum()


def test_canary_hurts_far_fewer_users_than_big_bang_on_the_same_seed():
    canary = simulate(scenario("canary", **{"release.defects": BAD}), seed=3).summary
    big_bang = simulate(scenario("big_bang", **{"release.defects": BAD}), seed=3).summary
    assert big_bang["outcome"] == "rolled_back"  # by the on-call, after the burn-rate alert
    assert canary["bad"] * 5 < big_bang["bad"]


def test_blue_green_rolls_back_faster_than_rolling():
    def rollback_time(strategy):
        s = simulate(scenario(strategy, **{"release.defects": BAD}), seed=2).summary
        assert s["outcome"] == "rolled_back"
        return s["rollback_done_at_s"] - s["rollback_started_at_s"]

    assert rollback_time("blue_green") < rollback_time("rolling")


def test_a_non_backward_compatible_migration_keeps_failing_after_rollback():
    migration = {"duration": "30s", "lock_error_rate": 0.3, "backward_compatible": False}
    result = simulate(scenario("canary", **{"release.defects": BAD, "release.migration": migration}), seed=1)
    s, tl = result.summary, result.timeline
    assert s["outcome"] == "rolled_back"
    after = tl[tl["t"] >= 120 + s["rollback_done_at_s"] + 5]
    assert after["failed"].sum() > 0.9 * after["offered"].sum()  # old code cannot read the new schema
    assert s["failed_after_rollback"] >= after["failed"].sum()


def test_a_compatible_migration_only_hurts_while_it_holds_locks():
    migration = {"duration": "30s", "lock_error_rate": 0.3, "backward_compatible": True}
    result = simulate(scenario("canary", **{"release.migration": migration}), seed=1)
    tl = result.timeline
    during = tl[(tl["t"] >= 121) & (tl["t"] < 149)]
    after = tl[tl["t"] >= 160]
    assert during["failed"].sum() > 0
    assert after["failed"].sum() == 0
    assert result.summary["outcome"] == "promoted"


def test_crash_loop_is_rolled_back_at_the_progress_deadline():
    result = simulate(
        scenario("canary", **{"release.defects": [{"kind": "crash_loop"}], "strategy.progress_deadline": "3m"}), seed=1
    )
    s = result.summary
    assert s["outcome"] == "rolled_back"
    assert s["detected_at_s"] == pytest.approx(180, abs=2)
    assert s["failed"] == 0  # crash-looping instances never enter rotation


def test_same_seed_same_numbers_and_strategies_share_the_traffic():
    a = simulate(scenario("canary", **{"release.defects": BAD}), seed=5)
    b = simulate(scenario("canary", **{"release.defects": BAD}), seed=5)
    assert a.summary.to_dict() == b.summary.to_dict()
    assert a.timeline.equals(b.timeline)
    c = simulate(scenario("rolling", **{"release.defects": BAD}), seed=5)
    assert list(a.timeline["offered"]) == list(c.timeline["offered"])  # common random numbers
    d = simulate(scenario("canary", **{"release.defects": BAD}), seed=6)
    assert list(a.timeline["offered"]) != list(d.timeline["offered"])


def test_detection_is_never_earlier_than_monitoring_allows():
    # First canary traffic can only be visible after delay + one scrape; the analysis then needs two failures.
    result = simulate(scenario("canary", **{"release.defects": BAD}), seed=1)
    first_weight = result.events[(result.events.kind == "weight") & (result.events.time > 120)]
    first_traffic = first_weight[first_weight.detail.map(lambda d: (d["new_percent"] or 0) > 0)].time.min()
    detected = 120 + result.summary["detected_at_s"]
    assert detected >= first_traffic + 10 + 5 + 30  # delay + scrape + a second failed interval


def test_zone_outage_takes_capacity_away_until_it_ends():
    failures = [{"kind": "zone_outage", "zone": 1, "at": "5m", "duration": "2m"}]
    result = simulate(scenario("canary", **{"release": None, "failures": failures}), seed=1)
    tl = result.timeline
    assert tl[(tl.t > 310) & (tl.t < 415)]["old_ready"].max() == 4  # 2 of 6 instances in zone 1
    assert tl[tl.t > 460]["old_ready"].min() == 6
    assert result.summary["outcome"] == "no_release"
    assert result.summary["min_capacity"] == pytest.approx(4 / 6)


def test_dependency_failure_adds_latency_and_errors_to_everyone():
    failures = [{"kind": "dependency", "at": "5m", "duration": "1m", "add_latency": "300ms", "error_rate": 0.1}]
    result = simulate(scenario("canary", **{"release": None, "failures": failures, "traffic.rps": 50}), seed=1)
    tl = result.timeline
    window = tl[(tl.t >= 300) & (tl.t < 358)]
    assert window["latency_p50_ms"].median() > 300
    assert window["failed_error"].sum() > 0.05 * window["offered"].sum()
    assert tl[tl.t < 295]["failed"].sum() == 0


def test_instance_crashes_fail_in_flight_requests_and_restart():
    failures = [{"kind": "instance_crash", "mtbf": "3m", "restart": "20s"}]
    result = simulate(scenario("canary", **{"release": None, "failures": failures}), seed=1)
    crashes = result.events[result.events.kind == "instance_crash"]
    assert len(crashes) > 10
    assert result.summary["failed_reset"] > 0
    assert result.timeline["old_down"].max() >= 1
    assert result.timeline["old_ready"].iloc[-1] + result.timeline["old_down"].iloc[-1] + result.timeline["old_starting"].iloc[-1] == 6


def test_memory_leak_slows_the_new_version_then_kills_it():
    leak = [{"kind": "memory_leak", "oom_after": "2m", "max_slowdown": 8}]
    result = simulate(scenario("blue_green", **{"release.defects": leak, "duration": "25m"}), seed=1)
    ooms = result.events[(result.events.kind == "instance_crash")]
    assert len(ooms) > 0 and all(d["why"] == "oom" for d in ooms.detail)
    assert result.summary["outcome"] == "rolled_back"


def test_least_outstanding_black_holes_a_crashed_instance_unless_the_balancer_redispatches():
    """A crashed instance answers nothing, looks least loaded, and draws traffic until health checks notice."""
    failures = [{"kind": "instance_crash", "mtbf": "3m", "restart": "20s"}]
    common = {"release": None, "failures": failures, "fleet.load_balancer": "least_outstanding",
              "fleet.health_check": {"interval": "5s", "unhealthy_after": 3, "healthy_after": 1}}
    without = simulate(scenario("canary", **common, **{"fleet.redispatch": False}), seed=4).summary
    with_redispatch = simulate(scenario("canary", **common), seed=4).summary
    assert without["failed_reset"] > 10 * max(1, with_redispatch["failed_reset"])
