"""simlab optimize's throughput: trials per second on each executor, the same study each time.

    .venv/bin/python benchmarks/optimize.py [--trials 24] [--runs 16] [--executors serial,local,dask]

The README's search (experiments/knobs.yaml: the canary's steps, failure limit, threshold and interval) on
experiments/checkout-small.yaml, constrained to false_rollback <= 0.1 and deploy_duration_p50 <= 8m, each trial
`--runs` fluid runs beside the shared no-release twin, then the candidates on 32 fresh seeds. Each executor
runs the same study in a fresh directory (nothing cached); the study is seeded, so each finds the same trials
and the same recommendation, which the benchmark checks. Prints JSON: per executor the wall seconds, the
trials per second of the search, the simulated runs per second, and the recommendation.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from simlab.experiment.optimization import optimize

ROOT = Path(__file__).resolve().parent.parent


def one(executor: str, trials: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        result = optimize(ROOT / "experiments" / "checkout-small.yaml", ROOT / "experiments" / "knobs.yaml",
                          constraints=["false_rollback<=0.1", "deploy_duration_p50<=8m"], trials=trials,
                          runs_per_trial=runs, fresh_runs=32, executor=executor, batch=4, out=Path(d) / "out")
        wall = time.perf_counter() - started
    policies = result.trials["fingerprint"].nunique()
    simulated = (policies + 1) * runs + len(result.fresh.candidates) * 32 + 32  # + the twins of both seed sets
    return {"executor": executor, "wall_s": round(wall, 1), "trials_per_s": round(trials / wall, 2),
            "runs_per_s": round(simulated / wall, 1), "distinct_policies": int(policies),
            "recommended": result.recommendation["policy"],
            "overrides": result.recommendation["overrides"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--executors", default="serial,local,dask")
    args = parser.parse_args()
    rows = [one(e, args.trials, args.runs) for e in args.executors.split(",")]
    same = len({json.dumps([r["recommended"], r["overrides"]], sort_keys=True) for r in rows}) == 1
    print(json.dumps({"trials": args.trials, "runs_per_trial": args.runs, "same_recommendation": same,
                      "executors": rows}, indent=2))


if __name__ == "__main__":
    main()
