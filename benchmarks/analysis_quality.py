"""analysis-quality on a 3-variant x 6-severity x 200-run grid on the fluid engine: wall time, and what it finds.

    .venv/bin/python benchmarks/analysis_quality.py [--runs 200] [--executor local]

A canary (5% -> 25% -> 100%) of a service at 200 rps on 10 instances, with a 1% dependency blip during the
rollout (the demo's trap), judged by three analyses: the demo's threshold (error rate above 1%, two failed
measurements), a looser threshold (2%, three), and the Mann-Whitney judge. Each meets the good release and
error_rate = 0.1% ... 5% on the same seeds, each run beside its no-release twin: 3 x 7 x 200 runs plus 200
twins = 4,400 simulated runs. Prints JSON: wall seconds, runs per second, and per variant the false-rollback
rate and the mildest severity caught with >= 95% probability.
"""
from __future__ import annotations

import argparse
import json
import time

from simlab.experiment.quality import run_quality
from simlab.scenario import validate_scenario

SCENARIO = {
    "name": "analysis-quality-bench", "duration": "20m",
    "fleet": {"instances": 10, "zones": 2, "service_time": {"dist": "lognormal", "mean": "40ms", "p99": "200ms"},
              "startup": "20s"},
    "traffic": {"rps": 200, "timeout": "2s"},
    "release": {"at": "2m"},
    "strategy": {"kind": "canary", "steps": [{"weight": 5, "bake": "4m"}, {"weight": 25, "bake": "4m"},
                                              {"weight": 100}]},
    "analysis": {"interval": "1m", "failure_limit": 2, "min_requests": 50,
                 "metrics": [{"metric": "error_rate", "max": 0.01}]},
    "failures": [{"kind": "dependency", "at": "7m", "duration": "3m", "error_rate": 0.01}],
}
VARIANTS = [
    {"name": "threshold-1%", "description": "the demo's analysis: error rate above 1%, two failed measurements",
     "set": {}},
    {"name": "threshold-2%x3", "set": {"analysis.failure_limit": 3,
                                       "analysis.metrics": [{"metric": "error_rate", "max": 0.02}]}},
    {"name": "mann-whitney", "set": {"analysis.judge": {"kind": "mann_whitney", "samples": 4},
                                     "analysis.metrics": [{"metric": "error_rate", "tolerance": 0.5}]}},
]
SEVERITIES = "error_rate=0.001,0.002,0.005,0.01,0.02,0.05"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--executor", default="local")
    args = ap.parse_args(argv)
    scenario = validate_scenario(SCENARIO)
    t0 = time.perf_counter()
    q = run_quality(scenario, variants=VARIANTS, severities=SEVERITIES, runs=args.runs, engine="fluid",
                    executor=args.executor, catch="error_rate=0.005")
    wall = time.perf_counter() - t0
    simulated = len(q.runs) + args.runs  # every point's runs and the one shared no-release twin
    out: dict = {"grid": f"{len(VARIANTS)} variants x {len(SEVERITIES.split(','))} severities (+ good) x {args.runs} runs",
                 "simulated_runs": simulated, "wall_s": round(wall, 1), "runs_per_s": round(simulated / wall, 1),
                 "executor": args.executor}
    for v in q.verdicts:
        caught = v["catches"].get("error_rate")
        out[v["variant"]] = {"false_rollback": round(v["false_rollback"], 3),
                             "false_rollback_95": [round(v["false_rollback_lo"], 3), round(v["false_rollback_hi"], 3)],
                             "catches_from": None if caught is None else caught["from"], "meets": v["meets"]}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
