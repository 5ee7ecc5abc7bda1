"""Request engine vs the textbook SimPy model (a process per request, simpy.Resource per instance).

Both simulate the same 50-instance fleet (Poisson arrivals at 5,000 rps, the same
service-time distribution, round-robin balancing). Runs alternate, engine then
textbook, in one process, and each is timed in CPU seconds (this machine is
shared: wall time measures the neighbours); the figure that matters is the ratio
of simulated requests per CPU second, median over the repeats.

    .venv/bin/python benchmarks/request_engine.py [--seconds 60] [--repeat 5] [--balancer round_robin]
"""
from __future__ import annotations

import argparse
import json
import statistics
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
  instances: {instances}
  workers: 8
  queue_limit: 64
  service_time: {{dist: lognormal, mean: 40ms, p99: 200ms}}
  load_balancer: {balancer}
traffic: {{rps: {rps}, timeout: 10s}}
"""


def bench_scenario(seconds: float, instances: int = 50, rps: float = 5000, balancer: str = "round_robin"):
    return parse_scenario(SCENARIO.format(seconds=seconds, instances=instances, rps=rps, balancer=balancer))


def textbook(scenario, seed: int) -> int:
    """The textbook SimPy model: one process per request, one Resource per instance, round robin."""
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


def engine(scenario, seed: int) -> int:
    return simulate(scenario, seed=seed, engine="request").summary["attempts"]


def cpu_rate(model, scenario, seed: int) -> float:
    """Requests simulated per CPU second of this process."""
    t = time.process_time()
    n = model(scenario, seed)
    return n / (time.process_time() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="simulated seconds per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each model, alternated")
    parser.add_argument("--balancer", default="round_robin", help="the engine's balancer (the textbook model's is round robin)")
    args = parser.parse_args()
    scenario = bench_scenario(args.seconds, balancer=args.balancer)
    rates: dict[str, list[float]] = {"engine": [], "textbook": []}
    engine(bench_scenario(1, instances=5, rps=100), 0)  # imports and first-call costs, untimed
    for r in range(args.repeat):
        rates["engine"].append(cpu_rate(engine, scenario, r))
        rates["textbook"].append(cpu_rate(textbook, scenario, r))
    ratios = [e / t for e, t in zip(rates["engine"], rates["textbook"])]
    print(json.dumps({
        "scenario": f"50 instances x 8 workers, 5000 rps, lognormal(40ms, p99 200ms), {args.balancer}",
        "simulated_seconds": args.seconds,
        "engine_requests_per_cpu_s": round(statistics.median(rates["engine"])),
        "textbook_requests_per_cpu_s": round(statistics.median(rates["textbook"])),
        "ratio_median": round(statistics.median(ratios), 2),
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
    }, indent=2))


if __name__ == "__main__":
    main()
