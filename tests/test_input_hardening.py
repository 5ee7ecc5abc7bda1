"""Hostile or unlucky input: every bad file, absurd size or bad option ends in exit 2 and one clear line, fast.

YAML bombs, binary files, fields with physical meaning set to absurd values,
data files that are devices, and scenarios too large to simulate on this
machine are refused before anything runs. Cases that would hang or eat
memory on a regression run `simlab` in a subprocess with a memory limit and
a timeout, so a regression fails the test instead of the machine (the YAML
bombs are in tests/test_fuzz_check.py).
"""
from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simlab.cli import main
from simlab.errors import ScenarioError

SIMLAB = Path(sys.executable).with_name("simlab")

GOOD = """\
name: small
duration: 5m
fleet:
  instances: 3
  service_time: {dist: exponential, mean: 30ms}
  startup: 5s
traffic:
  rps: 40
  timeout: 1s
  spikes: [{at: 2m, duration: 1m, multiplier: 1.5}]
release:
  at: 1m
  defects: [{kind: error_rate, rate: 0.3}]
strategy: {kind: canary, steps: [{weight: 34, bake: 1m}, {weight: 100}]}
analysis: {interval: 20s, min_requests: 10, metrics: [{metric: error_rate, max: 0.05}]}
monitoring: {scrape_interval: 5s, window: 20s, delay: 5s}
rollback: {duration: 10s, on_call: {ack: 1m}}
"""


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str) -> str:
    """The single `error: ...` line of a refused command (exit 2, nothing on stdout, no traceback)."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def one_problem(code: int, out: str, err: str) -> str:
    """The one problem of a scenario that does not validate: `invalid scenario (1 problem)` and its line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    head, *problems = err.strip().splitlines()
    assert head.startswith("error: ") and head.endswith(": invalid scenario (1 problem)") and len(problems) == 1, err
    return problems[0]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def limited(argv: list[str], timeout: float = 60, memory: int = 2 << 30, cwd: Path | None = None):
    """Run a command with at most `memory` bytes of address space; (exit code, stdout, stderr, seconds)."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=cap, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(map(str, argv))} still running after {timeout:.0f}s")
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


# --- the scenario file itself ---------------------------------------------------------------

def test_a_deeply_nested_document_is_refused_at_the_level_that_is_too_deep(tmp_path, capsys):
    path = write(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n")
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line.startswith(f"error: {path}:1:") and "nested more than 64 levels deep" in line


def test_deep_block_mappings_are_refused_too(tmp_path, capsys):
    text = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n"
    line = one_line_error(*run_cli(capsys, "check", str(write(tmp_path, text))))
    assert ":64:" in line and "nested more than 64 levels deep" in line  # key k63, the 65th level


def test_a_recursive_anchor_is_refused_naming_the_alias(tmp_path, capsys):
    path = write(tmp_path, "name: x\nfleet: &f {instances: 3, service_time: 1ms, again: *f}\n")
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line == f"error: {path}:2:52: YAML alias *f refers to its own anchor &f: a recursive structure is not a scenario"


def test_aliases_within_the_limit_still_work(tmp_path, capsys):
    text = GOOD.replace("  startup: 5s\n", "  startup: &s 5s\n  health_check: {interval: *s}\n")
    code, out, _ = run_cli(capsys, "check", str(write(tmp_path, text)))
    assert code == 0 and "valid" in out


def test_a_long_inline_list_is_refused_as_soon_as_it_passes_the_limit(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("  rps: 40\n", "  rps: 40\n  pattern: {kind: replay, file: x, rates: ["
                                        + "1, " * 100_000 + "]}\n"))
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line.startswith(f"error: {path}:9:") and "YAML holds more than 20,000 values by here" in line


def test_a_scenario_larger_than_the_limit_is_refused_before_it_is_parsed(tmp_path, capsys):
    path = write(tmp_path, GOOD + "# padding\n" * 200_000)
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line == f"error: {path}: expected a scenario file of at most 1 MiB, found a larger one"


@pytest.mark.parametrize("data, found", [
    ("name: x\n".encode("utf-16"), "UTF-16 text (byte order mark FF FE)"),
    (bytes(range(256)) * 4, "a byte that is not UTF-8 (0x80 at offset 128; a binary file?)"),
    (b"name: x\n\x00\x01\x02", "a NUL byte at line 2, column 1 (a binary file?)"),
], ids=["utf-16", "binary", "nul"])
def test_binary_and_utf16_files_are_refused_in_one_line(tmp_path, capsys, data, found):
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line == f"error: {path}: expected UTF-8 text, found {found}"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    code, out, _ = run_cli(capsys, "check", str(path))
    assert code == 0 and "valid" in out


@pytest.mark.parametrize("text", [
    "seed: " + "9" * 5000,  # an integer longer than Python converts by default
    "release: {at: 2024-13-45}",  # a date YAML recognises but cannot build
], ids=["huge-int", "bad-date"])
def test_values_yaml_cannot_build_are_named_where_they_are(tmp_path, capsys, text):
    path = write(tmp_path, GOOD.replace("release:\n  at: 1m\n  defects: [{kind: error_rate, rate: 0.3}]\n", "")
                 + text + "\n")
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert line.startswith(f"error: {path}:15:") and "cannot read this value" in line


# --- numbers with a physical meaning ----------------------------------------------------------

ABSURD = {
    "instances 1e9": (GOOD.replace("instances: 3", "instances: 1e9"), "fleet.instances: expected a whole number, found 1000000000.0"),
    "instances 10^9": (GOOD.replace("instances: 3", "instances: 1000000000"), "fleet.instances: expected a value at most 100000, found 1000000000"),
    "rps 1e12": (GOOD.replace("rps: 40", "rps: 1e12"), "traffic.rps: expected a value at most 10000000.0, found 1000000000000.0"),
    "rps yes": (GOOD.replace("rps: 40", "rps: yes"), "traffic.rps: expected a number, found True"),
    "rps nan": (GOOD.replace("rps: 40", "rps: .nan"), "traffic.rps: expected a finite number, found nan"),
    "rps inf": (GOOD.replace("rps: 40", "rps: .inf"), "traffic.rps: expected a finite number, found inf"),
    "spike 1e12": (GOOD.replace("multiplier: 1.5", "multiplier: 1e12"),
                   "traffic.spikes[0].multiplier: expected a value at most 1000.0, found 1000000000000.0"),
    "duration 36500d": (GOOD.replace("duration: 5m", "duration: 36500d"),
                        "duration: expected a duration of at most 365d, found '36500d'"),
    "duration 1e300": (GOOD.replace("duration: 5m", "duration: 1e300"),
                       "duration: expected a duration of at most 365d, found 1e+300"),
    "timeout 1e308": (GOOD.replace("timeout: 1s", "timeout: 1e308"),
                      "traffic.timeout: expected a duration of at most 365d, found 1e+308"),
    "bake 1e400": (GOOD.replace("bake: 1m", "bake: 1e400"), "strategy.steps[0].bake: expected a finite duration, found inf"),
    "workers": (GOOD.replace("startup: 5s", "startup: 5s\n  workers: 100000000"),
                "fleet.workers: expected a value at most 10000, found 100000000"),
    "queue": (GOOD.replace("startup: 5s", "startup: 5s\n  queue_limit: 1e16"),
              "fleet.queue_limit: expected a whole number, found 1e+16"),
    "sigma": (GOOD.replace("{dist: exponential, mean: 30ms}", "{dist: lognormal, mean: 30ms, sigma: 1e6}"),
              "fleet.service_time.sigma: expected a value at most 5.0, found 1000000.0"),
    "p99 far above the median": (GOOD.replace("{dist: exponential, mean: 30ms}", "{dist: lognormal, median: 1ms, p99: 300d}"),
                                 "fleet.service_time.p99: expected at most"),
    "seed": (GOOD.replace("name: small", "name: small\nseed: " + str(2**70)),
             "seed: expected a value at most 18446744073709551615, found 1180591620717411303424"),
    "zones": (GOOD.replace("startup: 5s", "startup: 5s\n  zones: 1000000"), "fleet.zones: expected a value at most 1000, found 1000000"),
    "mtbf": (GOOD + "failures: [{kind: instance_crash, mtbf: 1e300}]\n",
             "failures[0].mtbf: expected a duration of at most 365d, found 1e+300"),
    "empirical sample": (GOOD.replace("{dist: exponential, mean: 30ms}", "{dist: empirical, samples: [1ms, 1e300]}"),
                         "fleet.service_time.samples: expected a duration of at most 365d, found 1e+300"),
    "staging rps": (GOOD + "staging: {rps: 1e12}\n", "staging.rps: expected a value at most 10000000.0"),
    "service time 1e-300": (GOOD.replace("{dist: exponential, mean: 30ms}", "1e-300"),
                            "fleet.service_time.constant.value: expected 0 or a duration of at least 1µs"),
}


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_numbers_are_refused_by_check_in_one_line_naming_the_field(case, tmp_path, capsys):
    text, needle = ABSURD[case]
    path = write(tmp_path, text)
    start = time.monotonic()
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 2 and "Traceback" not in out + err, (code, out, err)
    assert needle in err, err
    assert time.monotonic() - start < 5


def test_generous_values_a_real_fleet_may_need_are_accepted(tmp_path, capsys):
    text = (GOOD.replace("instances: 3", "instances: 50000").replace("rps: 40", "rps: 2000000")
            .replace("duration: 5m", "duration: 1h").replace("multiplier: 1.5", "multiplier: 20")
            .replace("startup: 5s", "startup: 5s\n  workers: 256\n  queue_limit: 10000\n  zones: 30"))
    code, out, err = run_cli(capsys, "check", str(write(tmp_path, text)), "--engine", "fluid")
    assert code == 0, err
    assert "50000 instances" in out


# --- work and memory a run needs -----------------------------------------------------------------

A_WEEK = GOOD.replace("duration: 5m", "duration: 7d").replace("rps: 40", "rps: 8")


def test_a_week_of_simulated_time_is_allowed_when_it_fits(tmp_path, capsys):
    path = write(tmp_path, A_WEEK)
    for engine in ("request", "fluid"):
        code, out, err = run_cli(capsys, "check", str(path), "--engine", engine)
        assert code == 0, err
        assert f"one run on the {engine} engine needs about" in out


TOO_BIG = GOOD.replace("duration: 5m", "duration: 300d").replace("rps: 40", "rps: 5000")


def test_check_refuses_a_run_too_large_for_this_machine_with_the_estimate_and_the_limit(tmp_path, capsys):
    path = write(tmp_path, TOO_BIG)
    start = time.monotonic()
    line = one_line_error(*run_cli(capsys, "check", str(path)))
    assert time.monotonic() - start < 5
    assert line.startswith(f"error: {path}: too large to simulate here: the request engine would simulate about "
                           "1.3e+11 requests")
    for needle in ("of CPU, more than the limit of", "of memory", "--max-work", "--no-limits"):
        assert needle in line, line


def test_the_flags_raise_or_lift_the_limits(tmp_path, capsys):
    path = write(tmp_path, TOO_BIG)
    code, out, err = run_cli(capsys, "check", str(path), "--no-limits")
    assert code == 0 and "valid" in out, err
    line = one_line_error(*run_cli(capsys, "check", str(path), "--max-work", "100000d"))
    assert "of memory" in line and "more than the limit of" in line  # work allowed now, memory still too much
    line = one_line_error(*run_cli(capsys, "check", str(path), "--max-work", "soon"))
    assert "--max-work: expected a duration" in line


def test_many_runs_multiply_the_work(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("duration: 5m", "duration: 1d"))
    code, _, err = run_cli(capsys, "check", str(path), "--engine", "fluid", "--runs", "10")
    assert code == 0, err
    line = one_line_error(*run_cli(capsys, "check", str(path), "--engine", "fluid", "--runs", "1000000"))
    assert "the fluid engine would simulate 1,000,000 runs of 86,400 s on 3 instances: about" in line


@pytest.mark.parametrize("retries, needle", [
    ("{max: 10, backoff: 365d, budget: 1}", "of CPU, more than the limit"),  # backoff doubles ten times
    ("{max: 1, backoff: 100ms}", "of memory, more than the limit"),  # and a timeout of a year
])
def test_the_drain_after_a_run_counts_long_timeouts_and_backoffs(tmp_path, capsys, retries, needle):
    text = GOOD.replace("  timeout: 1s\n", f"  timeout: {'365d' if 'memory' in needle else '1s'}\n  retries: {retries}\n")
    line = one_line_error(*run_cli(capsys, "check", str(write(tmp_path, text))))
    assert "too large to simulate here: the request engine would simulate about 13,200 requests in 1 run" in line
    assert needle in line


@pytest.mark.parametrize("argv", [
    ["run", "{path}"],
    ["run", "{path}", "--engine", "fluid"],
    ["compare", "{path}", "--runs", "5", "--quiet", "--strategies", "canary,rolling"],
    ["sweep", "{path}", "--runs", "2", "--quiet", "--param", "analysis.interval=30s,1m"],
], ids=["run", "run-fluid", "compare", "sweep"])
def test_commands_that_simulate_refuse_before_they_start(tmp_path, argv):
    path = write(tmp_path, TOO_BIG.replace("rps: 5000", "rps: 5000000"))
    argv = [a.format(path=path) for a in argv]
    code, out, err, seconds = limited([str(SIMLAB), *argv], timeout=60, memory=3 << 30, cwd=tmp_path)
    line = one_line_error(code, out, err)
    assert "too large to simulate here" in line and seconds < 30


# --- the files a scenario names -------------------------------------------------------------------

def replay(tmp_path: Path, file: str) -> Path:
    return write(tmp_path, GOOD.replace("  rps: 40\n", f"  rps: 40\n  pattern: {{kind: replay, file: {file}}}\n"))


def test_replaying_dev_zero_is_refused_as_not_a_regular_file(tmp_path):
    code, out, err, _ = limited([str(SIMLAB), "check", str(replay(tmp_path, "/dev/zero"))], timeout=60)
    line = one_problem(code, out, err)
    assert line.endswith("traffic.pattern.file: expected a regular file of per-second rates, found '/dev/zero' "
                         "(a character device)")


def test_replaying_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "rates.csv")
    code, out, err, _ = limited([str(SIMLAB), "check", str(replay(tmp_path, "rates.csv"))], timeout=60)
    assert one_problem(code, out, err).endswith("found 'rates.csv' (a FIFO)")


def test_a_replay_file_over_the_size_limit_is_refused_unread(tmp_path, capsys):
    with open(tmp_path / "rates.csv", "wb") as f:
        f.truncate(100 << 20)  # sparse: costs no disk
    line = one_problem(*run_cli(capsys, "check", str(replay(tmp_path, "rates.csv"))))
    assert line.endswith("traffic.pattern.file: expected a file of at most 16 MiB, found 'rates.csv' (100 MiB)")


def test_a_samples_file_is_held_to_the_same_rules(tmp_path):
    path = write(tmp_path, GOOD.replace("{dist: exponential, mean: 30ms}", "{dist: empirical, file: /dev/zero}"))
    line = one_problem(*limited([str(SIMLAB), "check", str(path)], timeout=60)[:3])
    assert line.endswith("fleet.service_time.file: expected a regular file of samples, found '/dev/zero' "
                         "(a character device)")


def test_a_replay_file_that_is_not_utf8_is_named(tmp_path, capsys):
    (tmp_path / "rates.csv").write_bytes("rps\n1\n2\n".encode("utf-16"))
    line = one_problem(*run_cli(capsys, "check", str(replay(tmp_path, "rates.csv"))))
    assert line.endswith("traffic.pattern.file: expected UTF-8 text in 'rates.csv', found UTF-16 text "
                         "(byte order mark FF FE)")


# --- options -------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_a_negative_seed_is_bad_input(tmp_path, capsys, engine):
    path = write(tmp_path, GOOD)
    line = one_line_error(*run_cli(capsys, "run", str(path), "--seed", "-5", "--engine", engine))
    assert line == "error: --seed: expected a whole number of at least 0, found -5"


@pytest.mark.parametrize("content, found", [
    ('{"title": "x", ', "expected JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", "expected a JSON object of experiment keys (title, description, method), found a list"),
])
def test_validate_with_a_malformed_experiment_says_so_in_one_line_before_starting_anything(tmp_path, capsys,
                                                                                           content, found):
    experiment = tmp_path / "exp.json"
    experiment.write_text(content)
    path = write(tmp_path, GOOD)
    state = tmp_path / "state"
    line = one_line_error(*run_cli(capsys, "validate", str(path), "--experiment", str(experiment),
                                   "--dir", str(state), "--out", str(tmp_path / "out")))
    assert line.startswith(f"error: {experiment}:") and found in line
    assert not state.exists()  # no staging was started


def test_validate_with_an_experiment_chaos_rejects_gives_chaos_reason_in_one_line(tmp_path, capsys):
    experiment = tmp_path / "exp.json"
    experiment.write_text('{"title": "x", "description": "y"}')
    line = one_line_error(*run_cli(capsys, "validate", str(write(tmp_path, GOOD)), "--experiment", str(experiment),
                                   "--dir", str(tmp_path / "state"), "--out", str(tmp_path / "out")))
    assert line == (f"error: {experiment}: not a valid Chaos Toolkit experiment: an experiment requires a method, "
                    "which can be empty for only checking steady state hypothesis")


def test_the_library_raises_scenario_errors_for_the_same_files(tmp_path):
    from simlab.scenario import load_scenario

    (tmp_path / "s.yaml").write_bytes(b"\xff\xfe" + "name: x".encode("utf-16-le"))
    with pytest.raises(ScenarioError, match="expected UTF-8 text"):
        load_scenario(tmp_path / "s.yaml")


# --- the documented examples ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
MACHINE = re.compile(r"more than the limit of [\d.]+ [kMGT]?B \(80% of the [\d.]+ [kMGT]?B [^)]*\)"
                     r"|, [\d.]+ [kMGT]?B of memory\)")


def week_blocks(doc: Path) -> list[tuple[str, list[str]]]:
    """(command, printed lines) of each `$ simlab check week.yaml ...` line in a doc's console blocks."""
    lines = doc.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("$ simlab check week.yaml"):
            shown = []
            for after in lines[i + 1:]:
                if after.startswith("$ ") or after.startswith("```"):
                    break
                shown.append(after)
            out.append((line[2:].split("#")[0].strip(), shown))
    return out


@pytest.mark.parametrize("doc", ["README.md", "docs/scenario.md"])
def test_the_documented_limits_example_prints_what_the_doc_shows(doc, tmp_path, capsys, monkeypatch):
    text = (ROOT / "experiments" / "checkout-canary.yaml").read_text()
    week = (text.replace("duration: 1h\n", "duration: 7d\n").replace("  rps: 800\n", "  rps: 50000\n")
            .replace("  instances: 20\n", "  instances: 1000\n"))  # "checkout-canary for a week at 50,000 rps on 1,000"
    assert "duration: 7d" in week and "rps: 50000" in week and "instances: 1000" in week
    (tmp_path / "week.yaml").write_text(week)
    monkeypatch.chdir(tmp_path)
    blocks = week_blocks(ROOT / doc)
    assert len(blocks) == 2
    for command, shown in blocks:
        argv = command.split()[1:]
        code, out, err = run_cli(capsys, *argv)
        assert code == (2 if shown[0].startswith("error: ") else 0), (command, out, err)
        printed = (err if code else out).strip().splitlines()
        # the memory limit is this machine's: compared as a phrase, not a number
        assert [MACHINE.sub("<memory limit>", p) for p in printed] == [MACHINE.sub("<memory limit>", s) for s in shown], \
            command
