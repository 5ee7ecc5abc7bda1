"""Hardening on the real fleet: a hijacked port, a crashed instance, a dead balancer, a damaged state file.

Each test reproduces what a hostile or unlucky user saw (issue 10) and checks what simlab does instead.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simlab.errors import StagingError
from simlab.staging import haproxy, procs
from simlab.staging.deployer import deploy
from simlab.staging.supervisor import Staging
from simlab.staging.sweep import marked, stop_marked
from staging_helpers import DEPLOY, deploy_scenario, wait_for

BAD = "staging: {duration: 20s, release_at: 2s, release: {defects: [{kind: error_rate, rate: 0.3}]}}\n"


class Squatter(http.server.ThreadingHTTPServer):
    """Another program on a port simlab meant for an instance: answers everything 200 and counts the paths."""

    daemon_threads = True

    def __init__(self, port: int):
        self.paths: list[str] = []
        squatter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                squatter.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", port), Handler)
        self.handle_error = lambda request, address: None  # a scrape that hangs up early is no news
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def served(self) -> list[str]:
        """What it was sent besides Prometheus' scrapes of a spare port it happens to be on."""
        return [p for p in self.paths if p != "/metrics"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One staging of the deploy scenario for the tests that leave it as they found it (stable, all running)."""
    state = tmp_path_factory.mktemp("hardening") / "state"
    st = Staging.up(deploy_scenario(), state)
    try:
        yield st
    finally:
        _stop_all(state)


def _stop_all(state: Path) -> None:
    """Whatever a test did to it: stop what the state file knows, then whatever else carries the directory's mark."""
    try:
        Staging.open(state).down()
    except StagingError:
        pass
    finally:
        stop_marked(state, grace=5.0)


def _simlab(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simlab", *map(str, args)], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), **kw)


def test_a_server_on_the_first_spare_port_never_takes_canary_traffic_and_the_bad_release_is_judged(shared):
    port = shared.alloc.spare_ports[0]  # where the canary would start
    squatter = Squatter(port)
    try:
        result = deploy(deploy_scenario(BAD), shared.dir, with_load=True)
        events = result.events
        taken = events[events["kind"] == "port_taken"]
        assert [d["port"] for d in taken["detail"]] == [port]
        started = [d["instance"] for d in events[events["kind"] == "instance_started"]["detail"]]
        assert started and "instance_crashed" not in set(events["kind"])
        assert squatter.served() == []  # not one health check, not one user request
        # The canary served elsewhere, was judged on its own traffic and rolled back.
        assert result.summary["outcome"] == "rolled_back" and result.summary["failed_error"] > 0
        # A server that answers health checks but is not an instance of this staging never enters rotation,
        # even if added to HAProxy by hand: it cannot give the staging's identity.
        shared.api.add_server("impostor", port, 100, haproxy.check_args(shared.scenario))
        try:
            wait_for(lambda: squatter.served().count("/readyz") >= 4, 10, "four health checks of the impostor")
            assert not shared.api.servers()["impostor"].up
            assert shared.ready_counts() == {"old": 2, "new": 0}
        finally:
            shared.api.delete_server("impostor")
    finally:
        squatter.shutdown()
        squatter.server_close()


def test_a_deploy_whose_new_version_never_serves_fails_with_the_reason_and_keeps_what_it_saw(shared, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY + "staging: {duration: 8s, release_at: 1s, release: {defects: [{kind: crash_loop}]}}\n")
    out = tmp_path / "out"
    run = _simlab("deploy", path, "--dir", shared.dir, "--out", out)
    assert run.returncode == 1, run.stderr
    error = run.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: the new version never served"), run.stderr
    assert re.search(r"new-\d+ crashed 1 time \(last exit code 4\)", error[0]) and "`incomplete`" in error[0]
    assert "new version stopped; stable version serving (2 of 2 instances in rotation)" in error[0]
    assert json.loads((out / "summary.json").read_text())["outcome"] == "incomplete"
    st = Staging.open(shared.dir)
    assert st.running() and {m.version for m in st.members.values()} == {"old"}  # as the user left it


def test_a_deploy_restarts_a_crashed_instance_in_place_and_leaves_the_users_staging_up(shared, tmp_path):
    victim = shared.members["old-1"].record
    procs.kill(victim)  # crashed while no simlab watched it
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY + "staging: {duration: 10s, release_at: 1s, strategy: {steps: [{weight: 100}]}}\n")
    run = _simlab("deploy", path, "--dir", shared.dir)
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stdout.splitlines() if "restarted it in place before the deploy" in line]
    assert len(said) == 1 and said[0].startswith(f"old-1 (old, pid {victim.pid}, port {victim.port}) is not running")
    st = Staging.open(shared.dir)
    assert st.running() and procs.is_running(st.services["haproxy"])  # not torn down by the deploy


def test_haproxy_killed_mid_deploy_stops_the_canary_says_what_runs_and_writes_out(tmp_path):
    state, out = tmp_path / "state", tmp_path / "out"
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY + "staging: {duration: 60s, release_at: 1s}\n")
    st = Staging.up(deploy_scenario(), state)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "simlab", "deploy", str(path), "--dir", str(state), "--load",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if "weight new_percent=50" in line:  # the canary takes traffic
                break
        balancer = st.services["haproxy"]
        os.kill(balancer.pid, signal.SIGKILL)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("the deploy did not notice its balancer was gone") from None
        err = proc.stderr.read()
        assert code == 1 and f"HAProxy (pid {balancer.pid}) exited" in err, err
        assert "new version stopped" in err and "nothing serves users" in err and "stable version serving" not in err
        assert json.loads((out / "summary.json").read_text())["engine"] == "staging"
        left = Staging.open(state)
        assert not [n for n, m in left.members.items() if m.record.version == "new"]
        assert not [r for r in marked(state) if r.role == "locust" or "new" in r.argv]
        # The damaged staging is refused, with the commands that put it right, and not torn down.
        again = _simlab("deploy", path, "--dir", state)
        assert again.returncode == 1 and "haproxy (pid" in again.stderr
        assert f"simlab staging down --dir {state}" in again.stderr
        assert procs.is_running(left.services["prometheus"]) and all(procs.is_running(m.record)
                                                                      for m in left.members.values())
    finally:
        _stop_all(state)


def test_down_stops_everything_of_a_killed_deploy_whose_state_file_was_truncated(tmp_path):
    state = tmp_path / "state dir"  # a space: HAProxy's config quotes it
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY + "staging: {duration: 60s, release_at: 1s}\n")
    Staging.up(deploy_scenario(), state)
    try:
        _truncate_a_killed_deploy_and_bring_it_down(state, path)
    finally:
        _stop_all(state)


def _truncate_a_killed_deploy_and_bring_it_down(state: Path, path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simlab", "deploy", str(path), "--dir", str(state), "--load"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if "weight new_percent=50" in line:
                break
        saved = Staging.open(state)
        assert [r.role for r in saved.load.values()] == ["locust"]  # Locust is in the state file
        everything = saved.records()
        ports = [r.port for r in everything if r.port] + [saved.info.stats_port]
        _assert_private(state)
    finally:
        proc.kill()  # a simlab killed without a chance to clean up
        proc.wait()
    text = (state / "state.json").read_text()
    (state / "state.json").write_text(text[: len(text) // 3])
    status = _simlab("staging", "status", "--dir", state)
    assert status.returncode == 2 and "state.json is damaged (not JSON" in status.stderr
    t0 = time.monotonic()
    down = _simlab("staging", "down", "--dir", state)
    took = time.monotonic() - t0
    assert down.returncode == 0, down.stderr
    assert "state.json is damaged" in down.stdout and "locust" in down.stdout, down.stdout
    print(f"down with a truncated state file: {took:.2f}s: {down.stdout.strip()}")
    assert not any(procs.is_running(r) for r in everything) and marked(state) == []
    assert not any(procs.port_open(p) for p in ports)
    assert (state / "state.json.damaged").exists() and not (state / "state.json").exists()


def _assert_private(state: Path) -> None:
    """The state directory is 0700 and nothing in it is readable by other users."""
    assert state.stat().st_mode & 0o777 == 0o700
    loose = [str(p.relative_to(state)) for p in state.rglob("*") if p.stat().st_mode & 0o077]
    assert loose == []
