"""A big fleet on the fluid engine: 100 replications of a 20,000-instance, 1-hour canary, in lockstep.

The reference Monte Carlo's scenario (benchmark b, reference_monte_carlo.py) with 100 times the
instances and the traffic (25 rps per instance), so that what costs is the fleet: 20,000 instances
started, health-checked into rotation and drained per replication. Prints JSON: wall and CPU time, peak memory (RSS),
outcomes. `--profile` prints cProfile's top functions instead of timing cleanly.

    .venv/bin/python benchmarks/fluid_scale.py [--instances 20000] [--runs 100] [--hours 1] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

from reference_monte_carlo import SCENARIO  # benchmark (b)'s canary, run from benchmarks/

from simlab.engines.fluid.engine import simulate_batch
from simlab.experiment.overrides import apply_overrides
from simlab.scenario import parse_scenario


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--p-bad", type=float, default=0.2)
    parser.add_argument("--profile", action="store_true", help="print cProfile's 25 costliest functions")
    args = parser.parse_args(argv)
    scenario = apply_overrides(parse_scenario(SCENARIO.format(seconds=int(args.hours * 3600))),
                               {"name": "big-fleet-canary", "fleet.instances": args.instances,
                                "traffic.rps": 25 * args.instances})
    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            simulate_batch(scenario, range(args.runs), p_bad=args.p_bad)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return None
    wall, cpu = time.perf_counter(), time.process_time()
    df = simulate_batch(scenario, range(args.runs), p_bad=args.p_bad)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bad = int(df["bad_release"].sum())
    out = {
        "scenario": f"{args.instances} instances x 8 workers, {25 * args.instances} rps, {args.hours:g} h, "
                    f"canary 1/10/50/100%, p_bad {args.p_bad} (error_rate 5%)",
        "runs": args.runs,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "load_average_1m": round(os.getloadavg()[0], 1),
        "instance_seconds_per_wall_s": round(df["instance_seconds"].sum() / wall),
        "outcomes": {str(k): int(v) for k, v in df["outcome"].value_counts().sort_index().items()},
        "bad_releases": bad,
        "mean_bad_requests_given_bad": round(float(df[df.bad_release]["bad"].mean()), 1) if bad else None,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
