"""Validation against the prediction: the judging, the `validate:` block, `simlab chaos generate`, and validate and
the suite on a staging the user started (repaired in place, never replaced nor stopped; the blast-radius control).

The judging tests need no staging; the others share one 2-instance staging the module starts and stops (about
20 s). The real runs judged against right and wrong scenarios are in test_chaos_suite.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from simlab.chaos.prediction import FIGURES, Interval, Prediction, judge, slo_check
from simlab.scenario.validation import Validation

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "experiments" / "suite"


def _prediction(validation: Validation = Validation(), outcomes=None, **figures) -> Prediction:
    intervals = {f.name: Interval(None, None, 0, 20) for f in FIGURES}
    intervals.update(figures)
    return Prediction("s", "f", 1, 20, outcomes or {"rolled_back": 20}, intervals, validation)


OBSERVED = {"outcome": "rolled_back", "bad": 30, "detected_at_s": 5.0, "rollback_done_at_s": 6.0,
            "latency_p99_ms": 120.0}


def test_a_figure_inside_its_allowed_range_passes_and_one_outside_says_which_and_by_how_much():
    p = _prediction(bad=Interval(20, 40, 20, 20), detected_at=Interval(3, 4, 20, 20),
                    rollback_done_at=Interval(4, 5, 20, 20), latency_p99=Interval(100, 110, 20, 20))
    checks = {c.figure: c for c in judge(p, OBSERVED)}
    assert all(c.passed for c in checks.values()), [c.line() for c in checks.values()]
    # Default tolerances: 10 requests + 50%, 5 s + 10%, 20 ms + 25%.
    assert checks["bad"].allowed == "0–70" and checks["latency_p99"].allowed == "55–158 ms"
    late = judge(p, {**OBSERVED, "detected_at_s": 12.0, "latency_p99_ms": 170.0})
    missed = [c.line() for c in late if not c.passed]
    assert missed == [
        "detected_at: observed 12.0 s, predicted 3.0–4.0 s (allowed 0.0–9.4 s): 2.6 s above the allowed range",
        "latency_p99: observed 170 ms, predicted 100–110 ms (allowed 55–158 ms): 12 ms above the allowed range",
    ]


def test_the_outcome_and_a_detection_must_have_happened_in_enough_simulated_runs():
    told_good = _prediction(outcomes={"promoted": 20}, bad=Interval(0, 2, 20, 20), latency_p99=Interval(100, 110, 20, 20))
    checks = {c.figure: c for c in judge(told_good, OBSERVED)}
    assert checks["outcome"].line() == ("outcome: observed rolled_back, predicted promoted in 20 of 20: rolled_back "
                                        "happened in 0 of 20 simulated runs, fewer than 5% (1)")
    assert checks["detected_at"].miss == "staging had one; the simulation had none in 20 of 20 runs"
    # One run of 20 is enough at the default 5%; a detection staging did not have must be absent from a run too.
    rare = _prediction(outcomes={"promoted": 19, "rolled_back": 1}, detected_at=Interval(3, 3, 1, 20))
    assert {c.figure for c in judge(rare, OBSERVED) if not c.passed} == {"bad", "latency_p99", "rollback_done_at"}
    always = _prediction(detected_at=Interval(3, 4, 20, 20))
    missed = {c.figure: c.miss for c in judge(always, {**OBSERVED, "detected_at_s": None}) if not c.passed}
    assert missed["detected_at"] == "staging had none; the simulation had one in 20 of 20 runs"
    assert slo_check({"bad": 12, "requests": 600}, 99.0).miss == "1.00% over the error budget"
    assert slo_check({"bad": 5, "requests": 600}, 99.0).passed


def test_the_validate_block_sets_runs_and_tolerances_and_leaves_the_fingerprint_alone():
    from simlab.scenario import parse_scenario

    text = (SUITE / "canary-bad.yaml").read_text()
    with_block = parse_scenario(text)
    without = parse_scenario(text.split("\nvalidate:\n")[0] + "\n")
    assert with_block.validation.runs == 10 and with_block.validation.tolerance.detected_at.absolute == 6.0
    assert with_block.validation.tolerance.latency_p99.absolute == pytest.approx(0.02)
    assert without.validation is None
    assert with_block.fingerprint() == without.fingerprint()  # it changes what is judged, not what runs
    # Written and read back as `validate` (a staging's scenario.json, a pool worker's copy).
    assert type(with_block).model_validate_json(with_block.model_dump_json()) == with_block
    assert "validate" in json.loads(with_block.model_dump_json())


def test_a_bad_validate_block_is_one_line_naming_the_field_and_the_schema_agrees(tmp_path):
    import jsonschema

    from simlab.scenario.schema import scenario_schema

    path = tmp_path / "s.yaml"
    path.write_text((SUITE / "canary-bad.yaml").read_text().replace("bad: {absolute: 15,", "bad: {absolute: 15s,"))
    done = subprocess.run([sys.executable, "-m", "simlab", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "validate.tolerance.bad.absolute: expected a number, found '15s'" in done.stderr
    validator = jsonschema.Draft202012Validator(scenario_schema())
    assert list(validator.iter_errors(yaml.safe_load(path.read_text())))
    assert not list(validator.iter_errors(yaml.safe_load((SUITE / "canary-bad.yaml").read_text())))


def test_generate_writes_the_experiment_validate_runs_with_the_deploy_and_the_prediction(tmp_path, capsys):
    from chaoslib.experiment import ensure_experiment_is_valid

    from simlab.cli import main

    from simlab.chaos.generate import generated_experiment
    from simlab.chaos.prediction import predict
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario

    scenario = SUITE / "scenarios" / "zone-outage-blue-green.yaml"
    out = tmp_path / "ci" / "zone.json"
    assert main(["chaos", "generate", str(scenario), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}: 1 method activities, the prediction of 10 runs under extensions\n"
    experiment = json.loads(out.read_text())
    ensure_experiment_is_valid(experiment)
    (deploy,) = experiment["method"]
    assert deploy["provider"]["func"] == "deploy" and deploy["provider"]["arguments"]["load"] is True
    assert deploy["provider"]["arguments"]["scenario"] == \
        "${simlab_experiment_dir}/" + os.path.relpath(scenario, out.parent)
    assert experiment["rollbacks"][0]["provider"]["func"] == "restore"
    assert experiment["runtime"] == {"rollbacks": {"strategy": "always"}}
    ext = experiment["extensions"][0]
    s = staging_scenario(load_scenario(scenario))
    assert ext["fingerprint"] == s.fingerprint() == ext["prediction"]["fingerprint"]
    assert ext["prediction"]["outcomes"] == {"promoted": 10}
    assert ext["failures_injected_by_the_deploy"] == [{"kind": "zone_outage", "zone": 1, "at": 1.0, "duration": 3.0}]
    as_yaml = tmp_path / "zone.yaml"
    assert main(["chaos", "generate", str(scenario), "-o", str(as_yaml), "--runs", "4"]) == 0
    assert yaml.safe_load(as_yaml.read_text())["extensions"][0]["prediction"]["runs"] == 4
    # The shipped experiment is what generate writes for it today (same prediction: the runs are seeded).
    shipped = json.loads((SUITE / "zone-outage-blue-green.json").read_text())
    assert shipped == generated_experiment(s, "scenarios/zone-outage-blue-green.yaml", "experiments/suite",
                                           "reports/chaos/suite-zone-outage-blue-green", predict(s))


# --- a staging the user started -----------------------------------------------------------------------------

HYPOTHESIS = {
    "title": "the fleet serves", "description": "The hypothesis alone: both instances in rotation, requests succeed.",
    "configuration": {"simlab_state_dir": {"type": "env", "key": "SIMLAB_STATE_DIR"}},
    "steady-state-hypothesis": {"title": "serving", "probes": [
        {"type": "probe", "name": "both-in-rotation", "tolerance": 2, "provider": {
            "type": "python", "module": "simlab.chaos.probes", "func": "ready_instances", "arguments": {"settle": 5}}},
        {"type": "probe", "name": "requests-succeed", "tolerance": [0.95, 1.0], "provider": {
            "type": "python", "module": "simlab.chaos.probes", "func": "success_ratio", "arguments": {"requests": 20}}},
    ]},
    "method": [],
}


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    """A staging the user started (the suite's 2-instance fleet), and an experiment that only checks it serves."""
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario
    from simlab.staging.supervisor import Staging

    tmp = tmp_path_factory.mktemp("users")
    st = Staging.up(staging_scenario(load_scenario(SUITE / "canary-bad.yaml")), tmp / "state")
    hypothesis = tmp / "serves.json"
    hypothesis.write_text(json.dumps(HYPOTHESIS))
    try:
        yield st, hypothesis
    finally:
        Staging.open(st.dir).down() if st.state_file.exists() else st.down()


def _validate(st, hypothesis: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simlab", "validate", str(SUITE / "canary-bad.yaml"), "--dir",
                           str(st.dir), "--out", str(out), "--experiment", str(hypothesis)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_validate_restarts_an_instance_of_a_users_staging_in_place_and_leaves_the_staging_running(users, tmp_path):
    from simlab.staging.supervisor import Staging

    st, hypothesis = users
    haproxy = st.services["haproxy"].pid
    victim = st.members["old-0"]
    os.kill(victim.record.pid, signal.SIGKILL)  # a crash no simlab saw: the staging is partly damaged
    done = _validate(st, hypothesis, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"old-0 (old, pid {victim.record.pid}, port {victim.record.port}) is not running" in done.stdout
    assert "restarted it in place before the run" in done.stdout
    assert "prediction: the experiment deployed nothing" in done.stdout
    after = Staging.open(st.dir)  # the same staging, not a new one, and still running
    assert after.services["haproxy"].pid == haproxy and after.info.identity == st.info.identity
    assert after.members["old-0"].record.port == victim.record.port and after.running()


def test_a_suite_on_a_users_staging_leaves_it_running_and_its_junit_names_the_blast_radius(users, tmp_path):
    from simlab.staging.faults import dependency_fault
    from simlab.staging.supervisor import Staging

    st, _ = users
    items = tmp_path / "items"
    items.mkdir()
    blast = items / "blast-radius.json"
    blast.write_bytes((ROOT / "experiments" / "chaos" / "dependency-failure-blast-radius.json").read_bytes())
    bad = {**HYPOTHESIS, "method": [{"type": "action", "name": "kill", "provider": {
        "type": "python", "module": "simlab.chaos.actions", "func": "kill_instances", "arguments": {"instances": 1}}}]}
    (items / "a-typo.json").write_text(json.dumps(bad))
    junit = tmp_path / "report.xml"
    done = subprocess.run([sys.executable, "-m", "simlab", "chaos", "suite", str(items), "--dir", str(st.dir),
                           "--out", str(tmp_path / "out"), "--junit", str(junit)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"using the running staging in {st.dir}" in done.stdout and "0 of 2 passed" in done.stdout
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "1")
    typo = next(c for c in root.iter("testcase") if c.get("name") == "a-typo.json").find("error").get("message")
    assert "chaos ran nothing and wrote no journal: argument 'instances' is not part of the function signature" in typo
    failed = next(c for c in root.iter("testcase") if c.get("name") == "blast-radius.json")
    message = failed.find("failure").get("message")
    assert message.startswith("failed: the run ended interrupted: the blast-radius control stopped it: error rate ")
    assert "passed the limit 0.050 by " in message
    journal = json.loads((tmp_path / "out" / "blast-radius" / "journal.json").read_text())
    assert journal["status"] == "interrupted" and journal["duration"] < 15  # the method alone would take 30 s
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [("restore-every-fault", "succeeded")]
    (ext,) = journal["extensions"]
    # The limit is the staging scenario's error budget (99% availability) x the experiment's factor 5.
    assert ext["interrupted"] and ext["limits"]["error_rate"] == pytest.approx(0.05)
    assert ext["worst"]["error_rate"] > ext["limits"]["error_rate"] and ext["limits"]["p99_ms"] == pytest.approx(1250)
    assert dependency_fault(st.dir) is None
    assert Staging.open(st.dir).running()  # the user's staging, left as the user started it


def test_validate_refuses_a_users_staging_whose_haproxy_is_gone_and_replaces_nothing(users, tmp_path):
    from simlab.staging.supervisor import Staging

    st, hypothesis = users
    before = Staging.open(st.dir)
    pids = {name: m.record.pid for name, m in before.members.items()}
    os.kill(before.services["haproxy"].pid, signal.SIGKILL)
    done = _validate(st, hypothesis, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the staging in {st.dir} is damaged: haproxy (pid {before.services['haproxy'].pid}) not running" \
        in done.stderr
    after = Staging.open(st.dir)
    assert {name: m.record.pid for name, m in after.members.items()} == pids and all(map(after.alive, pids))
