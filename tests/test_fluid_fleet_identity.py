"""The fluid engine's fleet transitions as arrays: the same numbers as the per-instance objects they replaced.

The fixed-seed runs below were recorded on the fluid engine as it stood before fleet transitions
became arrays (issue 15: a heap event per instance, `Inst` objects, `stop()` scanning every instance):
crashes, crash loops, memory leaks, zone outages, every strategy, rollbacks, the fidelity grid's
rollout cases, the example experiments, and lockstep batches where replications share the data plane.
Their fingerprints are in tests/data/fluid_fleet_before.json; everything must match byte for byte
(summaries as JSON, each timeline column and the event log as digests).

The event logs of 12 cases were written again when monitoring windows began to report latencies measured on
their requests (`LatencyModel.measured`): their analysis events quote other latency values; every summary,
timeline and decision stayed as recorded. Then 18 cases were written again when the wait convolution's
service-time atoms gained a tail (`LatencyModel._with_wait`): their latency figures moved in the fourth or
fifth digit and their slow counts rose where pools wait (0-22 requests a run); no outcome changed. Then all 23
were written again when the data plane's outcome counts became common random numbers (inverse CDFs at uniforms of
each replication's seed, engines/fluid/common_draws.py): every count is another draw of the same law; no outcome
changed, and the single runs' bad requests moved by their noise (e.g. 266 -> 270, 1,516 -> 1,504, 38 -> 54).

Regenerate the fixture only for a deliberate change of the model:
    .venv/bin/python -m tests.test_fluid_fleet_identity --write
"""
from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.scenarios import scenario

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "data" / "fluid_fleet_before.json"

CRASH = [{"kind": "crash", "mtbf": "40s"}, {"kind": "error_rate", "rate": 0.05}]
LEAK = [{"kind": "memory_leak", "oom_after": "90s", "fraction": 0.5}]
LOOP = [{"kind": "crash_loop", "fraction": 0.5}]
OUTAGE = [{"kind": "zone_outage", "zone": 1, "at": "3m", "duration": "1m"}]

SINGLES = {
    # name: (strategy, overrides, seed, exact control)
    "canary-bad-rollback": ("canary", {"release.defects": [{"kind": "error_rate", "rate": 0.2}]}, 1, False),
    "rolling-crash-defect": ("rolling", {"release.defects": CRASH}, 2, False),
    "blue-green-crash-failures": ("blue_green", {
        "failures": [{"kind": "instance_crash", "mtbf": "3m", "restart": "25s"}]}, 3, False),
    "big-bang-leak": ("big_bang", {"release.defects": LEAK, "duration": "6m"}, 4, False),
    "canary-leak-20": ("canary", {"fleet.instances": 20, "fleet.zones": 4, "traffic.rps": 600,
                                  "release.defects": LEAK, "duration": "7m", "release.at": "1m"}, 4, False),
    "canary-crash-loop-40": ("canary", {"duration": "5m", "fleet.instances": 40, "fleet.zones": 4, "traffic.rps": 2000,
                                        "release.at": "1m", "release.defects": LOOP}, 7, False),
    "rolling-crash-loop-onset": ("rolling", {
        "release.defects": [{"kind": "crash_loop", "fraction": 0.6, "onset": {"after": "1m"}}]}, 5, False),
    "rolling-zone-leak-round-robin": ("rolling", {"fleet.load_balancer": "round_robin", "failures": OUTAGE,
                                                  "release.defects": LEAK, "duration": "7m"}, 3, False),
    "no-release-zone-crash-restart-now": ("canary", {"release": None, "duration": "10m", "failures": [
        {"kind": "zone_outage", "zone": 0, "at": "2m", "duration": "90s"},
        {"kind": "instance_crash", "mtbf": "2m", "restart": "5s"}]}, 6, False),
    "big-bang-zone-during-start": ("big_bang", {"failures": [
        {"kind": "zone_outage", "zone": 2, "at": "125s", "duration": "30s"}], "release.defects": CRASH}, 8, False),
    "blue-green-migration-crash": ("blue_green", {
        "release.migration": {"duration": "1m", "lock_error_rate": 0.1, "backward_compatible": False},
        "release.defects": [{"kind": "crash", "mtbf": "1m"}], "duration": "8m"}, 9, False),
    "canary-everything-exact-control": ("canary", {
        "duration": "5m", "fleet.instances": 12, "traffic.rps": 400,
        "traffic.retries": {"max": 1, "backoff": "50ms", "budget": 0.3},
        "failures": [{"kind": "instance_crash", "mtbf": "90s", "restart": "20s"},
                     {"kind": "zone_outage", "zone": 2, "at": "3m", "duration": "1m"}],
        "release.defects": [{"kind": "crash", "mtbf": "1m", "fraction": 0.5},
                            {"kind": "memory_leak", "oom_after": "2m", "fraction": 0.5},
                            {"kind": "crash_loop", "fraction": 0.3, "onset": {"after": "2m"}}]}, 10, True),
    "rolling-surge-least-outstanding-crashes": ("rolling", {
        "fleet.instances": 18, "fleet.zones": 3, "traffic.rps": 540, "duration": "8m", "release.at": "1m",
        "strategy.batch": 5, "strategy.max_surge": 3, "strategy.max_unavailable": 1, "strategy.bake": "30s",
        "failures": [{"kind": "instance_crash", "mtbf": "4m", "restart": "30s"}],
        "release.defects": [{"kind": "crash", "mtbf": "2m", "fraction": 0.4}]}, 11, False),
}

EXPERIMENTS = {"checkout-canary": ("experiments/checkout-canary.yaml", 7, 1500),  # name: (file, seed, duration)
               "staging-failures": ("experiments/staging-failures.yaml", 17, None)}

FIDELITY = ("crashes every minute, retried", "zone outage 2 of 6", "canary bad release (20% errors)",
            "big bang capacity gap")

BATCH_BASE = """
name: batch
duration: {duration}
fleet:
  instances: {instances}
  zones: 3
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
  startup: 20s
traffic: {{rps: {rps}, timeout: 10s}}
release:
  at: 5m
  defects: {defects}
strategy: {strategy}
analysis: {{interval: 1m, metrics: [{{metric: error_rate, max: 0.01}}, {{metric: latency_p99, max: 1s}}]}}
failures: {failures}
"""

BATCHES = {
    # name: (template fields, seeds, p_bad)
    "reference-canary": (dict(duration=1800, instances=200, rps=5000, strategy="{kind: canary}", failures="[]",
                              defects="[{kind: error_rate, rate: 0.05}]"), range(12), 0.3),
    "rolling-crashes-zone-loop": (dict(
        duration=900, instances=30, rps=750, strategy="{kind: rolling, batch: 5, bake: 1m}",
        failures="[{kind: instance_crash, mtbf: 8m, restart: 30s}, {kind: zone_outage, zone: 1, at: 8m, duration: 3m}]",
        defects="[{kind: crash, mtbf: 2m, fraction: 0.5}, {kind: crash_loop, fraction: 0.2, onset: {after: 5m}}]"),
        range(100, 108), 0.5),
    "canary-leak": (dict(
        duration=600, instances=30, rps=750, strategy="{kind: canary}", failures="[]",
        defects="[{kind: memory_leak, oom_after: 2m, fraction: 0.3}]"), range(300, 304), 0.5),
    "blue-green-zone-at-release": (dict(
        duration=1500, instances=90, rps=2000, strategy="{kind: blue_green, warmup: 1m, keep_old: 2m}",
        failures="[{kind: zone_outage, zone: 0, at: 305s, duration: 2m}]",
        defects="[{kind: crash_loop, fraction: 0.4}]"), range(200, 210), 0.5),
}


def digest(values) -> str:
    arr = np.asarray(values)
    data = arr.tobytes() if arr.dtype.kind in "fiub" else "\x1f".join(map(repr, arr.tolist())).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(result) -> dict:
    """What a run produced: its summary, a digest of each timeline column and of the event log (less the events
    logged since the fixture was written, ADDED_EVENTS)."""
    ev = result.events[~result.events["kind"].isin(ADDED_EVENTS)]
    return {
        "summary": result.summary.to_dict(),
        "timeline": {col: digest(result.timeline[col].to_numpy()) for col in result.timeline.columns},
        "events": digest([f"{t!r}|{k}|{sorted(d.items()) if isinstance(d, dict) else d!r}"
                          for t, k, d in zip(ev["time"], ev["kind"], ev["detail"])]),
    }


def run_single(name: str) -> dict:
    from simlab.engines.fluid.engine import FluidEngine

    strategy, overrides, seed, exact = SINGLES[name]
    return fingerprint(FluidEngine(scenario(strategy, **overrides), seed, exact_control=exact).run())


def run_experiment(name: str) -> dict:
    from simlab import load_scenario, simulate

    path, seed, duration = EXPERIMENTS[name]
    sc = load_scenario(ROOT / path)
    if duration:
        sc = sc.model_copy(update={"duration": float(duration)})
    return fingerprint(simulate(sc, seed=seed, engine="fluid"))


def run_fidelity(name: str) -> dict:
    from simlab import simulate
    from simlab.experiment.fidelity import cases
    from simlab.scenario import validate_scenario

    case = next(c for c in cases() if c.name == name)
    sc = validate_scenario(copy.deepcopy(case.scenario))
    return fingerprint(simulate(sc, seed=1, engine="fluid"))


def run_batch(name: str) -> dict:
    """Every replication's summary and fleet events in a lockstep batch, and how the batch was drawn."""
    from simlab.engines.fluid.engine import Lockstep
    from simlab.scenario import parse_scenario

    fields, seeds, p_bad = BATCHES[name]
    sim = Lockstep(parse_scenario(BATCH_BASE.format(**fields)), list(seeds), p_bad=p_bad).run()
    return {"summaries": [sim.summary(r) for r in range(sim.R)],
            "fleet_events": [digest([repr(e) for e in f.events]) for f in sim.fleets],
            "block_ticks": sim.block_ticks, "quiet_checks": sim.quiet_checks}


RUNNERS = {"single": (SINGLES, run_single), "experiment": (EXPERIMENTS, run_experiment),
           "fidelity": (FIDELITY, run_fidelity), "batch": (BATCHES, run_batch)}
IDS = [f"{kind}:{name}" for kind, (names, _) in RUNNERS.items() for name in names]


ADDED_EVENTS = ("dependency_failure_started", "dependency_failure_ended")  # the scenario's failure windows
ADDED_KEYS = ("rollback_trigger",)
"""Summary keys added since the fixture was written: new readings of the same run, not a change to any number."""


def observe(case_id: str, added: bool = False):
    kind, name = case_id.split(":", 1)
    out = json.loads(json.dumps(RUNNERS[kind][1](name)))  # as the fixture holds it (floats by repr: exact)
    if not added:
        for summary in [out.get("summary"), *out.get("summaries", [])]:
            for key in ADDED_KEYS if summary else ():
                summary.pop(key, None)
    return out


@pytest.mark.parametrize("case_id", IDS)
def test_same_numbers_as_the_per_instance_fleet(case_id):
    before = json.loads(FIXTURE.read_text())[case_id]
    now = observe(case_id)
    assert json.dumps(now, sort_keys=True) == json.dumps(before, sort_keys=True)


def test_the_cases_reach_every_lifecycle_path():
    """The fixture is only worth its name if the runs crash, loop, leak, lose zones and roll back."""
    fixture = json.loads(FIXTURE.read_text())
    rows = [fp["summary"] for k, fp in fixture.items() if k.startswith("single:")]
    rows += [b for k, v in fixture.items() if k.startswith("batch:") for b in v["summaries"]]
    assert {"promoted", "rolled_back"} <= {r["outcome"] for r in rows}
    assert sum(r["failed_reset"] for r in rows) > 0  # crashes failed in-flight work


def test_the_scale_benchmark_runs_as_the_readme_says():
    """benchmarks/fluid_scale.py as a command, at 300 instances x 3 runs x 15 min instead of 20,000 x 100 x 1 h."""
    done = subprocess.run([sys.executable, "benchmarks/fluid_scale.py", "--instances", "300", "--runs", "3",
                           "--hours", "0.25"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    assert sum(out["outcomes"].values()) == out["runs"] == 3
    assert out["peak_rss_mb"] > 50 and out["wall_s"] > 0 and out["instance_seconds_per_wall_s"] > 0


if __name__ == "__main__" and "--write" in sys.argv:
    FIXTURE.write_text(json.dumps({case_id: observe(case_id) for case_id in IDS}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE} ({len(IDS)} cases)")
