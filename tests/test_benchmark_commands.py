"""The README's benchmark commands that need no staging, run as commands with small arguments (the figures they
record are the benchmarks' business; what is checked here is that each command runs and prints what it says)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_optimize_benchmark_runs_as_the_readme_says():
    """benchmarks/optimize.py as a command on every executor, at 4 trials of 4 runs and 4 fresh seeds instead of
    24 x 16 and 32: the seeded study finds the same trials and recommendation on each executor."""
    done = subprocess.run([sys.executable, "benchmarks/optimize.py", "--trials", "4", "--runs", "4",
                           "--fresh-runs", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    assert (out["trials"], out["runs_per_trial"], out["fresh_runs"]) == (4, 4, 4)
    rows = out["executors"]
    assert [r["executor"] for r in rows] == ["serial", "local", "dask"]
    assert out["same_recommendation"] is True
    knobs = set(yaml.safe_load((ROOT / "experiments" / "knobs.yaml").read_text())["knobs"])
    for r in rows:
        assert r["wall_s"] > 0 and r["trials_per_s"] > 0 and r["runs_per_s"] > 0, r
        assert 1 <= r["distinct_policies"] <= 4, r
        assert re.fullmatch(r"current|trial [0-3]", r["recommended"]), r
        assert set(r["overrides"]) <= knobs and (r["recommended"] == "current") == (not r["overrides"]), r
        # (policies + the twin) x runs, the candidates (at least the current policy) and their twin x fresh seeds
        simulated = r["runs_per_s"] * r["wall_s"]
        assert (r["distinct_policies"] + 1) * 4 + 2 * 4 <= simulated * 1.1 + 1, r
    assert len({r["distinct_policies"] for r in rows}) == 1


def test_the_dask_scaling_benchmark_runs_as_the_readme_says():
    """benchmarks/dask_scaling.py as a command (a real `dask scheduler` and `dask worker` processes on loopback per
    worker count), at 4 runs: every worker count gives the very same runs (about 20 s)."""
    done = subprocess.run([sys.executable, "benchmarks/dask_scaling.py", "--runs", "4", "--workers", "1", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    assert out["runs"] == 4 and out["identical_runs"] is True
    assert set(out["wall_s"]) == {"1", "2"} and all(w > 0 for w in out["wall_s"].values())
    assert out["speedup_vs_1"]["1"] == 1.0
