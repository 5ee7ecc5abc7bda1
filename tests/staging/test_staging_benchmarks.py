"""The README's staging benchmark commands, run as commands with small arguments: benchmarks/staging_throughput.py
(open loop through HAProxy with `--no-wrk`, and its closed loop through wrk, which `make system-deps` installs) and
benchmarks/calibration_value.py (on a 12-second bad canary instead of the shipped 90-second scenarios). What is
checked is that each runs, prints what it says with figures that add up, and stops every process it started; the
recorded figures are the benchmarks' business."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from simlab.staging.procs import OWNER_ENV
from simlab.staging.sweep import stop_marked

ROOT = Path(__file__).resolve().parents[2]


def owners_under(root: Path) -> set[str]:
    """State directories under `root` that a living process is marked with (procs.spawn's OWNER_ENV)."""
    prefix = f"{OWNER_ENV}={root}/".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            env = (entry / "environ").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        found.update(v.split(b"=", 1)[1].decode() for v in env if v.startswith(prefix))
    return found


@pytest.fixture
def scratch():
    """A short temporary directory the benchmark's own temporary directories go into (TMPDIR): Unix socket paths
    in a state directory must stay short, and what a benchmark leaves running there is found and stopped."""
    root = Path(tempfile.mkdtemp(prefix="sb-")).resolve()
    try:
        yield root
    finally:
        try:
            for owner in owners_under(root):
                stop_marked(Path(owner), grace=2.0)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def bench(scratch: Path, args: list[str], timeout: float) -> str:
    """Run a benchmark as the README does; its stdout. Interrupted (SIGINT: it stops its staging) if it overruns;
    fails the test if it exits non-zero or leaves a process behind."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TMPDIR": str(scratch)})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{args[0]} ran over {timeout:g} s:\n{err[-3000:]}", pytrace=False)
    assert proc.returncode == 0, err[-3000:]
    assert not owners_under(scratch), "the benchmark left processes running"
    return out


def test_the_staging_throughput_benchmark_runs_as_the_readme_says(scratch):
    """benchmarks/staging_throughput.py at 100 and 200 rps for 1 s through HAProxy to 4 instances, 2 a process,
    instead of 250-1,000 rps for 10 s to 10 instances."""
    out = json.loads(bench(scratch, ["benchmarks/staging_throughput.py", "--seconds", "1", "--rates", "100,200",
                                     "--no-wrk", "--per-process", "2", "--instances", "4"], timeout=180))
    assert (out["instances"], out["service_time_ms"], out["seconds"], out["cpus"]) == (4, 10.0, 1.0, os.cpu_count())
    assert set(out) == {"instances", "service_time_ms", "seconds", "per_process_2", "load_average_1m", "cpus"}
    config = out["per_process_2"]
    assert config["processes"] == 2 and "rps" not in config  # two hosts of two instances; no wrk figures
    assert config["open_loop_target_met"] is False  # judged at 1,000 rps, which this run does not offer
    assert [r["offered_rps"] for r in config["open_loop"]] == [100.0, 200.0]
    for row in config["open_loop"]:
        via, direct, rate = row["via_haproxy"], row["direct_one_instance"], row["offered_rps"]
        assert direct["offered_rps"] == rate / 4 and via["requests"] == rate, row
        for shots in (via, direct):
            assert shots["errors"] == 0 and shots["achieved_rps"] > 0.5 * shots["offered_rps"], row
            # The instances serve in a constant 10 ms: no latency below it, none near the 5 s timeout.
            assert 10.0 <= shots["p50_ms"] <= shots["p90_ms"] <= shots["p99_ms"] <= shots["max_ms"] < 5000, row
            assert shots["send_lag_p99_ms"] >= 0 and shots["generator_cpu_us_per_request"] > 0, row
        assert via["haproxy_cpu_us_per_request"] > 0 and via["instance_cpu_us_per_request"] > 0, row
        assert row["added_p99_ms"] == pytest.approx(via["p99_ms"] - 10.0, abs=0.002)
        assert row["direct_added_p99_ms"] == pytest.approx(direct["p99_ms"] - 10.0, abs=0.002)
        assert row["haproxy_added_p99_ms"] == pytest.approx(via["p99_ms"] - direct["p99_ms"], abs=0.002)


def test_the_staging_throughput_benchmarks_closed_loop_runs_through_wrk(scratch):
    """The same command without `--no-wrk`, at one rate: wrk's closed loop through HAProxy and straight at one
    instance (20 connections for 1 s, after a 2 s warm-up), the figures the README's closed-loop column quotes."""
    assert shutil.which("wrk"), "make system-deps installs wrk"
    out = json.loads(bench(scratch, ["benchmarks/staging_throughput.py", "--seconds", "1", "--rates", "100",
                                     "--per-process", "2", "--instances", "4"], timeout=180))
    config = out["per_process_2"]
    assert config["connections"] == 20 and [r["offered_rps"] for r in config["open_loop"]] == [100.0]
    via, direct = config["via_haproxy"], config["direct_one_instance"]
    for shots in (via, direct):
        assert shots["errors"] == 0 and shots["rps"] > 50, shots  # 20 connections at 10 ms each: hundreds a second
        assert 10.0 <= shots["p50_ms"] <= shots["p90_ms"] <= shots["p99_ms"] < 5000, shots
    assert config["rps"] == via["rps"] and via["haproxy_cpu_us_per_request"] > 0
    assert config["added_p99_ms"] == pytest.approx(via["p99_ms"] - 10.0, abs=0.002)
    assert config["haproxy_added_p99_ms"] == pytest.approx(via["p99_ms"] - direct["p99_ms"], abs=0.002)
    assert config["target_met"] == (via["rps"] >= 1000 and via["p99_ms"] - 10.0 < 5.0)


# A bad release (30% errors) on a canary of 2 instances: rolled back a few seconds after the release, every time.
TINY = textwrap.dedent("""\
    name: tiny-canary-bad
    duration: 12s
    seed: 13
    fleet:
      instances: 2
      workers: 8
      queue_limit: 32
      service_time: {dist: lognormal, mean: 20ms, p99: 80ms}
      startup: 500ms
      load_balancer: least_outstanding
      health_check: {interval: 250ms, unhealthy_after: 2, healthy_after: 2}
    traffic: {rps: 60, timeout: 2s}
    release:
      at: 3s
      defects: [{kind: error_rate, rate: 0.3}]
    strategy: {kind: canary, steps: [{weight: 50, bake: 4s}, {weight: 100}]}
    analysis: {interval: 2s, failure_limit: 2, min_requests: 20, metrics: [{metric: error_rate, max: 0.05}]}
    rollback: {automatic: true, duration: 1s, on_call: {ack: 10s}}
    monitoring: {scrape_interval: 1s, window: 4s, delay: 0s}
    slo: {availability: 99.0, latency_threshold: 150ms, alert: {long_window: 10s, short_window: 4s}}
""")
FIGURES = ("bad", "detected_at_s", "latency_p99_ms", "min_capacity")
WHEN = ("before", "live", "recorded")


def test_the_calibration_benchmark_runs_as_the_readme_says(scratch):
    """benchmarks/calibration_value.py on a 12-second bad canary, 2 deploys (1 held out) and 3 simulated runs, a
    short live calibration, instead of the three shipped scenarios, 4 deploys and 30 runs."""
    scenario = scratch / "tiny-canary-bad.yaml"
    scenario.write_text(TINY)
    printed = bench(scratch, ["benchmarks/calibration_value.py", "--deploys", "2", "--runs", "3", "--scenarios",
                              str(scenario), "--samples", "300", "--level-seconds", "0.5"], timeout=300)
    text, table = printed.split("\n\n| scenario |")
    out = json.loads(text)
    assert (out["deploys"], out["runs"]) == (2, 3) and len(out["results"]) == 1
    r = out["results"][0]
    assert r["scenario"] == "tiny-canary-bad" and r["seconds"] > 2 * 12
    obs, each = r["observed"], r["observed"]["each"]
    assert [d["outcome"] for d in each] == ["rolled_back", "rolled_back"], each
    for d in each:
        assert d["bad"] > 0 and 0 < d["detected_at_s"] < 9 and 20 < d["latency_p99_ms"] < 2000, d
    # Observed: the held-out deploy (the second; the first is the recording calibrated from).
    assert all(obs[k] == pytest.approx(each[1][k]) for k in FIGURES), (obs, each)
    assert obs["se"]["latency_p99_ms"] > 0 and obs["se"]["bad"] is None  # a bootstrap of its requests; one deploy
    for when in WHEN:
        p = r["predicted"][when]
        assert p["outcomes"] == ["rolled_back"] and p["detected_share"] == 1.0, (when, p)
        assert p["bad"] > 0 and 20 < p["latency_p99_ms"] < 2000 and 0 < p["min_capacity"] <= 1, (when, p)
        for k in FIGURES:
            assert r["absolute_error"][k][when] == pytest.approx(abs(p[k] - obs[k])), (k, when)
            assert r["error_se"][k][when] >= 0, (k, when)
    for when in ("live", "recorded"):  # the staging serves a log-normal of mean 20 ms; the fit must be near it
        service = r["written"][when]["fleet"]["service_time"]
        assert service["dist"] in ("lognormal", "gamma", "exponential"), service
        assert 10 < float(service["mean"].removesuffix("ms")) < 50, service
    for said in ("overhead:", "service time:", "capacity:", "start-up:", "read "):  # live, then recorded
        assert any(line.startswith(said) for line in r["calibration_log"]), (said, r["calibration_log"])
    rows = table.rstrip().splitlines()
    assert rows[0].startswith(" figure | observed ± se |") and rows[1].startswith("|---")
    assert [row.split(" | ")[:2] for row in rows[2:]] == [["| tiny-canary-bad", k] for k in FIGURES], rows
