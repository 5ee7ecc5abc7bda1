"""`simlab chaos suite` on the shipped experiments/suite, as CI runs it: the real staging, real `chaos run`, JUnit read back.

The suite runs once for the module (about 2 minutes: five deploys of 12-18 s, each from a stable fleet, on a
staging the suite starts and stops itself), as a user runs it: each scenario's pair report written (the default
`--report`) and `--runs 8` replications per scenario's prediction (for these scenarios the same intervals as their
`validate.runs: 10`, so no less room); every test reads what it left. `simlab validate --journal` then judges one
of its journals against right and deliberately wrong scenarios, with no second staging run. Last, the blast-radius
control's p99 limit stops a run on the session's shared staging (about 5 s, and 6 s more to start that staging
when no earlier test did).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "experiments" / "suite"
ITEMS = ["canary-bad.yaml", "canary-good.yaml", "latency-regression.yaml", "rolling-kill.json",
         "zone-outage-blue-green.json"]
SCENARIOS = {"canary-bad": "suite-canary-bad", "canary-good": "suite-canary-good",
             "latency-regression": "suite-latency-regression"}  # the items that are scenarios, and their names
RUNS = 8


def _simlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simlab", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suite")
    state, out, junit = tmp / "state", tmp / "out", tmp / "report.xml"
    t0 = time.monotonic()
    try:
        done = _simlab("chaos", "suite", "experiments/suite", "--junit", str(junit), "--out", str(out),
                       "--dir", str(state), "--runs", str(RUNS), timeout=600)
    finally:
        if (state / "state.json").exists():  # only if the suite failed to stop what it started
            from simlab.staging.supervisor import Staging

            Staging.open(state).down()
    return SimpleNamespace(done=done, state=state, out=out, junit=junit, seconds=time.monotonic() - t0)


def test_the_suite_starts_a_staging_runs_every_item_and_stops_it(suite_run):
    done = suite_run.done
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"started a staging in {suite_run.state}" in done.stdout
    for name in ITEMS:
        row = next(line for line in done.stdout.splitlines() if line.strip().startswith(name + " "))
        assert " passed " in row, row
    assert "5 of 5 passed" in done.stdout
    assert not (suite_run.state / "state.json").exists()  # the staging it started is stopped
    left = subprocess.run(["pgrep", "-f", str(suite_run.state)], capture_output=True, text=True).stdout
    assert left == "", left


def test_the_junit_file_has_a_testcase_per_item_with_its_time_and_journal(suite_run):
    root = ET.parse(suite_run.junit).getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "0", "0")
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ITEMS
    for case in cases:
        assert float(case.get("time")) > 5.0  # a deploy each
        assert case.find("failure") is None and case.find("error") is None
        out = case.find("system-out").text
        assert out.startswith(case.get("name") + ": passed") and "--- journal.json ---" in out
        journal = json.loads(out.split("--- journal.json ---", 1)[1])
        assert journal["status"] == "completed" and journal["deviated"] is False
    by_name = {c.get("name"): c.find("system-out").text for c in cases}
    # Scenarios are judged figure by figure against their prediction; so is the generated experiment, against
    # the prediction it carries; the hand-written one is held to its deploy's SLO.
    assert "ok   rollback_done_at: observed" in by_name["canary-bad.yaml"]
    assert "ok   outcome: observed promoted, predicted promoted in 10 of 10" in by_name["zone-outage-blue-green.json"]
    assert "ok   outcome: observed promoted" in by_name["rolling-kill.json"]
    assert "ok   slo: observed" in by_name["rolling-kill.json"]


def test_each_scenario_has_its_pair_report_and_a_prediction_of_the_runs_asked_for(suite_run):
    out = suite_run.out.resolve()
    said = {c.get("name"): c.find("system-out").text for c in ET.parse(suite_run.junit).getroot().iter("testcase")}
    for stem, name in SCENARIOS.items():
        report = out / stem / "report"
        md = (report / "report.md").read_text()
        assert md.startswith(f"# simlab pair: {name}, predicted vs observed\n"), md[:300]
        assert "observed: staging, seed " in md and f"from {out / stem / 'deploy'}_" in md, md[:300]
        assert name in (report / "report.html").read_text()
        assert f"; report: {report / 'report.html'}\n" in said[stem + ".yaml"]
        prediction = json.loads((out / stem / "prediction.json").read_text())["prediction"]
        assert (prediction["scenario"], prediction["runs"]) == (name, RUNS)
        outcome = "promoted" if stem == "canary-good" else "rolled_back"
        assert f"ok   outcome: observed {outcome}, predicted {outcome} in {RUNS} of {RUNS}\n" in said[stem + ".yaml"]
    for stem in ("rolling-kill", "zone-outage-blue-green"):  # experiments are judged by their journal, no report
        assert not (out / stem / "report").exists() and "; report: " not in said[stem + ".json"]
    # --runs is for scenarios: the generated experiment is judged against the prediction it carries.
    assert json.loads((out / "zone-outage-blue-green" / "prediction.json").read_text())["prediction"]["runs"] == 10


def test_every_item_started_from_a_stable_fleet_and_did_what_it_says(suite_run):
    import pandas as pd

    summaries, events = {}, {}
    for name in ITEMS:
        deploy = suite_run.out / Path(name).stem / "deploy"
        first = pd.read_csv(deploy / "timeline.csv").iloc[0]
        assert (first["old_ready"], first["new_ready"]) == (2, 0), (name, first.to_dict())  # all stable, nothing else
        summaries[name] = json.loads((deploy / "summary.json").read_text())
        events[name] = pd.read_csv(deploy / "events.csv")
    moves = {name: e[e["kind"] != "analysis"].to_string() for name, e in events.items()}
    outcomes = {name: (s["outcome"], s.get("rollback_cause")) for name, s in summaries.items()}
    assert outcomes == {"canary-bad.yaml": ("rolled_back", "error_rate"), "canary-good.yaml": ("promoted", None),
                        "latency-regression.yaml": ("rolled_back", "latency_p99"),
                        "rolling-kill.json": ("promoted", None), "zone-outage-blue-green.json": ("promoted", None)}, moves
    journal = json.loads((suite_run.out / "rolling-kill" / "journal.json").read_text())
    kill = next(r for r in journal["run"] if r["activity"]["name"] == "kill-a-stable-instance-mid-deploy")
    assert kill["status"] == "succeeded" and len(kill["output"]) == 1, (kill, moves["rolling-kill.json"])
    crashed = events["rolling-kill.json"][events["rolling-kill.json"]["kind"] == "instance_crashed"]
    assert len(crashed) == 1 and kill["output"][0] in crashed["detail"].iloc[0], moves["rolling-kill.json"]
    assert {"zone_down", "zone_up"} <= set(events["zone-outage-blue-green.json"]["kind"])


def _validate(capsys, *args: str) -> SimpleNamespace:
    from simlab.cli import main

    code = main(["validate", *args])
    printed = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=printed.out, stderr=printed.err)


def test_validate_judges_a_recorded_run_the_right_scenario_passes_and_wrong_ones_fail_naming_the_figure(
        suite_run, tmp_path, capsys):
    journal = suite_run.out / "canary-bad" / "journal.json"
    right = _validate(capsys, str(SUITE / "canary-bad.yaml"), "--journal", str(journal), "--out", str(tmp_path / "right"))
    assert right.returncode == 0, right.stdout + right.stderr
    assert "passed: the steady state held before and after the method" in right.stdout
    assert (tmp_path / "right" / "report" / "report.html").is_file()  # the pair report, beside prediction.json
    assert json.loads((tmp_path / "right" / "prediction.json").read_text())["prediction"]["runs"] == 10

    text = (SUITE / "canary-bad.yaml").read_text()
    # The simulation told the release is good, while staging got the bad one.
    good = tmp_path / "told-good.yaml"
    good.write_text(text.replace("release: {at: 2s, defects: [{kind: error_rate, rate: 0.3}]}", "release: {at: 2s}"))
    wrong = _validate(capsys, str(good), "--journal", str(journal), "--out", str(tmp_path / "good"))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    verdict = next(line for line in wrong.stdout.splitlines() if line.startswith("missed the prediction: "))
    assert "outcome: observed rolled_back, predicted promoted in 10 of 10" in verdict
    assert "detected_at: observed " in verdict and "the simulation had none in 10 of 10 runs" in verdict

    # The service time the simulation was told is half the one staging serves.
    half = tmp_path / "half-service-time.yaml"
    half.write_text(text.replace("{dist: lognormal, mean: 40ms, p99: 120ms}", "{dist: lognormal, mean: 20ms, p99: 60ms}"))
    wrong = _validate(capsys, str(half), "--journal", str(journal), "--out", str(tmp_path / "half"))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    verdict = next(line for line in wrong.stdout.splitlines() if line.startswith("missed the prediction: "))
    assert verdict.startswith("missed the prediction: latency_p99: observed ") and "above the allowed range" in verdict
    assert "outcome:" not in verdict and "bad:" not in verdict  # only the figure that is off


def test_the_ci_job_runs_the_suite_and_publishes_its_junit_file_whatever_the_result():
    import yaml

    job = yaml.safe_load((ROOT / "experiments" / "ci" / "chaos-suite.yml").read_text())
    steps = job["jobs"]["chaos-suite"]["steps"]
    run = next(s for s in steps if "simlab chaos suite" in s.get("run", ""))
    assert run["run"].split()[:7] == ["simlab", "chaos", "suite", "experiments/suite", "--junit",
                                      "reports/chaos-suite.xml", "--out"]
    assert any("apt-get install" in s.get("run", "") and "haproxy prometheus" in s["run"] for s in steps)
    assert any(s.get("run", "").startswith("pip install -e '.[staging]'") for s in steps)
    publish = next(s for s in steps if "junit-report" in s.get("uses", ""))
    assert publish["with"]["report_paths"] == "reports/chaos-suite.xml" and publish["if"] == "success() || failure()"


# --- the blast-radius control's p99 limit -------------------------------------------------------------------

SLOW_DEPENDENCY = {
    "title": "The dependency answers 500 ms later: the blast-radius control stops the run on p99",
    "description": "No request fails, so only the p99 limit can stop it: the shared staging's SLO latency "
                   "threshold 150 ms x factor 2 = 300 ms, under the 500 ms every request now waits. The action "
                   "itself waits 4 s, so the breach comes during it, and chaos would wait out the 20 s pause "
                   "after it before stopping if the control did not interrupt it again there.",
    "configuration": {"simlab_state_dir": {"type": "env", "key": "SIMLAB_STATE_DIR"}},
    "controls": [{"name": "blast-radius", "provider": {
        "type": "python", "module": "simlab.chaos.controls.blast_radius",
        "arguments": {"factor": 2, "window": "3s", "min_requests": 5}}}],
    "steady-state-hypothesis": {"title": "requests succeed", "probes": [
        {"type": "probe", "name": "requests-succeed", "tolerance": [0.99, 1.0], "provider": {
            "type": "python", "module": "simlab.chaos.probes", "func": "success_ratio", "arguments": {"requests": 20}}}]},
    "method": [{"type": "action", "name": "dependency-500ms-slower-for-20s", "pauses": {"after": 20}, "provider": {
        "type": "python", "module": "simlab.chaos.actions", "func": "dependency_fault",
        "arguments": {"add_latency": "500ms", "wait": 4}}}],
    "rollbacks": [{"type": "action", "name": "restore-every-fault", "provider": {
        "type": "python", "module": "simlab.chaos.actions", "func": "restore", "arguments": {"settle": 10}}}],
    "runtime": {"rollbacks": {"strategy": "always"}},
}


def test_the_blast_radius_control_stops_a_run_whose_p99_passes_its_limit_and_the_junit_says_by_how_much(
        shared_staging, tmp_path):
    import re

    from simlab.staging.faults import dependency_fault
    from simlab.staging.supervisor import Staging

    st, _ = shared_staging
    items = tmp_path / "items"
    items.mkdir()
    (items / "slow-dependency.json").write_text(json.dumps(SLOW_DEPENDENCY))
    junit, out = tmp_path / "report.xml", tmp_path / "out"
    done = _simlab("chaos", "suite", str(items), "--dir", str(st.dir), "--out", str(out), "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"using the running staging in {st.dir}" in done.stdout and "0 of 1 passed" in done.stdout
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "1", "0")
    message = root.find("testsuite/testcase/failure").get("message")
    said = re.fullmatch(r"failed: the run ended interrupted: the blast-radius control stopped it: p99 latency "
                        r"(\d+) ms of (\d+) requests over the last 3s passed the limit 300 ms by (\d+) ms", message)
    assert said, message
    p99, by = int(said[1]), int(said[3])
    assert p99 > 300 and abs(by - (p99 - 300)) <= 1 and int(said[2]) >= 5, message  # at least min_requests
    journal = json.loads((out / "slow-dependency" / "journal.json").read_text())
    (action,) = journal["run"]
    assert "status" not in action and action["duration"] < 4, action  # stopped inside the action's 4 s wait
    assert journal["status"] == "interrupted" and journal["duration"] < 12, journal["duration"]  # not the 20 s pause
    assert "waits out an activity's pause" in (out / "slow-dependency" / "chaos.log").read_text()
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [("restore-every-fault", "succeeded")]
    (ext,) = journal["extensions"]
    assert ext["interrupted"] and ext["limits"] == {"error_rate": pytest.approx(0.02), "p99_ms": pytest.approx(300),
                                                    "window_s": 3.0}
    # Users were slow, not failed: the error rate stayed within its limit, so p99 alone stopped the run.
    assert ext["worst"]["error_rate"] <= 0.02 and ext["worst"]["p99_ms"] == pytest.approx(p99, abs=0.5), ext
    assert dependency_fault(st.dir) is None and Staging.open(st.dir).running()
