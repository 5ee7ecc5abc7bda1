"""`simlab chaos suite` on the shipped experiments/suite, as CI runs it: the real staging, real `chaos run`, JUnit read back.

The suite runs once for the module (about 2 minutes: five deploys of 12-18 s, each from a stable fleet, on a
staging the suite starts and stops itself); every test reads what it left. `simlab validate --journal` then
judges one of its journals against right and deliberately wrong scenarios, with no second staging run.
"""
from __future__ import annotations

import json
import shutil
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
                       "--dir", str(state), "--no-report", timeout=600)
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
