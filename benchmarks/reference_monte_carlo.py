"""Benchmark (b): the reference Monte Carlo on the fluid engine, replications vectorised in lockstep.

1,000 replications of a 200-instance, 2-hour canary rollout at 5,000 rps with
a bad-release probability of 0.2; every decision made by a real
RolloutController per replication. Prints JSON (wall and CPU time, simulated
instance-seconds per wall second, outcomes by release quality).

    .venv/bin/python benchmarks/reference_monte_carlo.py [--runs 1000] [--hours 2] [--p-bad 0.2]
"""
from __future__ import annotations

import argparse
import json
import os
import time

from simlab.engines.fluid.engine import simulate_batch
from simlab.scenario import parse_scenario

SCENARIO = """
name: reference-canary
duration: {seconds}
fleet:
  instances: 200
  zones: 3
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
  startup: 20s
traffic: {{rps: 5000, timeout: 10s}}
release:
  at: 5m
  defects: [{{kind: error_rate, rate: 0.05}}]
strategy: {{kind: canary}}
analysis: {{interval: 1m, metrics: [{{metric: error_rate, max: 0.01}}, {{metric: latency_p99, max: 1s}}]}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--p-bad", type=float, default=0.2)
    args = parser.parse_args()
    scenario = parse_scenario(SCENARIO.format(seconds=int(args.hours * 3600)))
    t, cpu = time.perf_counter(), time.process_time()
    df = simulate_batch(scenario, range(args.runs), p_bad=args.p_bad)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    bad, good = df[df.bad_release], df[~df.bad_release]
    print(json.dumps({
        "scenario": "200 instances x 8 workers, 5000 rps, 2 h, canary 1/10/50/100%, p_bad 0.2 (error_rate 5%)",
        "runs": args.runs, "hours": args.hours, "cpus": os.cpu_count(),
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "instance_seconds_per_wall_s": round(df["instance_seconds"].sum() / wall),
        "replication_seconds_per_wall_s": round(args.runs * args.hours * 3600 / wall),
        "bad_releases": int(len(bad)),
        "p_rolled_back_given_bad": round(float((bad.outcome == "rolled_back").mean()), 3) if len(bad) else None,
        "p_rolled_back_given_good": round(float((good.outcome == "rolled_back").mean()), 3) if len(good) else None,
        "mean_bad_requests_given_bad": round(float(bad["bad"].mean()), 1) if len(bad) else None,
        "mean_detect_s_given_bad": round(float(bad["detected_at_s"].mean()), 1) if len(bad) else None,
        "mean_deploy_s_given_good": round(float(good["deploy_duration_s"].mean()), 1) if len(good) else None,
    }, indent=2))


if __name__ == "__main__":
    main()
