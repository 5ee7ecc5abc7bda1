"""`simlab compare` and `simlab sweep` as a user meets them: exit codes, messages, files written."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from simlab.cli import main

SMALL = """\
name: cli-experiment
duration: 3m
fleet:
  instances: 3
  service_time: {dist: exponential, mean: 30ms}
  startup: 5s
traffic: {rps: 20, timeout: 1s}
release:
  at: 30s
  bad_probability: 0.5
  defects: [{kind: error_rate, rate: {dist: uniform, low: 0.2, high: 0.4}}]
strategy: {kind: canary, steps: [{weight: 34, bake: 40s}, {weight: 100}]}
analysis: {interval: 15s, min_requests: 5, metrics: [{metric: error_rate, max: 0.05}]}
monitoring: {scrape_interval: 5s, window: 15s, delay: 5s}
rollback: {duration: 10s, on_call: {ack: 1m}}
"""


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SMALL)
    return p


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


BAD = {
    "param without values": (["sweep", "{path}", "--param", "analysis.interval"],
                             "--param: expected PATH=v1,v2 (e.g. analysis.interval=30s,1m), found 'analysis.interval'"),
    "param typo": (["sweep", "{path}", "--param", "analysis.intervl=1m,2m"],
                   "analysis.intervl: unknown key 'intervl'; did you mean 'interval'?"),
    "param bad value": (["sweep", "{path}", "--param", "analysis.interval=1m,soon"],
                        "--param analysis.interval=soon: analysis.interval: expected a duration"),
    "param not a path": (["sweep", "{path}", "--param", "analysis interval=1m"], "expected a dotted field path"),
    "no param": (["sweep", "{path}"], "--param: expected at least one PATH=v1,v2"),
    "param twice": (["sweep", "{path}", "--param", "analysis.interval=1m", "--param", "analysis.interval=2m"],
                    "--param: expected each path once, found analysis.interval again"),
    "strategy typo": (["compare", "{path}", "--strategies", "canary,blue-green"],
                      "strategies: expected a comma-separated list of big_bang, rolling, blue_green, canary, "
                      "found 'blue-green'; did you mean 'blue_green'?"),
    "missing variants": (["compare", "{path}", "--variants", "{dir}/nope.yaml"], "--variants: no such variants file"),
    "both": (["compare", "{path}", "--strategies", "canary", "--variants", "{path}"], "found both"),
    "executor": (["compare", "{path}", "--executor", "threads"], "executor: expected one of local, dask, serial"),
    "report without out": (["compare", "{path}", "--report"], "--report: expected --out DIR"),
    "missing scenario": (["compare", "{dir}/nope.yaml"], "nope.yaml: no such scenario file"),
}


@pytest.mark.parametrize("argv, needle", BAD.values(), ids=BAD.keys())
def test_bad_experiment_input_exits_2_with_field_value_and_expectation(argv, needle, path, capsys):
    argv = [a.format(path=path, dir=path.parent) for a in argv]
    code, out, err = run_cli(capsys, *argv, "--runs", "1", "--quiet")
    assert code == 2, (out, err)
    assert needle in err, err
    assert "Traceback" not in err


def test_compare_prints_a_table_and_writes_results(path, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "compare", str(path), "--strategies", "canary,big_bang", "--runs", "2",
                             "--executor", "serial", "--quiet", "--out", str(out_dir))
    assert code == 0, err
    assert "canary" in out and "big_bang" in out and "P(rollback|bad)" in out
    table = pd.read_csv(out_dir / "compare.csv")
    assert list(table["variant"]) == ["canary", "big_bang"] and list(table["runs"]) == [2, 2]
    assert len(pd.read_parquet(out_dir / "runs.parquet")) == 4
    meta = json.loads((out_dir / "meta.json").read_text())
    assert meta["kind"] == "compare"
    # the decision by the scenario's decide: block is printed in the report's words, under the table
    from simlab.report.decision import sentences

    said = sentences(meta["decision"], lambda i: meta["decision"]["variants"][i]["label"])
    assert said[0].startswith("Limits") or "limit" in said[0]
    assert all(" ".join(sentence.split()) in " ".join(out.split()) for sentence in said), (said, out)


def test_sweep_writes_results_and_says_when_it_resumed(path, tmp_path, capsys):
    out_dir = tmp_path / "sweep"
    argv = ["sweep", str(path), "--param", "analysis.failure_limit=1,2", "--runs", "1", "--executor", "serial",
            "--quiet", "--out", str(out_dir), "--engine", "auto"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "engine auto: picked request" in out  # 3 instances at 20 rps for 3 minutes: small
    assert len(pd.read_csv(out_dir / "table.csv")) == 2
    assert "(analysis.failure_limit=1)" in out or "(analysis.failure_limit=2)" in out  # the decision names points
    assert "resumed" not in out
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "resumed: 2 runs" in out and "0 simulated" in out


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_report_goes_next_to_the_results_it_describes(command, path, tmp_path, capsys, monkeypatch):
    """--report writes OUT/report.html, never ./reports/<basename of OUT> (here an empty working directory)."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out_dir = tmp_path / "results" / "nested"
    extra = {"run": [], "compare": ["--strategies", "canary", "--runs", "1", "--executor", "serial", "--quiet"],
             "sweep": ["--param", "analysis.failure_limit=1", "--runs", "1", "--executor", "serial", "--quiet"]}
    code, out, err = run_cli(capsys, command, str(path), *extra[command], "--out", str(out_dir), "--report")
    assert code == 0, err
    assert (out_dir / "report.html").stat().st_size > 5_000 and (out_dir / "report.md").is_file()
    assert f"report: {out_dir / 'report.html'}" in out
    assert list(cwd.iterdir()) == [], "nothing may be written to the working directory"


def test_compare_keeps_each_run_and_a_second_call_resumes_from_them(path, tmp_path, capsys):
    argv = ["compare", str(path), "--strategies", "canary,big_bang", "--runs", "2", "--executor", "serial",
            "--quiet", "--out", str(tmp_path / "out")]
    code, first, err = run_cli(capsys, *argv)
    assert code == 0 and "resumed" not in first, err
    assert len(list((tmp_path / "out" / "store").rglob("run-*.json"))) == 4 + 2  # and the shared no-release twin
    code, again, err = run_cli(capsys, *argv)
    assert code == 0 and "resumed: 4 runs from" in again and "0 simulated" in again, err
    assert again.split("resumed")[0] == first.split("wrote")[0]  # the same table
