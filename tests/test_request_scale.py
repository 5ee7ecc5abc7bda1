"""The request engine at scale: the same numbers as before its optimisations, bounded memory, quantile error.

The fixed-seed cases below were run on the engine as it stood before the work of issue 15 (a scan of
the pool per least-outstanding dispatch, every request's latency kept); their fingerprints are in
tests/data/request_engine_before.json. Everything must match exactly except the run's latency p50 and
p99, which now come from a log-bucket histogram (simlab.engines.request.histogram) and must be within
its documented relative error, and the run's mean latency, summed in another order (1e-12).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

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

    events = result.events
    return {
        "summary": result.summary.to_dict(),
        "timeline": {col: digest(result.timeline[col].to_numpy()) for col in result.timeline.columns},
        "events": digest([f"{t!r}|{k}|{sorted(d.items()) if isinstance(d, dict) else d!r}"
                          for t, k, d in zip(events["time"], events["kind"], events["detail"])]),
    }


BEFORE = json.loads((Path(__file__).parent / "data" / "request_engine_before.json").read_text())
RELATIVE_ERROR = 0.001  # placeholder until the histogram lands
HISTOGRAM_KEYS = ("latency_p50_ms", "latency_p99_ms")


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
    assert set(now["summary"]) == set(before["summary"])
