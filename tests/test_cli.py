"""The command line as a user meets it: exit codes, messages, files written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.cli import main

GOOD = """\
name: cli-small
duration: 5m
fleet:
  instances: 3
  service_time: {dist: exponential, mean: 30ms}
  startup: 5s
traffic: {rps: 40, timeout: 1s}
release:
  at: 1m
  defects: [{kind: error_rate, rate: 0.3}]
strategy: {kind: canary, steps: [{weight: 34, bake: 1m}, {weight: 100}]}
analysis: {interval: 20s, min_requests: 10, metrics: [{metric: error_rate, max: 0.05}]}
monitoring: {scrape_interval: 5s, window: 20s, delay: 5s}
rollback: {duration: 10s, on_call: {ack: 1m}}
"""

BAD_INPUTS = {
    "typo": (GOOD.replace("instances: 3", "instancs: 3"), ["fleet.instancs", "unknown key", "did you mean 'instances'"]),
    "negative-rate": (GOOD.replace("rps: 40", "rps: -40"), ["traffic.rps", "expected", "found -40"]),
    "weights": (
        GOOD.replace("[{weight: 34, bake: 1m}, {weight: 100}]", "[{weight: 34, bake: 1m}, {weight: 20}, {weight: 90}]"),
        ["strategy.steps[1].weight", "rise"],
    ),
    "weights-end": (GOOD.replace("{weight: 100}", "{weight: 90}"), ["strategy.steps", "100", "found 90"]),
    "duration": (GOOD.replace("startup: 5s", "startup: 5 parsecs"), ["fleet.startup", "expected a duration", "'5 parsecs'"]),
    "yaml": (GOOD.replace("traffic: {rps: 40, timeout: 1s}", "traffic: {rps: 40, timeout: 1s"), ["YAML syntax error"]),
    "kind": (GOOD.replace("kind: canary", "kind: canery"), ["strategy.kind", "expected one of", "'canery'"]),
}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_scenarios_exit_2_with_the_field_the_value_and_what_was_expected(case, tmp_path, capsys):
    text, needles = BAD_INPUTS[case]
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    for command in ("check", "run"):
        code, out, err = run_cli(capsys, command, str(path))
        assert code == 2, (command, out, err)
        assert "Traceback" not in err and out == ""
        assert str(path) in err
        for needle in needles:
            assert needle in err, (needle, err)


def test_the_line_of_the_bad_field_is_named(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("rps: 40", "rps: -40"))
    _, _, err = run_cli(capsys, "check", str(path))
    assert f"{path}:7: traffic.rps" in err


def test_a_missing_file_is_bad_input(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml: no such scenario file" in err


@pytest.mark.parametrize("argv,needle", [
    (["--strategy", "canery"], "--strategy: expected one of big_bang, rolling, blue_green, canary, found 'canery'"),
    (["--engine", "quantum"], "engine: expected one of"),
    (["--report"], "--report: expected --out DIR"),
])
def test_bad_options_exit_2(argv, needle, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    code, _, err = run_cli(capsys, "run", str(path), *argv)
    assert code == 2 and needle in err


def test_run_writes_summary_timeline_and_events(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(capsys, "run", str(path), "--seed", "3", "--out", str(out_dir), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["seed"] == 3 and summary["outcome"] == "rolled_back"
    assert json.loads((out_dir / "summary.json").read_text()) == summary
    timeline = (out_dir / "timeline.csv").read_text().splitlines()
    assert len(timeline) == 301 and timeline[0].startswith("t,offered,attempts")
    assert "rollback_started" in (out_dir / "events.csv").read_text()


def test_run_prints_a_readable_summary(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    code, out, _ = run_cli(capsys, "run", str(path), "--strategy", "big_bang")
    assert code == 0
    for words in ("outcome", "rolled_back", "bad requests", "time to detect", "error budget used"):
        assert words in out


def test_check_accepts_a_valid_scenario_and_schema_prints_a_closed_json_schema(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and "valid" in out and "canary" in out
    code, out, _ = run_cli(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and {"fleet", "traffic", "release", "strategy"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_the_installed_command_and_python_dash_m_exit_2_on_bad_input(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("rps: 40", "rps: -40"))
    exe = Path(sys.executable).with_name("simlab")
    for argv in ([str(exe), "check", str(path)], [sys.executable, "-m", "simlab", "check", str(path)]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "traffic.rps" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["nosuchcmd"], ["run", "--seed", "x", "s.yaml"], ["compare", "--runs", "x", "s.yaml"]])
def test_usage_errors_exit_2_without_a_traceback(argv, capsys):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err + out and "Error" in err + out


def test_run_draws_the_release_of_this_replication(tmp_path, capsys):
    """release.bad_probability and distribution-valued defects are drawn per seed, as in replicate()."""
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace(
        "defects: [{kind: error_rate, rate: 0.3}]",
        "bad_probability: 0.5\n  defects: [{kind: error_rate, rate: {dist: uniform, low: 0.2, high: 0.4}}]",
    ))
    seen = set()
    for seed in range(8):
        code, out, _ = run_cli(capsys, "run", str(path), "--seed", str(seed), "--json")
        summary = json.loads(out)
        assert code == 0
        rate = summary.get("param.error_rate.rate")
        assert summary["bad_release"] == (rate is not None)
        assert rate is None or 0.2 <= rate <= 0.4
        seen.add(summary["bad_release"])
    assert seen == {True, False}
