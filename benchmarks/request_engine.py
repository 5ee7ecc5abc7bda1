"""Request engine vs a naive SimPy model (a process per request, simpy.Resource per instance).

Both simulate the same 50-instance fleet (same arrivals, service-time
distribution and round-robin balancing), in one process on one machine; the
figure that matters is the ratio of simulated requests per wall second.

    .venv/bin/python benchmarks/request_engine.py [--seconds 300] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import simpy

from simlab.dists import from_spec
from simlab.scenario import parse_scenario
from simlab.simulation import simulate

SCENARIO = """
name: bench-50
duration: {seconds}
fleet:
  instances: 50
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
  load_balancer: round_robin
traffic: {{rps: 5000, timeout: 10s}}
"""


def naive(scenario, seed: int) -> int:
    """The textbook SimPy model: one process per request, one Resource per instance."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    dist = from_spec(scenario.fleet.service_time)  # a LogNormal: draw with its mu and sigma
    servers = [simpy.Resource(env, capacity=scenario.fleet.workers) for _ in range(scenario.fleet.instances)]
    rate, done = scenario.traffic.rps, [0]

    def request(server, service):
        with server.request() as slot:
            yield slot
            yield env.timeout(service)
        done[0] += 1

    def arrivals():
        i = 0
        while True:
            yield env.timeout(rng.exponential(1.0 / rate))
            i += 1
            env.process(request(servers[i % len(servers)], rng.lognormal(dist.mu, dist.sigma)))

    env.process(arrivals())
    env.run(until=scenario.duration)
    return done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300, help="simulated seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each model; the best is kept")
    args = parser.parse_args()
    scenario = parse_scenario(SCENARIO.format(seconds=args.seconds))
    rates = {"engine": [], "naive": []}
    for r in range(args.repeat):
        t = time.perf_counter()
        n = simulate(scenario, seed=r).summary["attempts"]
        rates["engine"].append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        n = naive(scenario, seed=r)
        rates["naive"].append(n / (time.perf_counter() - t))
    best = {k: max(v) for k, v in rates.items()}
    print(json.dumps({
        "scenario": "50 instances x 8 workers, 5000 rps, lognormal(40ms, p99 200ms), round robin",
        "simulated_seconds": args.seconds,
        "engine_requests_per_s": round(best["engine"]),
        "naive_requests_per_s": round(best["naive"]),
        "ratio": round(best["engine"] / best["naive"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
