"""The costs behind simlab/scenario/footprint.py: CPU time and peak memory of real runs next to the estimate.

    .venv/bin/python benchmarks/footprint.py [--quick] [--only fluid]

Each run is a fresh child process, so its peak resident set is its own; the
child reports its CPU time and peak RSS above what it held once simlab, numpy
and pandas were imported. For each case the estimate of
`simlab.scenario.footprint.footprint` is printed next to the measurement, and
their ratio: `simlab check` and the commands that simulate refuse on the
estimate, so a ratio far from 1 means a constant in footprint.py needs
re-measuring (an engine got faster, or keeps less per request).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "experiments" / "checkout-canary.yaml"

CHILD = r"""
import json, resource, sys, time
import numpy, pandas, yaml
from simlab.scenario import validate_scenario
from simlab.simulation import simulate, simulate_batch
case = json.loads(sys.argv[1])
s = validate_scenario(case["scenario"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage.ru_utime + usage.ru_stime
if case["runs"] == 1:
    simulate(s, seed=1, engine=case["engine"])
else:
    simulate_batch(s, list(range(case["runs"])))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime - cpu0, "memory": usage.ru_maxrss * 1024 - base}))
"""


def scenario(duration: str, rps: float, instances: int = 20) -> dict:
    import yaml

    data = yaml.safe_load(BASE.read_text())
    data.update(duration=duration, failures=[])
    data["traffic"].update(rps=rps, spikes=[])
    data["fleet"]["instances"] = instances
    return data


def measure(case: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(case)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    from simlab.scenario import validate_scenario
    from simlab.scenario.footprint import footprint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (about a minute in all)")
    ap.add_argument("--only", default="", help="only the cases whose name contains this (e.g. fluid)")
    args = ap.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    hours = lambda h: f"{h * scale:g}h"  # noqa: E731
    cases = [
        {"name": "request, 200 rps", "engine": "request", "runs": 1, "scenario": scenario(hours(2), 200)},
        {"name": "request, 600 rps", "engine": "request", "runs": 1, "scenario": scenario(hours(2), 600)},
        {"name": "fluid, one recorded run", "engine": "fluid", "runs": 1, "scenario": scenario(hours(12), 800)},
        {"name": "fluid, a batch of 32 runs", "engine": "fluid", "runs": 32, "scenario": scenario(hours(6), 800)},
        {"name": "fluid, 20,000 instances", "engine": "fluid", "runs": 1,
         "scenario": scenario(hours(1), 800_000, instances=20_000)},
    ]
    rows = []
    for case in [c for c in cases if args.only in c["name"]]:
        s = validate_scenario(case["scenario"])
        fp = footprint([s], case["engine"], case["runs"], batch=32, parallel=1, record=case["runs"] == 1)
        got = measure(case)
        rows.append({"case": case["name"], "cpu_s": round(got["cpu"], 1), "estimate_cpu_s": round(fp.cpu, 1),
                     "cpu_ratio": round(fp.cpu / max(got["cpu"], 1e-9), 2),
                     "memory_mb": round(got["memory"] / 1e6), "estimate_memory_mb": round(fp.memory / 1e6),
                     "memory_ratio": round(fp.memory / max(got["memory"], 1.0), 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main()
