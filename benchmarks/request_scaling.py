"""Request engine: cost per request against fleet size, for every load balancer.

Each fleet (5, 50 and 500 instances of 8 workers, lognormal service of mean
40 ms) gets 100 rps per instance (half its capacity) for as many simulated
seconds as make --requests requests, so every run simulates the same work.
Runs alternate over fleet sizes and balancers in rounds, each timed in CPU
seconds; the figure is the median requests per CPU second and, per balancer,
how much slower a request is at the largest fleet than at the smallest. The
textbook SimPy model (benchmarks/request_engine.py, round robin) runs beside
them as the reference: what a hundred times the requests in flight costs an
event loop by itself (a deeper heap, colder memory).

    .venv/bin/python benchmarks/request_scaling.py [--requests 200000] [--rounds 3] [--sizes 5,50,500]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from request_engine import bench_scenario, cpu_rate, engine, textbook  # noqa: E402

BALANCERS = ("round_robin", "random", "least_outstanding", "power_of_two")
RPS_PER_INSTANCE = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every size and balancer")
    parser.add_argument("--sizes", default="5,50,500", help="fleet sizes, comma-separated")
    parser.add_argument("--balancers", default=",".join(BALANCERS))
    parser.add_argument("--no-textbook", action="store_true", help="leave out the textbook model")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    balancers = args.balancers.split(",")
    models = {b: engine for b in balancers} | ({} if args.no_textbook else {"textbook": textbook})
    rates: dict[tuple[str, int], list[float]] = {(b, n): [] for b in models for n in sizes}
    engine(bench_scenario(1, instances=5, rps=100), 0)  # imports and first-call costs, untimed
    for r in range(args.rounds):
        for n in sizes:
            rps = RPS_PER_INSTANCE * n
            for b, model in models.items():
                scenario = bench_scenario(args.requests / rps, instances=n, rps=rps, balancer=b if b in BALANCERS else "round_robin")
                rates[(b, n)].append(cpu_rate(model, scenario, r))
    table = {}
    for b in models:
        med = {n: statistics.median(rates[(b, n)]) for n in sizes}
        table[b] = {
            **{f"{n}_instances_requests_per_cpu_s": round(med[n]) for n in sizes},
            f"slowdown_{sizes[-1]}_vs_{sizes[0]}": round(med[sizes[0]] / med[sizes[-1]], 2),
        }
    print(json.dumps({"requests_per_run": args.requests, "rounds": args.rounds, "models": table}, indent=2))


if __name__ == "__main__":
    main()
