"""simlab optimize's throughput: trials per second on each executor, the same study each time.

    .venv/bin/python benchmarks/optimize.py [--trials 24] [--runs 16] [--fresh-runs 32] [--executors serial,local,dask]

The README's search (experiments/knobs.yaml: the canary's steps, failure limit, threshold and interval) on
experiments/checkout-small.yaml, constrained to false_rollback <= 0.1 and deploy_duration_p50 <= 8m, each trial
`--runs` fluid runs beside the shared no-release twin, then the candidates on `--fresh-runs` fresh seeds (32;
fewer for a quick check, as tests/test_benchmark_commands.py runs it). Each executor runs the same study in a
fresh directory (nothing cached); the study is seeded, so each finds the same trials and the same
recommendation, which the benchmark checks. Prints JSON: per executor the wall seconds, the
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


def one(executor: str, trials: int, runs: int, fresh: int = 32) -> dict:
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        result = optimize(ROOT / "experiments" / "checkout-small.yaml", ROOT / "experiments" / "knobs.yaml",
                          constraints=["false_rollback<=0.1", "deploy_duration_p50<=8m"], trials=trials,
                          runs_per_trial=runs, fresh_runs=fresh, executor=executor, batch=4, out=Path(d) / "out")
        wall = time.perf_counter() - started
    policies = result.trials["fingerprint"].nunique()
    simulated = (policies + 1) * runs + len(result.fresh.candidates) * fresh + fresh  # + the twins of both seed sets
    return {"executor": executor, "wall_s": round(wall, 1), "trials_per_s": round(trials / wall, 2),
            "runs_per_s": round(simulated / wall, 1), "distinct_policies": int(policies),
            "recommended": result.recommendation["policy"],
            "overrides": result.recommendation["overrides"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--fresh-runs", type=int, default=32, help="fresh seeds the candidates are run on")
    parser.add_argument("--executors", default="serial,local,dask")
    args = parser.parse_args()
    rows = [one(e, args.trials, args.runs, args.fresh_runs) for e in args.executors.split(",")]
    same = len({json.dumps([r["recommended"], r["overrides"]], sort_keys=True) for r in rows}) == 1
    print(json.dumps({"trials": args.trials, "runs_per_trial": args.runs, "fresh_runs": args.fresh_runs,
                      "same_recommendation": same, "executors": rows}, indent=2))


if __name__ == "__main__":
    main()
