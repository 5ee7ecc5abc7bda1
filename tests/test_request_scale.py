"""The request engine at scale: the same numbers as before its optimisations, bounded memory, quantile error.

The fixed-seed cases below were run on the engine as it stood before the work of issue 15 (a scan of
the pool per least-outstanding dispatch, every request's latency kept); their fingerprints are in
tests/data/request_engine_before.json. Everything must match exactly except the run's latency p50 and
p99, which now come from a log-bucket histogram (simlab.engines.request.histogram) and must be within
its documented relative error, and the run's mean latency, summed in another order (1e-12).

Fingerprints change only with a change of behaviour, never with an optimisation; then re-record the
cases it changes, and only those, and say which in the commit:

    .venv/bin/python -m tests.test_request_scale --record least-canary-latency least-replay ...

The five least-outstanding cases that moved were re-recorded when its ties became HAProxy's (first in,
first out at each count, tests/test_request_balancing.py); least-fleet-40-crash-loop did not move (its
canary splits by weight and no attempt queues, so which instance serves one changes no figure). Their
summary quantiles are since the histogram's.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simlab.engines.request.histogram import RELATIVE_ERROR, LogHistogram
from tests.helpers.scenarios import scenario

CASES = {
    # name: (strategy, overrides, seed): every balancer, splits by weight and by instance, retries, crashes,
    # zone outages, leaks, migrations, dependencies, the thinning path (diurnal) and the mann_whitney judge
    "least-canary-latency": ("canary", {"release.defects": [{"kind": "latency", "multiplier": 3}]}, 1),
    "least-retries-crash": ("canary", {
        "fleet.redispatch": True, "traffic.retries": {"max": 2, "backoff": "50ms", "budget": 0.3},
        "traffic.timeout": "300ms", "failures": [{"kind": "instance_crash", "mtbf": "3m", "restart": "5s"}],
        "release.defects": [{"kind": "crash", "mtbf": "40s"}, {"kind": "error_rate", "rate": 0.05}]}, 2),
    "round-robin-rolling-zone": ("rolling", {
        "fleet.load_balancer": "round_robin", "failures": [{"kind": "zone_outage", "zone": 1, "at": "4m", "duration": "1m"}],
        "release.defects": [{"kind": "memory_leak", "oom_after": "90s"}]}, 3),
    "random-blue-green-migration": ("blue_green", {
        "fleet.load_balancer": "random", "traffic.retries": {"max": 1, "backoff": "20ms"},
        "release.migration": {"duration": "1m", "lock_error_rate": 0.1, "backward_compatible": False}}, 4),
    "two-choices-big-bang-dependency": ("big_bang", {
        "fleet.load_balancer": "power_of_two", "fleet.queue_limit": 4, "traffic.rps": 300,
        "failures": [{"kind": "dependency", "at": "5m", "duration": "1m", "add_latency": "150ms", "error_rate": 0.02}],
        "release.defects": [{"kind": "latency", "add": "30ms", "fraction": 0.3}]}, 5),
    "least-diurnal-mann-whitney": ("canary", {
        "duration": "15m", "traffic.pattern": {"kind": "diurnal", "peak_to_trough": 3, "peak_at": "5m", "period": "15m"},
        "traffic.spikes": [{"at": "9m", "duration": "1m", "multiplier": 1.8}],
        "analysis": {"interval": "30s", "failure_limit": 2, "min_requests": 30,
                     "judge": {"kind": "mann_whitney", "samples": 4},
                     "metrics": [{"metric": "error_rate"}, {"metric": "latency_p99"}]},
        "release.defects": [{"kind": "latency", "multiplier": 1.6, "onset": {"after": "2m"}}]}, 6),
    "least-fleet-40-crash-loop": ("canary", {
        "duration": "5m", "fleet.instances": 40, "fleet.zones": 4, "traffic.rps": 2000, "release.at": "1m",
        "release.defects": [{"kind": "crash_loop", "fraction": 0.5}]}, 7),
    "least-no-release": ("canary", {"duration": "6m", "release": None, "fleet.instances": 12, "traffic.rps": 600}, 8),
    "round-robin-spikes": ("canary", {
        "duration": "8m", "fleet.load_balancer": "round_robin",
        "traffic.spikes": [{"at": "3m", "duration": "40s", "multiplier": 2.5}, {"at": "6m", "duration": "10s", "multiplier": 0.3}],
        "release.defects": [{"kind": "error_rate", "rate": 0.01}]}, 9),
    "least-replay": ("rolling", {
        "duration": "6m", "traffic.pattern": {"kind": "replay", "file": "inline", "rates": [150, 0, 310, 90, 0.5, 200, 160]},
        "traffic.retries": {"max": 1, "backoff": "100ms"}, "traffic.timeout": "250ms"}, 10),
}


def case_scenario(name: str):
    strategy, overrides, _ = CASES[name]
    return scenario(strategy, **overrides)


def fingerprint(result) -> dict:
    """What a run produced: its summary, a digest of each timeline column and of the event log."""
    def digest(values) -> str:
        arr = np.asarray(values)
        data = arr.tobytes() if arr.dtype.kind in "fiub" else "\x1f".join(map(repr, arr.tolist())).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    events = result.events[~result.events["kind"].isin(ADDED_EVENTS)]
    return {
        "summary": result.summary.to_dict(),
        "timeline": {col: digest(result.timeline[col].to_numpy()) for col in result.timeline.columns},
        "events": digest([f"{t!r}|{k}|{sorted(d.items()) if isinstance(d, dict) else d!r}"
                          for t, k, d in zip(events["time"], events["kind"], events["detail"])]),
    }


BEFORE_PATH = Path(__file__).parent / "data" / "request_engine_before.json"
BEFORE = json.loads(BEFORE_PATH.read_text())
HISTOGRAM_KEYS = ("latency_p50_ms", "latency_p99_ms")
ADDED_KEYS = ("rollback_trigger",)  # summary keys added since the recording: new readings, no number changed
ADDED_EVENTS = ("dependency_failure_started", "dependency_failure_ended")  # the scenario's windows, logged since


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_numbers_as_before_the_optimisations(name):
    """Timeline and events identical, summary identical but for the run's quantiles (within the histogram's error)."""
    from simlab import simulate

    before = BEFORE[name]
    now = fingerprint(simulate(case_scenario(name), seed=CASES[name][2], engine="request"))
    assert now["timeline"] == before["timeline"]
    assert now["events"] == before["events"]
    for key, was in before["summary"].items():
        if key in HISTOGRAM_KEYS and was is not None:
            assert now["summary"][key] == pytest.approx(was, rel=RELATIVE_ERROR), key
        elif key == "latency_mean_ms" and was is not None:
            assert now["summary"][key] == pytest.approx(was, rel=1e-12), key
        else:
            assert now["summary"][key] == was, key
    assert set(now["summary"]) - set(ADDED_KEYS) == set(before["summary"])


def test_the_record_command_refuses_an_unknown_case_and_writes_nothing():
    """The docstring's re-recording command: a misspelt case name is refused before anything is run or written."""
    done = subprocess.run([sys.executable, "-m", "tests.test_request_scale", "--record", "least-canary-latncy"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=120)
    assert done.returncode == 1 and "unknown cases ['least-canary-latncy']" in done.stderr
    assert json.loads(BEFORE_PATH.read_text()) == BEFORE


LONG_RUN = """
import resource, sys
import pandas, pyarrow, simpy  # what a run loads, before the cap
from simlab.scenario import parse_scenario
from simlab.simulation import simulate

scenario = parse_scenario('''
name: ten-minutes-at-5000-rps
duration: 10m
fleet: {instances: 50, workers: 8, queue_limit: 64, service_time: {dist: lognormal, mean: 40ms, p99: 200ms}}
traffic: {rps: 5000, timeout: 10s}
release: {at: 2m}
strategy: {kind: canary, steps: [{weight: 10, bake: 2m}, {weight: 100}]}
analysis: {interval: 1m, min_requests: 100, metrics: [{metric: error_rate, max: 0.01}, {metric: latency_p99, max: 1s}]}
monitoring: {scrape_interval: 15s, window: 1m, delay: 30s}
''')
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
cap = int(status["VmSize"].split()[0]) * 1024 + int(sys.argv[1]) * 2**20  # what is mapped now, and the budget
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
summary = simulate(scenario, seed=1, engine="request").summary
print(summary["requests"], summary["outcome"], summary["latency_p99_ms"])
"""


def run_capped(budget_mb: int) -> subprocess.CompletedProcess:
    """The long run in a child whose address space may grow `budget_mb` past what the imports mapped.

    Arrow's default pool reserves a gigabyte of address space up front (mostly never touched): the child
    uses the system allocator, so the cap measures what the run allocates.
    """
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", LONG_RUN, str(budget_mb)], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parents[1], timeout=600)


def test_three_million_requests_run_in_64_mb_more_than_the_imports():
    """10 minutes at 5,000 rps: keeping every latency (as before) took 200 MB more; per-second ledgers need a few."""
    done = run_capped(64)
    assert done.returncode == 0, done.stderr[-2000:]
    requests, outcome, p99 = done.stdout.split()
    assert int(requests) > 2_900_000 and outcome == "promoted" and 150 < float(p99) < 250


def test_the_cap_is_enforced():
    done = run_capped(1)
    assert done.returncode != 0 and "MemoryError" in done.stderr


@pytest.mark.parametrize("n", [1, 2, 3, 10, 999, 200_000])
def test_histogram_quantiles_are_within_the_stated_relative_error_of_the_exact_ones(n):
    """Against np.percentile (linear interpolation), added in uneven chunks as the engine adds closed seconds."""
    rng = np.random.default_rng(n)
    samples = {
        "lognormal": rng.lognormal(np.log(0.04), 0.9, n),
        "exponential": rng.exponential(0.02, n),
        "constant": np.full(n, 0.04),
        "bimodal": np.where(rng.random(n) < 0.95, rng.exponential(0.005, n), 2.0 + rng.exponential(1.0, n)),
        "with zeros and extremes": np.concatenate([rng.exponential(0.02, n), [0.0, 3e-9, 5e4]]),
    }
    for name, values in samples.items():
        hist = LogHistogram()
        for chunk in np.array_split(values, min(len(values), 7)):
            hist.add(chunk)
        assert hist.count == len(values)
        for q in (0.0, 0.5, 0.9, 0.99, 0.999, 1.0):
            exact = float(np.percentile(values, 100 * q))
            assert hist.quantile(q) == pytest.approx(exact, rel=RELATIVE_ERROR * (1 + 1e-9), abs=1e-300), (name, q)


def test_an_empty_histogram_has_no_quantile():
    assert LogHistogram().quantile(0.5) is None


@pytest.mark.parametrize("command", [
    ["benchmarks/request_engine.py", "--seconds", "1", "--repeat", "1"],
    ["benchmarks/request_scaling.py", "--requests", "2000", "--rounds", "1", "--sizes", "5,50"],
    ["benchmarks/request_memory.py", "--hours", "0.01"],
], ids=lambda c: c[0])
def test_the_benchmarks_run_as_the_readme_runs_them(command):
    """The README's benchmark commands at a fraction of their size (a few seconds each): they run and print figures."""
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[0] if "memory" in command[0] else done.stdout)
    if "engine" in command[0]:
        assert out["engine_requests_per_cpu_s"] > 0 and out["ratio_median"] > 0
    elif "scaling" in command[0]:
        assert set(out["models"]) == {"round_robin", "random", "least_outstanding", "power_of_two", "textbook"}
        assert all(row["slowdown_50_vs_5"] > 0 for row in out["models"].values())
    else:
        assert out["requests"] > 150_000 and out["peak_rss_mb"] > 0


def record(names: list[str]) -> None:
    """Re-record the named cases' fingerprints from the engine as it stands (the others are kept)."""
    from simlab import simulate

    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; expected some of {sorted(CASES)}")
    data = dict(BEFORE)
    for name in names:
        data[name] = fingerprint(simulate(case_scenario(name), seed=CASES[name][2], engine="request"))
    BEFORE_PATH.write_text(json.dumps(data, indent=1, sort_keys=True))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Re-record fixed-seed fingerprints after a change of behaviour.")
    parser.add_argument("--record", nargs="+", metavar="CASE", required=True, help=f"cases among {sorted(CASES)}")
    record(parser.parse_args().record)
