"""End to end on the real binaries: up, traffic through HAProxy, health checks, Prometheus, down."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from simlab.staging import procs
from simlab.staging.prometheus import PromQL, PrometheusMetrics
from simlab.staging.supervisor import Staging
from staging_helpers import get_many, small_scenario, wait_for


def test_requests_through_haproxy_succeed_and_show_in_prometheus(staging):
    assert get_many(staging.url + "/", 300).count(200) == 300
    client = PromQL(staging.prometheus_url)
    # Every instance served a share, and Prometheus counted all 300 once the next scrape lands.
    wait_for(lambda: (client.scalar("sum(simlab_requests_total)") or 0) >= 300, 10, "Prometheus to see 300 requests")
    per_instance = client.query("sum by (instance) (simlab_requests_total)")
    assert len(per_instance) == 3 and all(float(r["value"][1]) > 50 for r in per_instance)
    # HAProxy's exporter is a separate target, scraped on its own schedule.
    wait_for(lambda: (client.scalar('sum(haproxy_frontend_http_requests_total{proxy="fe"})') or 0) >= 300, 10,
          "Prometheus to see HAProxy's 300 requests")
    view = PrometheusMetrics(client, staging.scenario)
    wait_for(lambda: view.version_window("old").requests > 0, 10, "a window with requests")
    old = view.version_window("old")
    assert old.errors == 0 and 0.001 < old.latency_p50 < 0.1
    assert view.version_window("new").requests == 0


def test_a_killed_instance_leaves_rotation_by_health_checks(staging):
    victim = "old-1"
    staging.kill_instance(victim)
    hc = staging.scenario.fleet.health_check
    t0 = time.monotonic()
    wait_for(lambda: not staging.api.servers()[victim].up, 5, "HAProxy to mark the killed instance down")
    took = time.monotonic() - t0
    assert took <= hc.interval * (hc.unhealthy_after + 2)
    assert staging.ready_counts() == {"old": 2, "new": 0}
    # Nothing is routed to the dead instance any more.
    assert all(status == 200 for status in get_many(staging.url + "/", 100))
    assert [e[0] for e in staging.reap()] == ["instance_crashed"]


def test_down_leaves_no_process_and_no_port(tmp_path):
    state = tmp_path / "state"
    st = Staging.up(small_scenario(), state)
    records = st.records()
    ports = [r.port for r in records] + [st.info.stats_port]
    assert all(procs.is_running(r) for r in records) and all(procs.port_open(p) for p in ports)
    # A scenario file this simlab cannot read (another version wrote it) must not block the cleanup.
    (state / "scenario.json").write_text('{"name": "from-the-future", "unknown_key": 1}')
    st = Staging.open(state)
    assert st.scenario is None and len(st.records()) == len(records)
    st.down()
    assert not any(procs.is_running(r) for r in records)
    assert not any(procs.port_open(p) for p in ports)
    assert not (state / "state.json").exists()


def test_cli_up_status_down_and_a_crashed_simlab_is_cleaned(tmp_path):
    state = tmp_path / "state"
    scenario = tmp_path / "s.yaml"
    from staging_helpers import SMALL

    scenario.write_text(SMALL)
    cli = [sys.executable, "-m", "simlab"]
    run = lambda *a: subprocess.run(cli + list(a), capture_output=True, text=True, timeout=60)  # noqa: E731
    up = run("staging", "up", str(scenario), "--dir", str(state))
    assert up.returncode == 0, up.stderr
    assert "http://127.0.0.1:" in up.stdout
    status = json.loads(run("staging", "status", "--dir", str(state), "--json").stdout)
    assert [row["health"] for row in status["instances"]] == ["UP"] * 3
    again = run("staging", "up", str(scenario), "--dir", str(state))
    assert again.returncode == 1 and "already running" in again.stderr
    # A crash of simlab that also took an instance with it: the next up notices and cleans.
    st = Staging.open(state)
    records = st.records()
    procs.kill(st.members["old-0"].record)
    up2 = run("staging", "up", str(scenario), "--dir", str(state))
    assert up2.returncode == 0, up2.stderr
    assert "left running by an earlier simlab" in up2.stdout
    assert not any(procs.is_running(r) for r in records)
    new_records = Staging.open(state).records()
    down = run("staging", "down", "--dir", str(state))
    assert down.returncode == 0 and "stopped 5" in down.stdout
    assert not any(procs.is_running(r) for r in new_records)
    assert not any(procs.port_open(r.port) for r in new_records)


def test_a_window_counts_every_request_of_an_instance_born_inside_it(staging):
    # Requests served before Prometheus's first scrape of a new instance still count in its window,
    # as the simulator counts them; increase() alone would see none of them.
    name = staging.start_instance("new", weight=0)
    port = staging.members[name].record.port
    wait_for(lambda: procs.port_open(port), 5, "the new instance to listen")
    served = [procs.http_get(f"http://127.0.0.1:{port}/")[0] for _ in range(40)]
    assert served.count(200) == 40
    client = PromQL(staging.prometheus_url)
    view = PrometheusMetrics(client, staging.scenario)
    # Until a scrape has seen all 40 (the first scrape may land mid-way); the series is younger than the window.
    wait_for(lambda: client.scalar('sum(simlab_requests_total{version="new"})') == 40, 5, "a scrape of all 40")
    assert view.version_window("new").requests == 40


def test_instances_sharing_processes_start_crash_restart_drain_and_stop_one_by_one(tmp_path):
    st = Staging.up(small_scenario(), tmp_path / "state", per_process=2)
    try:
        assert len(st.hosts) == 2 and {m.host for m in st.members.values()} == set(st.hosts)
        assert sorted(len([m for m in st.members.values() if m.host == h]) for h in st.hosts) == [1, 2]
        assert get_many(st.url + "/", 60).count(200) == 60
        # A crash of one instance leaves its host-mate serving; health checks take the dead one out.
        mate = next(n for n, m in st.members.items() if m.host == st.members["old-0"].host and n != "old-0")
        st.kill_instance("old-0")
        assert not st.alive("old-0") and st.alive(mate)
        wait_for(lambda: st.ready_counts()["old"] == 2, 5, "HAProxy to take the killed instance out")
        assert all(s == 200 for s in get_many(st.url + "/", 60))
        st.restart_crashed = True
        assert st.reap() == [("instance_crashed", "old-0", {"exit_code": -9, "crashes": 1})]
        assert [e[0] for e in st.reap()] == ["instance_restarted"]
        wait_for(lambda: st.ready_counts()["old"] == 3, 10, "the restarted instance back in rotation")
        # A stop drains one instance and leaves the rest of its host serving.
        st.begin_stop(mate)
        wait_for(lambda: [e[0] for e in st.reap()] == ["instance_stopped"], 10, f"{mate} to drain and stop")
        assert mate not in st.members and st.alive("old-0")
        ports = [r.port for r in st.records() if r.port]
    finally:
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)
    assert not any(procs.port_open(p) for p in ports)
