"""Benchmark (d): wall time of a CPU-bound batch of runs on a real Dask cluster, per worker process.

A `dask scheduler` and `dask worker --nworkers N --nthreads 1` on loopback (started
and stopped here, as tests/test_dask_cluster.py does), running the same request-engine
runs with N = 1, 2, …: the speed-up per added worker process, and the check that every
N gives the very same runs. On this 2-core machine two worker processes are the most
that can help; on a machine with more cores (or workers on several machines) the
speed-up stays near N while the runs outnumber the workers, since each run is one
independent task. Each cluster runs one run per worker before the clock starts, so the
workers' imports are not counted.

    .venv/bin/python benchmarks/dask_scaling.py [--runs 16] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.helpers

from simlab.experiment import replicate  # noqa: E402
from simlab.scenario import parse_scenario  # noqa: E402
from tests.helpers.dask_cluster import dask_cluster  # noqa: E402

SCENARIO = """
name: dask-scaling
duration: 10m
fleet: {instances: 6, workers: 4, service_time: {dist: lognormal, mean: 40ms, p99: 200ms}}
traffic: {rps: 300, timeout: 5s}
release: {at: 1m, defects: [{kind: error_rate, rate: 0.05}], bad_probability: 0.5}
strategy: {kind: canary, steps: [{weight: 20, bake: 2m}, {weight: 100}]}
analysis: {interval: 30s, metrics: [{metric: error_rate, max: 0.02}]}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    scenario = parse_scenario(SCENARIO)
    out, frames = {"runs": args.runs, "engine": "request", "wall_s": {}}, []
    for n in args.workers:
        with tempfile.TemporaryDirectory() as tmp, dask_cluster(Path(tmp), workers=n) as address:
            # each worker process imports simlab and numpy once (1-2 s): done before the clock starts, on a run
            # per worker, so the figure is the sweep's own speed-up, not start-up shared across fewer runs
            replicate(scenario, runs=2 * n, seed=10_000, engine="request", executor="dask", scheduler=address)
            t = time.perf_counter()
            frames.append(replicate(scenario, runs=args.runs, seed=1, engine="request", executor="dask",
                                    scheduler=address))
            out["wall_s"][n] = round(time.perf_counter() - t, 2)
    first = args.workers[0]
    out["speedup_vs_%d" % first] = {n: round(out["wall_s"][first] / w, 2) for n, w in out["wall_s"].items()}
    out["identical_runs"] = all(f.equals(frames[0]) for f in frames)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
