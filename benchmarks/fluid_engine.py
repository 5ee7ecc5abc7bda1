"""Benchmark (a): the fluid engine against the request engine on the same scenario.

A 50-instance canary at 2,000 rps (a bad release on half the seeds), both
engines on the same seeds in one process: simulated instance-seconds per
wall second for each, their ratio, and how far their summaries agree.

    .venv/bin/python benchmarks/fluid_engine.py [--minutes 10] [--seeds 2] [--instances 50 --rps 2000]

`--instances 30 --rps 3600` is the 30-instance case (utilisation 0.6 before the
release), where the per-run speed ratio is recorded against the 100x target:
`per_run_speedup` for runs one at a time with their timelines (`simlab run`),
`batch.speedup_per_run` for `--batch` runs in one lockstep batch, as
replicate, compare and sweep run the fluid engine.
`per_run_speedup` is each seed's request wall over its fluid wall; the first
fluid run of a process also builds the station tables its pools need (they are
kept for later runs), so `warm_speedup` leaves it out. `load_average` is the
machine's 1-minute load before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from simlab.scenario import parse_scenario
from simlab.simulation import simulate

SCENARIO = """
name: bench-fluid
duration: {seconds}
fleet:
  instances: {instances}
  zones: 3
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
  startup: 10s
  health_check: {{interval: 2s, unhealthy_after: 2, healthy_after: 1}}
traffic: {{rps: {rps}, timeout: 10s}}
release:
  at: 1m
  defects: {defects}
strategy: {{kind: canary, steps: [{{weight: 10, bake: 2m}}, {{weight: 50, bake: 2m}}, {{weight: 100}}]}}
analysis: {{interval: 30s, min_requests: 100, metrics: [{{metric: error_rate, max: 0.02}}]}}
monitoring: {{scrape_interval: 5s, window: 30s, delay: 10s}}
failures: [{{kind: instance_crash, mtbf: 20m, restart: 30s}}]
"""
KEYS = ("requests", "bad", "failed_reset", "latency_mean_ms", "latency_p99_ms", "detected_at_s", "deploy_duration_s")


def batch_speed(args, request_wall: float) -> dict:
    """Per-run wall time of `--batch` good-release runs simulated together (simulate_batch, as the Monte Carlo runs
    them: summaries, no timelines), against the request engine's mean wall time per run above."""
    from simlab.simulation import simulate_batch

    scenario = parse_scenario(SCENARIO.format(seconds=int(args.minutes * 60), defects="[]", instances=args.instances,
                                              rps=args.rps))
    t = time.perf_counter()
    simulate_batch(scenario, list(range(1000, 1000 + args.batch)))
    per_run = (time.perf_counter() - t) / args.batch
    return {"runs": args.batch, "fluid_wall_s_per_run": round(per_run, 4),
            "speedup_per_run": round(request_wall / per_run, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--rps", type=float, default=2000.0)
    parser.add_argument("--batch", type=int, default=32, help="runs of the good release in one lockstep batch, "
                        "as replicate/compare/sweep run them (0: skip)")
    args = parser.parse_args()
    out: dict = {"scenario": f"{args.instances} instances x 8 workers, {args.rps:g} rps, canary 10/50/100%, "
                             f"crashes (mtbf 20m)",
                 "minutes": args.minutes, "cases": []}
    totals = {"request": [0.0, 0.0], "fluid": [0.0, 0.0]}  # instance-seconds, wall seconds
    walls = []  # each case's (request, fluid) wall seconds, unrounded: a fluid run is 0.05-0.1 s
    load_before = round(os.getloadavg()[0], 2)
    for seed in range(args.seeds):
        defects = '[{kind: error_rate, rate: 0.1}]' if seed % 2 else "[]"
        scenario = parse_scenario(SCENARIO.format(seconds=int(args.minutes * 60), defects=defects,
                                                  instances=args.instances, rps=args.rps))
        case = {"seed": seed, "bad_release": bool(seed % 2)}
        walls.append({})
        for engine in ("request", "fluid"):
            t = time.perf_counter()
            s = simulate(scenario, seed=seed, engine=engine).summary
            wall = walls[-1][engine] = time.perf_counter() - t
            totals[engine][0] += s["instance_seconds"]
            totals[engine][1] += wall
            case[engine] = {k: (None if s[k] is None else round(float(s[k]), 2)) for k in KEYS} | {"wall_s": round(wall, 3)}
        out["cases"].append(case)
    rate = {e: totals[e][0] / totals[e][1] for e in totals}
    out["instance_seconds_per_wall_s"] = {e: round(v) for e, v in rate.items()}
    out["speedup"] = round(rate["fluid"] / rate["request"], 1)
    per_run = [w["request"] / max(w["fluid"], 1e-9) for w in walls]
    out["per_run_speedup"] = [round(x, 1) for x in per_run]
    if len(per_run) > 1:
        out["warm_speedup"] = round(float(np.median(per_run[1:])), 1)
    if args.batch:
        out["batch"] = batch_speed(args, totals["request"][1] / args.seeds)
    out["load_average"] = [load_before, round(os.getloadavg()[0], 2)]
    rel = lambda k: [abs(c["fluid"][k] - c["request"][k]) / c["request"][k] for c in out["cases"] if c["request"][k]]  # noqa: E731
    out["max_relative_gap"] = {k: round(float(np.max(rel(k))), 3) for k in ("latency_mean_ms", "latency_p99_ms") if rel(k)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
