"""Benchmark (c): the reference canary's Monte Carlo through `simlab.replicate`, at scale.

The scenario of benchmark (b) (200 instances x 8 workers, 5,000 rps, 2 h, canary
1/10/50/100%) with a release that is bad with probability 0.2, run as a user
runs it: `simlab.replicate(..., engine="fluid")` on the default local pool (one
worker per core, blocks of 384 runs in lockstep). Prints JSON: wall time, CPU
time and peak resident memory of this process and its workers together (sampled
every 0.2 s; CPU as last seen per process), runs per second, and the outcomes by
release quality.

    .venv/bin/python benchmarks/monte_carlo_scale.py [--runs 10000]
"""
from __future__ import annotations

import argparse
import json
import threading
import time

import psutil

import simlab
from simlab.scenario import parse_scenario

from reference_monte_carlo import SCENARIO  # noqa: E402  (benchmarks/ is the script's directory)


def _sample(peak: list[int], cpu: dict[int, float]) -> None:
    """Resident memory of this process and its workers now (the peak kept), and each one's CPU time so far."""
    me = psutil.Process()
    try:
        procs = [me, *me.children(recursive=True)]
        peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs if p.is_running()))
        for p in procs:
            times = p.cpu_times()
            cpu[p.pid] = times.user + times.system
    except psutil.Error:
        pass


def _watch(stop: threading.Event, peak: list[int], cpu: dict[int, float]) -> None:
    while not stop.is_set():
        _sample(peak, cpu)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    text = SCENARIO.format(seconds=int(args.hours * 3600)).replace(
        "defects: [{kind: error_rate, rate: 0.05}]", "defects: [{kind: error_rate, rate: 0.05}]\n  bad_probability: 0.2")
    scenario = parse_scenario(text)
    stop, peak, cpu = threading.Event(), [0], {}
    _sample(peak, cpu)
    before = sum(cpu.values())
    watcher = threading.Thread(target=_watch, args=(stop, peak, cpu), daemon=True)
    watcher.start()
    t = time.perf_counter()
    df = simlab.replicate(scenario, runs=args.runs, engine="fluid")
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    _sample(peak, cpu)  # the pool's workers are still alive: their CPU time to the end
    bad, good = df[df.bad_release], df[~df.bad_release]
    print(json.dumps({
        "scenario": "200 instances x 8 workers, 5000 rps, canary 1/10/50/100%, bad with probability 0.2",
        "runs": args.runs, "hours": args.hours, "cpus": psutil.cpu_count(),
        "wall_s": round(wall, 1), "cpu_s_all_processes": round(sum(cpu.values()) - before, 1),
        "runs_per_s": round(args.runs / wall, 1),
        "peak_rss_mb_all_processes": peak[0] // 2**20,
        "bad_releases": int(len(bad)),
        "p_rolled_back_given_bad": round(float((bad.outcome == "rolled_back").mean()), 3) if len(bad) else None,
        "p_rolled_back_given_good": round(float((good.outcome == "rolled_back").mean()), 3) if len(good) else None,
    }, indent=2))


if __name__ == "__main__":
    main()
