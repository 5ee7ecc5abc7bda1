"""Pieces of the staging fleet that need no process: weights, configs, defects."""
import time

import numpy as np
import pytest

from simlab.staging import haproxy, prometheus
from simlab.staging.behaviour import Behaviour
from simlab.staging.service import latency_buckets
from staging_helpers import small_scenario


@pytest.mark.parametrize("new,baseline,cuts", [
    (10, 0, {"new": 100_000, "baseline": 100_000, "all": 0}),
    (10, 10, {"new": 100_000, "baseline": 200_000, "all": 0}),
    (0.5, 0, {"new": 5_000, "baseline": 5_000, "all": 0}),
    (0, 0, {"new": 0, "baseline": 0, "all": 0}),
    (100, 0, {"new": 1_000_000, "baseline": 1_000_000, "all": 0}),
    (None, 0, {"new": 0, "baseline": 0, "all": 1}),
])
def test_the_split_is_cumulative_cuts_of_a_draw_in_parts_per_million(new, baseline, cuts):
    # A draw below `new` picks the new version's backend, below `baseline` the baseline's, else the stable one's.
    assert haproxy.split_cuts(new, baseline) == cuts
    assert haproxy.split_map_text(new, baseline) == "".join(f"{k} {v}\n" for k, v in cuts.items())


def test_a_server_s_pool_is_its_name_s_version():
    assert [haproxy.pool_of(n) for n in ("old-0", "new-12", "baseline-3", "impostor")] == ["old", "new", "baseline",
                                                                                          "old"]


def test_the_frontend_picks_a_version_s_backend_then_its_balancer_an_instance(tmp_path):
    cfg = haproxy.render_config(small_scenario(), 8080, 8081, tmp_path / "s p" / "sock", "0123456789abcdef")
    rules = [ln.split(None, 1)[1] for ln in cfg.splitlines() if ln.strip().startswith("use_backend")]
    assert rules == ["app_all if by_instance", "app_new if draw_new has_new",
                     "app_baseline if !draw_new draw_baseline has_baseline",
                     "app_old if has_old", "app_new if has_new", "app_baseline if has_baseline"]
    assert f'map_str_int("{tmp_path}/s p/{haproxy.SPLIT_MAP}",0)' in cfg  # beside the socket, quoted
    assert [ln.split()[1] for ln in cfg.splitlines() if ln.startswith("backend")] == [
        "app_old", "app_new", "app_baseline", "app_all"]
    assert cfg.count("balance roundrobin\n") == 4 and cfg.count("http-check expect hdr") == 4


def test_an_instance_is_in_rotation_only_while_both_its_servers_are():
    up, down = haproxy.ServerState("new-0", "127.0.0.1", 1, 2, 0, 100, "new"), haproxy.ServerState(
        "new-0", "127.0.0.1", 1, 0, 0, 100, "app_all")
    assert up.merged(up).in_rotation and not up.merged(down).in_rotation and not down.merged(up).in_rotation
    assert not up.merged(None).in_rotation
    drained = haproxy.ServerState("new-0", "127.0.0.1", 1, 2, 0x08, 100, "app_all")
    assert up.merged(drained).draining and not up.merged(drained).in_rotation


@pytest.mark.parametrize("lb,balance", list(haproxy.BALANCE.items()))
def test_haproxy_config_maps_the_balancer_and_binds_loopback(lb, balance, tmp_path):
    s = small_scenario(f"\nstaging: {{fleet: {{load_balancer: {lb}}}}}\n")
    cfg = haproxy.render_config(s, 8080, 8081, tmp_path / "sock", "0123456789abcdef")
    assert f"balance {balance}\n" in cfg
    binds = [ln.split()[1] for ln in cfg.splitlines() if ln.strip().startswith("bind")]
    assert binds == ["127.0.0.1:8080", "127.0.0.1:8081"]
    assert haproxy.check_args(s) == "check inter 250ms fall 2 rise 2"


def test_prometheus_config_uses_the_scrape_interval(tmp_path):
    cfg = prometheus.render_config(small_scenario(), tmp_path / "t.json", 9000)
    assert "scrape_interval: 1000ms" in cfg and "127.0.0.1:9000" in cfg and "file_sd_configs" in cfg


def test_latency_buckets_include_the_slo_threshold():
    assert 0.1 in latency_buckets(0.1) and 0.3 in latency_buckets(0.3)


def _behaviour(extra, version="new", release_epoch=0.0):
    return Behaviour(small_scenario(extra), version, np.random.default_rng(1), release_epoch)


def test_error_rate_touches_only_the_new_version():
    extra = "release: {at: 0s, defects: [{kind: error_rate, rate: 0.3}]}\n"
    new, old = _behaviour(extra), _behaviour(extra, "old")
    errors = sum(new.plan(10.0, 0.0).error for _ in range(4000)) / 4000
    assert errors == pytest.approx(0.3, abs=0.03)
    assert not any(old.plan(10.0, 0.0).error for _ in range(500))


def test_fraction_onset_and_load_gate_a_defect():
    extra = ("release: {at: 0s, defects: [{kind: latency, add: 1s, fraction: 0.5, onset: {after: 5s}, "
             "only_above_rps: 100}]}\n")
    b = _behaviour(extra, release_epoch=1000.0)
    b.offered_rps = 200
    assert max(b.plan(1004.0, 0.0).service_time for _ in range(200)) < 1.0  # before onset
    slow = sum(b.plan(1006.0, 0.0).service_time > 1.0 for _ in range(2000)) / 2000
    assert slow == pytest.approx(0.5, abs=0.05)
    b.offered_rps = 50
    assert max(b.plan(1006.0, 0.0).service_time for _ in range(200)) < 1.0  # below the load gate


def test_memory_leak_slows_down_toward_max_slowdown():
    b = _behaviour("release: {at: 0s, defects: [{kind: memory_leak, oom_after: 10s, max_slowdown: 3}]}\n")
    leak = b.defects[0]
    assert b.leak_slowdown(leak, 0.0, 0.0) == 1.0
    assert b.leak_slowdown(leak, 5.0, 0.0) == pytest.approx(2.0)
    assert b.leak_slowdown(leak, 50.0, 0.0) == pytest.approx(3.0)


def test_a_crash_loop_exits_at_start_and_crashes_come_mtbf_apart_on_average():
    loop = _behaviour("release: {at: 0s, defects: [{kind: crash_loop}]}\n")
    assert loop.crash_loops(time.time()) and loop.crash_after(0.0) is None
    crash = _behaviour("release: {at: 0s, defects: [{kind: crash, mtbf: 10s}]}\n")
    waits = [crash.crash_after(0.0) for _ in range(2000)]
    assert np.mean(waits) == pytest.approx(10.0, rel=0.1)


def test_the_staging_rate_matches_the_simulators_offered_load():
    from simlab.engines.traffic import OfferedLoad
    from simlab.staging.shape import offered_rate

    s = small_scenario("staging: {traffic: {pattern: {kind: diurnal, period: 60s, peak_to_trough: 3}, "
                       "spikes: [{at: 10s, duration: 5s, multiplier: 2}]}}\n")
    load = OfferedLoad(s)
    for t in (0.5, 10.5, 14.9, 15.0, 33.3):
        assert offered_rate(s, t) == pytest.approx(load.rate(t))


def test_the_state_file_keeps_typed_metadata_and_every_instance_through_a_round_trip(tmp_path):
    from simlab.staging.members import Allocation, Member
    from simlab.staging.procs import ProcRecord
    from simlab.staging.state import SavedState, StagingInfo

    record = ProcRecord(name="old-0", role="instance", pid=1, port=2, started=3, argv=["x"], version="old")
    saved = SavedState(
        StagingInfo(scenario="s", created=1.0, port=1, stats_port=2, prometheus_port=3, cleaned=("old-9",)),
        Allocation(spare_ports=[20001], zones_down=[1]), {"haproxy": record}, {},
        {"old-0": Member(record, held=True, restart_at=float("inf"), zone=1)},
    )
    saved.write(tmp_path / "state.json")
    back = SavedState.read(tmp_path / "state.json")
    assert back.info == saved.info and back.alloc == saved.alloc and back.services == saved.services
    member = back.members["old-0"]
    assert member.record == record and member.held and member.restart_at == float("inf") and member.zone == 1
