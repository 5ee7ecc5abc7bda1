"""Deploys on the real fleet, driven by the shared controller, measured from Locust's records."""
from __future__ import annotations

import json
import os


from simlab.control.recording import replay_file
from simlab.results import SUMMARY_KEYS, TIMELINE_COLUMNS
from simlab.simulation import simulate
from simlab.staging import procs
from simlab.staging.deployer import deploy
from simlab.staging.supervisor import Staging
from staging_helpers import DEPLOY, deploy_scenario, rollout_steps as _steps, wait_for

SHORT = "staging: {duration: 24s}\n"
BAD = "staging: {duration: 24s, release: {defects: [{kind: error_rate, rate: 0.3}]}}\n"


def test_a_good_release_is_promoted_by_canary_and_written_like_a_simulation(tmp_path):
    record = tmp_path / "observations.jsonl"
    result = deploy(deploy_scenario(SHORT), tmp_path / "state", with_load=True, record_to=record)
    summary = result.summary.to_dict()
    assert summary["outcome"] == "promoted" and summary["engine"] == "staging"
    assert list(summary)[:len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert summary["failed"] == 0 and summary["requests"] > 0.8 * 40 * 24
    assert summary["detected_at_s"] is None and summary["deploy_duration_s"] > 8  # one 8 s bake at least
    last = result.timeline.iloc[-1]
    assert (last["new_ready"], last["old_ready"], last["new_weight"]) == (2, 0, 100.0)
    kinds = list(result.events["kind"])
    assert kinds.index("release_started") < kinds.index("promoted")
    out = result.write(tmp_path / "out")
    assert list(json.loads((out / "summary.json").read_text())) == list(summary)
    assert (out / "timeline.csv").read_text().splitlines()[0] == ",".join(TIMELINE_COLUMNS)
    assert not (tmp_path / "state" / "state.json").exists()  # the deploy started staging, so it stopped it
    # Fed the recorded observations, a fresh controller makes the deployer's decisions, tick by tick ...
    live = result.extras["controller"]
    replayed = replay_file(record)
    assert replayed.events == live.events and replayed.promoted_at == live.promoted_at
    # ... and the simulator, given the same scenario, takes the same steps.
    assert _steps(simulate(deploy_scenario(SHORT)).extras["controller"].events) == _steps(live.events)


def test_a_bad_release_is_rolled_back_by_canary_and_hurts_far_less_than_big_bang(tmp_path):
    state = tmp_path / "state"
    Staging.up(deploy_scenario(BAD), state)
    try:
        # An earlier good release was promoted: every instance runs it. The bad release that follows
        # starts from a stable fleet again, as the simulator's run of it does.
        assert deploy(deploy_scenario(SHORT), state, with_load=True).summary["outcome"] == "promoted"
        assert Staging.open(state).ready_counts() == {"old": 0, "new": 2}
        record = tmp_path / "observations.jsonl"
        lines = []
        deployed = deploy(deploy_scenario(BAD), state, with_load=True, record_to=record, progress=lines.append)
        assert any("replaced by 2 of the stable version" in line for line in lines)
        first = deployed.timeline.iloc[0]
        assert (first["old_ready"], first["new_ready"]) == (2, 0)
        canary = deployed.summary
        assert canary["outcome"] == "rolled_back" and canary["detected_at_s"] is not None
        replayed = replay_file(record)
        assert replayed.events == deployed.extras["controller"].events and replayed.outcome == "rolled_back"
        assert canary["failed_error"] > 0
        assert Staging.open(state).ready_counts() == {"old": 2, "new": 0}
        big_bang = BAD.replace("}}\n", "}, strategy: {kind: big_bang}}\n")
        bang = deploy(deploy_scenario(big_bang), state, with_load=True).summary
        assert bang["failed"] > 100
        assert canary["failed"] < 0.3 * bang["failed"], (canary["failed"], bang["failed"])
    finally:
        st = Staging.open(state)  # the deploys changed the fleet: read what runs now
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)


def test_sigint_during_a_canary_leaves_the_stable_version_serving_alone(tmp_path):
    import signal
    import subprocess
    import sys

    state = tmp_path / "state"
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY + "staging: {duration: 120s, release: {at: 2s}}\n")
    Staging.up(deploy_scenario(), state)
    try:
        # Started with SIGINT ignored, as a non-interactive shell starts a background job (`simlab deploy &` in
        # a CI script): the deploy must still take SIGINT as an interrupt. PYTHONFAULTHANDLER: if it ever
        # hangs after the SIGINT, SIGABRT makes it print every thread's stack into the failure.
        proc = subprocess.Popen([sys.executable, "-m", "simlab", "deploy", str(path), "--dir", str(state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        for line in proc.stdout:  # wait until the canary takes traffic
            if "weight new_percent=50" in line:
                break
        st = Staging.open(state)
        assert any(m.record.version == "new" for m in st.members.values())
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)  # the deploy would run 120 s: still running means the SIGINT was lost
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"deploy still running 60 s after SIGINT; its stacks:\n{err[-6000:]}") from None
        assert code == 1
        assert "deploy interrupted" in proc.stderr.read()
        st = Staging.open(state)
        assert {m.record.version for m in st.members.values()} == {"old"}
        assert not any(procs.is_running(r) for r in procs_of_version(st, "new"))
        wait_for(lambda: st.ready_counts() == {"old": 2, "new": 0}, 5.0, "both stable instances in rotation")
        answers = [procs.http_get(st.url + "/") for _ in range(40)]
        assert all(status == 200 for status, _ in answers)
    finally:
        st = Staging.open(state)
        st.down()


def procs_of_version(st, version):
    return [m.record for m in st.members.values() if m.record.version == version]


def test_a_canary_on_instances_sharing_processes_crashes_and_restarts_one_instance_at_a_time(tmp_path):
    state = tmp_path / "state"
    st = Staging.up(deploy_scenario(SHORT), state, per_process=2)
    try:
        # A crash defect kills one hosted instance (exit status 3), not its host-mate; it is restarted.
        crashy = "staging: {duration: 16s, release: {at: 2s, defects: [{kind: crash, mtbf: 3s}]}}\n"
        result = deploy(deploy_scenario(crashy), state, with_load=True)
        crashed = result.events[result.events["kind"] == "instance_crashed"]
        assert len(crashed) >= 1 and {d["exit_code"] for d in crashed["detail"]} == {3}
        assert all(d["instance"].startswith("new-") for d in crashed["detail"])
        assert "instance_restarted" in set(result.events["kind"])
        assert (result.timeline["new_down"] > 0).any()  # counted down until its restart
        st = Staging.open(state)
        hosts = {m.host for m in st.members.values()}
        assert len(hosts) == 2 and all(procs.is_running(st.hosts[h]) for h in hosts)  # no host died of it
    finally:
        st = Staging.open(state)
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)
