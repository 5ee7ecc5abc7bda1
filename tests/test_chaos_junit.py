"""The suite's JUnit XML for failed items, without a staging: journals as chaos writes them, judged as the suite judges
them (the journal rule, the deploy against a prediction or its SLO), written by simlab.chaos.junit and read back.

A CI reporter shows a failure's `message` alone: it must name the figure, what was predicted or allowed, what was
observed and by how much it missed. (The shipped suite passing, and a blast-radius stop, are read back from real
runs in tests/staging.) About 1 s.
"""
from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simlab.chaos.journal import DEVIATED, MISSED, PASSED, read_journal
from simlab.chaos.junit import write_junit
from simlab.chaos.prediction import predict
from simlab.chaos.suite import EXPERIMENT, SCENARIO, Item, ItemResult, SuiteResult
from simlab.chaos.validate import chaos_env, judge_prediction
from simlab.scenario import load_scenario
from simlab.scenario.loading import staging_scenario

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "experiments" / "suite"

# What a staging deploy of canary-bad.yaml returned (a real run's summary; validate judges these keys).
OBSERVED = {"scenario": "suite-canary-bad", "outcome": "rolled_back", "requests": 345, "failed": 15, "bad": 15,
            "latency_p99_ms": 121.7, "detected_at_s": 6.0, "rollback_done_at_s": 7.0, "rollback_cause": "error_rate"}
HYPOTHESIS = [("whole-fleet-in-rotation", 2, 2), ("requests-succeed-within-slo", [0.99, 1.0], 1.0)]


def _probe_run(name: str, tolerance, output) -> dict:
    met = output == tolerance if not isinstance(tolerance, list) else tolerance[0] <= output <= tolerance[1]
    return {"activity": {"type": "probe", "name": name, "tolerance": tolerance,
                         "provider": {"type": "python", "module": "simlab.chaos.probes", "func": "success_ratio"}},
            "output": output, "status": "succeeded", "tolerance_met": met}


def _journal(folder: Path, experiment: dict, observed: dict, after: list | None = None) -> Path:
    """journal.json as `chaos run` writes it: the hypothesis before and after, the deploy action's run."""
    after = after if after is not None else HYPOTHESIS
    before_runs = [_probe_run(*p) for p in HYPOTHESIS]
    after_runs = [_probe_run(*p) for p in after]
    deploy = next(a for a in experiment["method"] if a["provider"].get("func") == "deploy")
    data = {
        "chaoslib-version": "1.44.0", "experiment": experiment, "status": "completed",
        "deviated": not all(r["tolerance_met"] for r in after_runs),
        "steady_states": {"before": {"steady_state_met": True, "probes": before_runs},
                          "after": {"steady_state_met": all(r["tolerance_met"] for r in after_runs),
                                    "probes": after_runs}, "during": []},
        "run": [{"activity": deploy, "output": observed, "status": "succeeded", "duration": 14.1}],
        "rollbacks": [], "duration": 31.5,
    }
    folder.mkdir(parents=True)
    (folder / "journal.json").write_text(json.dumps(data, indent=2))
    return folder / "journal.json"


def _experiment(canary_bad) -> dict:
    """The experiment `validate` generates for canary-bad.yaml, with its hypothesis (the SLO) and deploy."""
    from simlab.chaos.generate import generated_experiment

    return generated_experiment(canary_bad, "scenario.json", "out", "out", None)


def _as_the_suite_builds_it(item: Item, result, seconds: float) -> ItemResult:
    """suite._run_item's ItemResult for a judged run (its message is what a failure element says)."""
    message = "" if result.passed else f"{result.verdict}: {result.reason}"
    return ItemResult(item, "passed" if result.passed else "failed", message, seconds, result, None)


@pytest.fixture(scope="module")
def canary_bad():
    return staging_scenario(load_scenario(SUITE / "canary-bad.yaml"))


@pytest.fixture(scope="module")
def prediction(canary_bad):
    return predict(canary_bad, 4)  # the scenario's tolerances; 4 runs keep this fast


@pytest.fixture
def suite(tmp_path, canary_bad, prediction):
    """Five items judged as the suite judges them: passed, detection late, hypothesis failed after the method,
    the SLO missed by a hand-written experiment, and one that could not run; their JUnit file parsed."""
    experiment = _experiment(canary_bad)
    items = tmp_path / "items"

    def scenario_item(name: str, observed: dict, after=None, seconds: float = 20.0) -> ItemResult:
        journal = _journal(tmp_path / "out" / name, copy.deepcopy(experiment), observed, after)
        judged = judge_prediction(read_journal(journal), canary_bad, journal.parent, prediction=prediction,
                                  report=False)
        return _as_the_suite_builds_it(Item(items / f"{name}.yaml", SCENARIO), judged, seconds)

    late = {**OBSERVED, "detected_at_s": 30.0, "rollback_done_at_s": 31.0}
    deviated = [HYPOTHESIS[0], ("requests-succeed-within-slo", [0.99, 1.0], 0.9)]
    # The shipped hand-written experiment: no prediction, so its deploy is held to its scenario's SLO (99%).
    rolling = SUITE / "rolling-kill.json"
    journal = _journal(tmp_path / "out" / "rolling-kill", json.loads(rolling.read_text()),
                       {**OBSERVED, "scenario": "suite-rolling", "outcome": "promoted", "requests": 600, "bad": 12,
                        "detected_at_s": None, "rollback_done_at_s": None})
    env = chaos_env(tmp_path / "state", rolling, journal.parent)
    slo = judge_prediction(read_journal(journal, rolling), None, journal.parent, report=False, env=env)
    results = (
        scenario_item("canary-bad", OBSERVED, seconds=21.25),
        scenario_item("detected-late", late, seconds=33.5),
        scenario_item("hypothesis-failed", OBSERVED, after=deviated),
        _as_the_suite_builds_it(Item(rolling, EXPERIMENT), slo, 18.0),
        ItemResult(Item(items / "unreachable.yaml", SCENARIO), "error",
                   "StagingError: haproxy not\x08 running\x00", 0.5),
    )
    path = write_junit(SuiteResult(items, results, 123.4567, True), tmp_path / "ci" / "report.xml")
    root = ET.parse(path).getroot()
    return results, root, {c.get("name"): c for c in root.iter("testcase")}


def test_the_counts_and_times_are_the_suites(suite):
    results, root, cases = suite
    assert [r.status for r in results] == ["passed", "failed", "failed", "failed", "error"]
    (testsuite,) = root.findall("testsuite")
    for element in (root, testsuite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("5", "3", "1")
        assert element.get("time") == "123.457"
    assert testsuite.get("skipped") == "0" and testsuite.get("name").endswith("items")
    assert list(cases) == ["canary-bad.yaml", "detected-late.yaml", "hypothesis-failed.yaml", "rolling-kill.json",
                           "unreachable.yaml"]
    assert [cases[n].get("time") for n in cases] == ["21.250", "33.500", "20.000", "18.000", "0.500"]
    assert {c.get("classname") for c in cases.values()} == {"simlab.chaos.suite.items"}
    assert cases["rolling-kill.json"].get("file") == (SUITE / "rolling-kill.json").as_posix()
    passed = cases["canary-bad.yaml"]
    assert passed.find("failure") is None and passed.find("error") is None
    assert results[0].result.verdict == PASSED and all(c.passed for c in results[0].result.checks)


def test_a_missed_prediction_says_which_figure_the_predicted_and_allowed_range_the_observed_value_and_by_how_much(
        suite, prediction):
    _, _, cases = suite
    failure = cases["detected-late.yaml"].find("failure")
    assert failure.get("type") == MISSED and failure.text == failure.get("message")
    message = failure.get("message")
    detected, rollback = message.removeprefix("missed the prediction: ").split("; ")
    low, high = prediction.figures["detected_at"].low, prediction.figures["detected_at"].high
    shape = r"detected_at: observed 30\.0 s, predicted (.+) \(allowed ([\d.]+)–([\d.]+) s\): ([\d.]+) s above the allowed range"
    said = re.fullmatch(shape, detected)
    assert said, message
    assert said[1] == f"{low:.1f}–{high:.1f} s"
    allowed_high, by = float(said[3]), float(said[4])
    # The tolerance widens the predicted interval (6 s + 10% in canary-bad.yaml's validate block), and the miss is
    # measured from the widened edge.
    assert allowed_high == pytest.approx(high + 6.0 + 0.1 * high, abs=0.05) and by == pytest.approx(30.0 - allowed_high, abs=0.11)
    assert rollback.startswith("rollback_done_at: observed 31.0 s") and rollback.endswith("s above the allowed range")
    out = cases["detected-late.yaml"].find("system-out").text
    assert out.startswith(f"detected-late.yaml: {message}\n")
    assert f"MISS {detected}\n" in out and "ok   bad: observed 15" in out and "ok   outcome: observed rolled_back" in out


def test_a_failed_hypothesis_names_the_probe_its_value_the_tolerance_and_by_how_much(suite):
    _, _, cases = suite
    failure = cases["hypothesis-failed.yaml"].find("failure")
    assert failure.get("type") == DEVIATED
    assert failure.get("message") == ("deviated: the hypothesis failed after the method: probe "
                                      "requests-succeed-within-slo returned 0.9, expected [0.99, 1.0] (0.09 below)")
    out = cases["hypothesis-failed.yaml"].find("system-out").text
    assert "probe requests-succeed-within-slo: tolerance [0.99, 1.0], before 1.0, after 0.9" in out
    assert "MISS" not in out  # the deploy itself met the prediction: only the journal rule failed


def test_a_deploy_held_to_its_slo_says_how_far_over_the_error_budget(suite):
    _, _, cases = suite
    failure = cases["rolling-kill.json"].find("failure")
    assert failure.get("type") == MISSED
    assert failure.get("message") == ("missed the prediction: slo: observed 2.00% (12 of 600) (allowed at most 1.00% "
                                      "(availability 99%)): 1.00% over the error budget")
    out = cases["rolling-kill.json"].find("system-out").text
    assert "prediction: the experiment carries no prediction" in out and "ok   outcome: observed promoted" in out


def test_system_out_carries_the_summary_and_the_journal_itself(suite, tmp_path):
    _, _, cases = suite
    out = cases["detected-late.yaml"].find("system-out").text
    summary = json.loads(next(line for line in out.splitlines() if line.startswith("summary: "))[len("summary: "):])
    assert summary == {"outcome": "rolled_back", "requests": 345, "failed": 15, "bad": 15, "latency_p99_ms": 121.7,
                       "detected_at_s": 30.0, "rollback_done_at_s": 31.0}
    assert "journal status completed, chaos exited None" in out
    assert f"journal: {tmp_path / 'out' / 'detected-late' / 'journal.json'}" in out
    journal = json.loads(out.split("--- journal.json ---\n", 1)[1])
    assert journal == json.loads((tmp_path / "out" / "detected-late" / "journal.json").read_text())


def test_an_item_that_could_not_run_is_an_error_with_its_reason_and_no_control_characters(suite):
    _, _, cases = suite
    error = cases["unreachable.yaml"].find("error")
    assert cases["unreachable.yaml"].find("failure") is None
    assert error.get("type") == "error" and error.get("message") == "StagingError: haproxy not running"
    assert cases["unreachable.yaml"].find("system-out").text == f"unreachable.yaml: {error.get('message')}\n"
