"""Latency-judged analyses on both engines: false rollbacks and detection, fluid against request.

    .venv/bin/python benchmarks/latency_judges.py [--runs 100] [--executor local]

A canary (10% -> 50% -> 100%) of 6 instances x 4 workers at 150 rps, lognormal service (mean 40 ms, p99
200 ms), judged by four analyses that read latency only: a p99 threshold at 230 ms and at 250 ms (two failed
measurements), the Mann-Whitney judge on the p99, and the Mann-Whitney judge on the mean against a canary
baseline. Each meets the good release and a +20 ms latency regression on the same seeds, on the fluid engine
and on the request engine. A window's latencies on the fluid engine are measured on its requests
(`LatencyModel.measured`); before that, every fluid row read 0% or 100%.

Prints JSON: per variant and release, each engine's P(rollback) with its 95% interval and median detection
time, and `z`, the gap over its standard error; `agree` when |z| <= 3 for every row.
"""
from __future__ import annotations

import argparse
import json
import math
import time

from simlab.experiment.quality import run_quality
from simlab.scenario import validate_scenario

SERVICE = {"dist": "lognormal", "mean": "40ms", "p99": "200ms"}
SCENARIO = {
    "name": "latency-judges", "duration": "10m",
    "fleet": {"instances": 6, "workers": 4, "service_time": SERVICE, "startup": "10s"},
    "traffic": {"rps": 150, "timeout": "2s"},
    "release": {"at": "1m"},
    "strategy": {"kind": "canary", "steps": [{"weight": 10, "bake": "3m"}, {"weight": 50, "bake": "3m"},
                                              {"weight": 100}]},
    "analysis": {"interval": "30s", "failure_limit": 2, "min_requests": 20,
                 "metrics": [{"metric": "latency_p99", "max": 0.25}]},
    "rollback": {"automatic": True, "duration": "30s"},
    "monitoring": {"scrape_interval": "10s", "window": "60s", "delay": "10s"},
}
VARIANTS = [
    {"name": "p99-max-230ms", "set": {"analysis.metrics": [{"metric": "latency_p99", "max": 0.23}]}},
    {"name": "p99-max-250ms", "set": {"analysis.metrics": [{"metric": "latency_p99", "max": 0.25}]}},
    {"name": "mw-p99", "set": {"analysis.judge": {"kind": "mann_whitney", "samples": 6},
                               "analysis.metrics": [{"metric": "latency_p99"}]}},
    {"name": "mw-mean-baseline", "set": {"strategy.baseline": True,
                                         "analysis.judge": {"kind": "mann_whitney", "samples": 6},
                                         "analysis.metrics": [{"metric": "latency_mean"}]}},
]
SEVERITIES = "latency=+20ms"


def _row(row) -> dict:
    return {"p_rollback": round(float(row["p_rollback"]), 3),
            "p_rollback_95": [round(float(row["p_rollback_lo"]), 3), round(float(row["p_rollback_hi"]), 3)],
            "detect_p50_s": None if math.isnan(row["ttd_p50_s"]) else round(float(row["ttd_p50_s"]), 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--executor", default="local")
    args = ap.parse_args(argv)
    scenario = validate_scenario(SCENARIO)
    tables, walls = {}, {}
    for engine in ("fluid", "request"):
        t0 = time.perf_counter()
        tables[engine] = run_quality(scenario, variants=VARIANTS, severities=SEVERITIES, runs=args.runs,
                                     engine=engine, executor=args.executor).table
        walls[engine] = round(time.perf_counter() - t0, 1)
    rows, worst = [], 0.0
    for (_, f), (_, r) in zip(tables["fluid"].iterrows(), tables["request"].iterrows()):
        p1, p2, n1, n2 = float(f["p_rollback"]), float(r["p_rollback"]), int(f["runs"]), int(r["runs"])
        pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        se = math.sqrt(max(pooled * (1 - pooled), 0.25 / (n1 + n2)) * (1 / n1 + 1 / n2))
        z = (p1 - p2) / se
        worst = max(worst, abs(z))
        rows.append({"variant": f["variant"], "release": f["release"], "fluid": _row(f), "request": _row(r),
                     "z": round(z, 2)})
    out = {"scenario": "6 x 4 workers, 150 rps, canary 10/50/100%, latency-judged", "runs": args.runs,
           "wall_s": walls, "rows": rows, "max_abs_z": round(worst, 2), "agree": worst <= 3.0}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
