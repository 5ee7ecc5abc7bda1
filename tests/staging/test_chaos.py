"""Chaos Toolkit on the real staging: the `chaos` CLI and `simlab validate` as subprocesses, journals read back.

chaoslib is imported only inside the test that needs it (never with Locust in
the same process); everything else talks to `chaos` and `simlab` as a user would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.chaos import probes
from simlab.chaos.experiment import experiment_for
from simlab.scenario import parse_scenario
from simlab.staging.faults import dependency_fault, set_dependency_fault
from staging_helpers import SMALL, until_every_instance, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).parent / "chaos"


def _chaos_run(experiment: Path, state: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    journal = out / "journal.json"
    done = subprocess.run(
        [str(CHAOS), "--no-version-check", "--log-file", str(out / "chaos.log"), "run",
         "--journal-path", str(journal), str(experiment)],
        env={**os.environ, "SIMLAB_STATE_DIR": str(state)}, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    return done, json.loads(journal.read_text())


def _simlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simlab", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def _activity(journal: dict, name: str) -> dict:
    return next(r for r in journal["run"] + journal["rollbacks"] if r["activity"]["name"] == name)


def test_kill_one_instance_holds_on_three_and_the_rollback_brings_it_back(staging, tmp_path):
    pids = {name: m.record.pid for name, m in staging.members.items()}
    done, journal = _chaos_run(ROOT / "experiments/chaos/kill-one-instance.json", staging.dir, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    killed = _activity(journal, "kill-one-stable-instance")["output"]
    assert len(killed) == 1 and killed[0] in pids
    # Held down through the method: HAProxy had 2 in rotation once its health checks saw the kill.
    assert _activity(journal, "instances-in-rotation-after-the-kill")["output"] == 2
    # The rollback (strategy always) started it again, as a new process on the same port.
    assert _activity(journal, "restore-every-fault")["output"] == killed
    assert probes.ready_instances(settle=10.0, state_dir=str(staging.dir)) == 3
    from simlab.staging.supervisor import Staging

    after = Staging.open(staging.dir).members
    assert after[killed[0]].record.pid != pids[killed[0]] and not after[killed[0]].held
    assert all(after[n].record.pid == pid for n, pid in pids.items() if n != killed[0])


def test_a_slower_dependency_shows_in_the_p99_users_see_until_restore(staging):
    from simlab.chaos import actions

    where = {"state_dir": str(staging.dir)}
    before = probes.latency_p99_ms(requests=20, **where)
    fault = actions.dependency_fault(add_latency="80ms", **where)  # returns once every instance has it
    assert fault == {"add_latency": 0.08, "error_rate": 0.0}
    during = probes.latency_p99_ms(requests=20, **where)
    assert actions.restore(settle=5.0, **where) == []  # no instance was down
    after = probes.latency_p99_ms(requests=20, **where)
    # Service times of ~10 ms (exponential): p99 of 20 well under 80 ms, and 80 ms more with the fault.
    assert before < 80.0 and 80.0 < during < 200.0 and after < 80.0
    assert dependency_fault(staging.dir) is None


def test_a_fault_left_in_place_deviates_validate_exits_1_and_the_rollback_clears_it(staging, tmp_path):
    experiment = {
        "title": "Half the dependency's answers fail",
        "description": "The method leaves the fault in place; only the rollback clears it.",
        "configuration": {"simlab_state_dir": {"type": "env", "key": "SIMLAB_STATE_DIR"}},
        "steady-state-hypothesis": {"title": "requests succeed", "probes": [{
            "type": "probe", "name": "requests-succeed", "tolerance": [0.9, 1.0],
            "provider": {"type": "python", "module": "simlab.chaos.probes", "func": "success_ratio",
                         "arguments": {"requests": 40}},
        }]},
        "method": [{"type": "action", "name": "dependency-fails-half",
                    "provider": {"type": "python", "module": "simlab.chaos.actions", "func": "dependency_fault",
                                 "arguments": {"error_rate": 0.5}}}],
        "rollbacks": [{"type": "action", "name": "restore",
                       "provider": {"type": "python", "module": "simlab.chaos.actions", "func": "restore"}}],
    }
    path = tmp_path / "half-errors.json"
    path.write_text(json.dumps(experiment))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL)
    out = tmp_path / "out"
    done = _simlab("validate", str(scenario), "--dir", str(staging.dir), "--out", str(out), "--experiment", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "deviated: the hypothesis failed after the method: probe requests-succeed returned" in done.stdout
    journal = json.loads((out / "journal.json").read_text())
    assert journal["deviated"] is True and journal["steady_states"]["before"]["steady_state_met"] is True
    ratio = journal["steady_states"]["after"]["probes"][0]["output"]
    assert 0.2 < ratio < 0.8  # about half failed while the fault was in force
    # The experiment has no runtime block: `simlab validate` ran its rollbacks anyway.
    assert dependency_fault(staging.dir) is None
    assert probes.success_ratio(requests=40, state_dir=str(staging.dir)) == 1.0
    # HAProxy counted the failures too; Prometheus has them once it scraped HAProxy after the run.
    wait_for(lambda: probes.error_rate("30s", state_dir=str(staging.dir)) > 0.0, 5.0, "Prometheus to scrape HAProxy")
    assert 0.05 < probes.error_rate("30s", state_dir=str(staging.dir)) < 0.5


def test_experiment_for_a_scenario_with_every_failure_kind_is_valid_and_in_time_order(monkeypatch):
    from chaoslib.experiment import ensure_experiment_is_valid

    monkeypatch.setenv("SIMLAB_STATE_DIR", "/nonexistent")  # validation must not touch a staging
    text = SMALL.replace("  instances: 3\n", "  instances: 3\n  zones: 3\n") + """\
failures:
  - {kind: dependency, at: 20s, duration: 5s, add_latency: 50ms}
  - {kind: zone_outage, zone: 2, at: 4s, duration: 6s}
  - {kind: dependency, at: 12s, duration: 10s, error_rate: 0.1}
  - {kind: instance_crash, mtbf: 90s, restart: 3s}
"""
    scenario = parse_scenario(text)
    experiment = experiment_for(scenario)
    ensure_experiment_is_valid(experiment)
    assert experiment_for(scenario) == experiment  # crash times come from the scenario's seed only
    assert experiment["runtime"] == {"rollbacks": {"strategy": "always"}}
    assert experiment["steady-state-hypothesis"]["probes"][0]["tolerance"] == 3
    assert experiment["steady-state-hypothesis"]["probes"][1]["tolerance"] == [0.999, 1.0]
    method = experiment["method"]
    # Replaying the pauses (and the dependency actions' own propagation wait) gives each activity's start.
    clock, starts = 0.0, []
    for activity in method:
        clock += activity.get("pauses", {}).get("before", 0.0)
        starts.append(clock)
        func = activity["provider"]["func"]
        clock += 1.2 if func in ("dependency_fault", "clear_dependency_fault") else 0.0
    schedule = experiment["extensions"][0]["schedule"]
    ats = [s["at"] for s in schedule]
    assert ats == sorted(ats) and [s["activity"] for s in schedule] == [a["name"] for a in method]
    assert all(start >= at - 1e-6 for start, at in zip(starts, ats))  # never early
    named = [(a["provider"]["func"], a["provider"]["arguments"]) for a in method
             if a["provider"]["func"] not in ("kill_instances", "restart_due")]
    assert named == [
        ("zone_outage", {"zone": 2}), ("restore_zone", {"zone": 2}),
        ("dependency_fault", {"add_latency": 0.0, "error_rate": 0.1}),
        ("dependency_fault", {"add_latency": 0.05, "error_rate": 0.1}),  # the two dependency faults overlap
        ("dependency_fault", {"add_latency": 0.05, "error_rate": 0.0}),  # the first one ended, not the second
        ("clear_dependency_fault", {}),
    ]
    kills = [a for a in method if a["provider"]["func"] == "kill_instances"]
    restarts = [a for a in method if a["provider"]["func"] == "restart_due"]
    assert kills and len(kills) == len(restarts)
    assert all(k["provider"]["arguments"]["restart_after"] == 2.5 for k in kills)  # restart less start-up
    # Every shipped experiment is valid too.
    for path in sorted((ROOT / "experiments/chaos").glob("*.json")):
        ensure_experiment_is_valid(json.loads(path.read_text()))


def test_a_steady_state_not_met_before_the_method_fails_validate_though_chaos_exits_0(staging, tmp_path):
    scenario = tmp_path / "strict.yaml"
    scenario.write_text(SMALL.replace("slo: {latency_threshold: 100ms}",
                                      "slo: {availability: 99.99, latency_threshold: 100ms}"))
    set_dependency_fault(staging.dir, error_rate=0.5)
    until_every_instance(staging, lambda status, _: status == 500, 10.0, "every instance to fail with the fault")
    out = tmp_path / "out"
    done = _simlab("validate", str(scenario), "--dir", str(staging.dir), "--out", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "steady state not met: the hypothesis failed before the method" in done.stdout
    assert "(chaos exited 0)" in done.stdout  # chaos's own exit code would have passed a CI gate
    journal = json.loads((out / "journal.json").read_text())
    # A gate on status and deviated alone would pass this run: only steady_state_met tells.
    assert journal["status"] == "completed" and journal["deviated"] is False and journal["run"] == []
    assert journal["steady_states"]["before"]["steady_state_met"] is False
    assert dependency_fault(staging.dir) is None  # the generated rollback cleared the fault


def test_validate_rejects_a_bad_experiment_before_touching_a_staging(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "title": "t", "description": "d",
        "method": [{"type": "action", "name": "kill",
                    "provider": {"type": "python", "module": "simlab.chaos.actions", "func": "kill_instances",
                                 "arguments": {"instances": 1}}}],
    }))
    state = tmp_path / "state"
    done = _simlab("validate", str(scenario), "--dir", str(state), "--out", str(tmp_path / "out"),
                   "--experiment", str(bad))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a valid Chaos Toolkit experiment" in done.stderr and "instances" in done.stderr
    assert not (state / "state.json").exists()


@pytest.mark.parametrize("call, message", [
    (lambda: probes.ready_instances(), "configuration.simlab_state_dir: expected the staging's state directory"),
    (lambda: probes.ready_instances(version="blue", state_dir="x"), "version: expected old or new"),
    (lambda: probes.success_ratio(requests=0, state_dir="x"), "requests: expected a whole number >= 1, found 0"),
])
def test_probe_arguments_are_checked_with_the_field_and_value(call, message):
    from simlab.errors import ScenarioError

    with pytest.raises(ScenarioError, match=message):
        call()


def test_validate_replays_every_failure_kind_on_a_staging_it_starts_and_stops(tmp_path):
    from simlab.chaos.validate import validate

    text = (SMALL.replace("  instances: 3\n", "  instances: 3\n  zones: 3\n").replace("duration: 60s", "duration: 6s")
            .replace("slo: {latency_threshold: 100ms}", "slo: {availability: 99.0, latency_threshold: 100ms}"))
    scenario = parse_scenario(text + """\
failures:
  - {kind: zone_outage, zone: 1, at: 1s, duration: 2s}
  - {kind: dependency, at: 2s, duration: 2s, add_latency: 20ms, error_rate: 0.2}
  - {kind: instance_crash, mtbf: 15s, restart: 1500ms}
""")
    out = tmp_path / "out"
    result = validate(scenario, out=out)
    assert result.passed and result.chaos_exit == 0, result.reason
    journal = json.loads(result.journal.read_text())
    outputs = [(r["activity"]["provider"]["func"], r["status"], r["output"]) for r in journal["run"]]
    assert outputs == [
        ("zone_outage", "succeeded", ["old-1"]),  # zones are dealt round-robin: old-1 is zone 1's
        ("dependency_fault", "succeeded", {"add_latency": 0.02, "error_rate": 0.2}),
        ("kill_instances", "succeeded", ["old-0"]),  # the first running instance not held by the outage
        ("restore_zone", "succeeded", ["old-1"]),
        ("restart_due", "succeeded", ["old-0"]),  # it ran before old-0's restart was due and waited for it
        ("clear_dependency_fault", "succeeded", {"cleared": {"add_latency": 0.02, "error_rate": 0.2}}),
    ]
    assert [p.after for p in result.probes] == [3, 1.0]
    # The staging validate started is gone: everything stopped, nothing left to clean.
    assert not (out / "state" / "state.json").exists()


DEPLOY = """\
name: chaos-deploy-test
duration: 8s
seed: 5
fleet:
  instances: 3
  workers: 4
  queue_limit: 8
  service_time: {dist: exponential, mean: 10ms}
  startup: 500ms
  health_check: {interval: 250ms, unhealthy_after: 2, healthy_after: 2}
traffic: {rps: 20, timeout: 2s}
release: {at: 1s}
strategy: {kind: big_bang}
monitoring: {scrape_interval: 1s, window: 5s, delay: 0s}
slo: {latency_threshold: 100ms}
"""


def test_an_experiment_deploys_on_the_staging_and_reads_the_deploys_summary(staging, tmp_path):
    scenario, out = tmp_path / "deploy.yaml", tmp_path / "deploy-out"
    scenario.write_text(DEPLOY)
    experiment = tmp_path / "deploy.json"
    experiment.write_text(json.dumps({
        "title": "A release ships", "description": "simlab deploy as an action, its summary as a probe.",
        "configuration": {"simlab_state_dir": {"type": "env", "key": "SIMLAB_STATE_DIR"}},
        "method": [
            {"type": "action", "name": "deploy", "provider": {
                "type": "python", "module": "simlab.chaos.actions", "func": "deploy",
                "arguments": {"scenario": str(scenario), "out": str(out), "load": False}}},
            {"type": "probe", "name": "outcome", "provider": {
                "type": "python", "module": "simlab.chaos.probes", "func": "deploy_summary_value",
                "arguments": {"out": str(out), "key": "outcome"}}},
        ],
    }))
    done, journal = _chaos_run(experiment, staging.dir, tmp_path)
    assert done.returncode == 0 and journal["status"] == "completed", done.stderr[-2000:]
    summary = _activity(journal, "deploy")["output"]
    assert summary["scenario"] == "chaos-deploy-test" and summary["engine"] == "staging"
    assert summary["outcome"] == _activity(journal, "outcome")["output"] == "promoted"
    assert json.loads((out / "summary.json").read_text())["outcome"] == "promoted"
    from simlab.staging.supervisor import Staging

    assert Staging.open(staging.dir).ready_counts() == {"old": 0, "new": 3}  # big bang: the new version serves


def test_chaos_discover_finds_simlabs_actions_and_probes(tmp_path):
    chaos = Path(sys.executable).with_name("chaos")
    out = tmp_path / "discovery.json"
    subprocess.run([str(chaos), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "discover",
                    "--no-install", "--discovery-path", str(out), "simlab"], check=True, capture_output=True,
                   cwd=tmp_path, timeout=120)
    found = {(a["type"], a["name"]) for a in json.loads(out.read_text())["activities"]}
    assert {("action", "kill_instances"), ("action", "restore"), ("probe", "success_ratio"),
            ("probe", "ready_instances")} <= found
