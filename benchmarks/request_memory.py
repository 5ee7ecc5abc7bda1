"""Request engine memory: peak resident set of one long run at 5,000 rps, by simulated duration.

Each run is a fresh child process (so its peak is its own): 50 instances of 8
workers behind least-outstanding balancing, 5,000 rps, a canary of a good
release at 10 minutes (10% for 10 minutes, then all; a quarter of the run each
in runs under 40 minutes), analysis on the error rate and p99 every minute, then
the promoted fleet for the rest of the run. Prints
the child's peak RSS, its CPU time and the requests simulated.

    .venv/bin/python benchmarks/request_memory.py [--hours 24] [--cap-mb 1024]

--cap-mb runs the child under that address-space limit (resource.setrlimit
RLIMIT_AS), as tests/test_request_scale.py does on a shorter run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SCENARIO = """
name: day-at-5000-rps
duration: {seconds}
fleet:
  instances: 50
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
traffic: {{rps: {rps}, timeout: 10s}}
release: {{at: {release_at}}}
strategy: {{kind: canary, steps: [{{weight: 10, bake: {release_at}}}, {{weight: 100}}]}}
analysis:
  interval: 1m
  min_requests: 100
  metrics: [{{metric: error_rate, max: 0.01}}, {{metric: latency_p99, max: 1s}}]
monitoring: {{scrape_interval: 15s, window: 1m, delay: 30s}}
"""


def day_scenario(seconds: float, rps: float):
    from simlab.scenario import parse_scenario

    return parse_scenario(SCENARIO.format(seconds=seconds, rps=rps, release_at=min(600.0, seconds / 4)))


def child(seconds: float, rps: float, cap_mb: int | None) -> None:
    if cap_mb:
        cap = cap_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from simlab.simulation import simulate

    t = time.process_time()
    summary = simulate(day_scenario(seconds, rps), seed=1, engine="request").summary
    print(json.dumps({"requests": summary["requests"], "outcome": summary["outcome"],
                      "latency_p99_ms": summary["latency_p99_ms"], "cpu_s": round(time.process_time() - t, 1)}))


def measure(seconds: float, rps: float, cap_mb: int | None) -> dict:
    """Run one child; its peak RSS from getrusage once it has been waited for (the only child running)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", str(seconds), "--rps", str(rps)] + (["--cap-mb", str(cap_mb)] if cap_mb else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        return {"simulated_hours": seconds / 3600, "exit": done.returncode, "stderr": done.stderr.strip().splitlines()[-1:]}
    return {"simulated_hours": round(seconds / 3600, 3), **json.loads(done.stdout),
            "peak_rss_mb": round(peak_kb / 1024) if peak_kb > before else "not above an earlier child's"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[24.0], help="simulated hours, one child each")
    parser.add_argument("--rps", type=float, default=5000.0)
    parser.add_argument("--cap-mb", type=int, default=None, help="address-space limit of the child (MiB)")
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.rps, args.cap_mb)
        return
    for hours in sorted(args.hours):  # ru_maxrss over children only grows: smallest first
        print(json.dumps(measure(hours * 3600, args.rps, args.cap_mb)), flush=True)


if __name__ == "__main__":
    main()
