"""Monte Carlo replication: many runs of one or more scenarios on common random numbers.

Run i of every scenario (strategy, variant, grid point) uses the same run seed,
derived from (seed, i) only, so the same traffic and the same drawn release
meet every policy and differences between policies are not noise.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from simlab.errors import Interrupted, ScenarioError
from simlab.experiment.executors import check_executor, execute
from simlab.experiment.progress import run_progress
from simlab.experiment.work import run_chunk
from simlab.results import SUMMARY_KEYS
from simlab.scenario import Scenario, load_scenario

_REPLICATION = zlib.crc32(b"replication")
NUMERIC_KEYS = tuple(k for k in SUMMARY_KEYS if k not in ("scenario", "strategy", "engine", "outcome", "seed"))


def run_seed(seed: int, run: int) -> int:
    """The seed of run `run` of an experiment seeded `seed` (independent of anything else)."""
    state = np.random.SeedSequence(seed, spawn_key=(_REPLICATION, run)).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1  # a non-negative 63-bit integer


def as_scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def check_engine(engine: str) -> None:
    from simlab.simulation import ENGINES

    known = tuple(ENGINES) + (("auto",) if "fluid" in ENGINES and "auto" not in ENGINES else ())
    if engine not in known:
        raise ScenarioError(f"engine: expected one of {', '.join(known)}, found {engine!r}")


def pick_engine(engine: str, scenario: Scenario) -> str:
    """`auto` resolved once per scenario (a release draw changes neither fleet nor traffic), so the
    fluid engine's batch is used when auto picks it; the rows' `engine` column says which ran."""
    if engine != "auto":
        return engine
    import simlab.simulation as sim

    choose = getattr(sim, "choose_engine", None)
    return choose(scenario) if choose is not None else engine


def check_runs(runs: int, seed: int) -> None:
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ScenarioError(f"runs: expected a whole number of at least 1, found {runs!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ScenarioError(f"seed: expected a whole number of at least 0, found {seed!r}")


FLUID_BLOCK = 384
"""Fluid runs are simulated in lockstep in fixed blocks of run indices (0–383, 384–767, …), good and bad
draws of the release in one batch.

A batch shares one data-plane stream, so a run's numbers depend on the runs
simulated with it; fixing the blocks by run index (never by executor or
worker count) keeps results identical whatever the executor. An interrupted
compare or sweep resumes exactly (blocks are stored whole); raising `--runs`
on stored results simulates the missing runs of a partial last block as a
batch of their own, so those runs differ from a fresh run of the larger count.
A block's per-tick work is vectorised over its runs, so larger blocks amortise
the per-tick cost (10,000 runs of the reference canary on two workers: blocks of
128, 92 s; of 512, 44 s in 875 MB), while 10,000 runs still spread over workers.
With the analysis windows batched and the single-run caches (session 5), 512 reached
983–1,009 MB on a quiet machine in 33 s; 384 holds 885 MB in the same 33 s (256:
833 MB, 36 s), so 384 it is: the 1 GB target with room to spare.
"""


def _tasks_of(engine: str, todo: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    # One run per task loses at most one run when a worker dies; the fluid engine's batch
    # wants many seeds per call, so it gets one task per fixed block of run indices.
    if engine != "fluid":
        return [[item] for item in todo]
    blocks: dict[int, list[tuple[int, int]]] = {}
    for run, seed in todo:
        blocks.setdefault(run // FLUID_BLOCK, []).append((run, seed))
    return [blocks[b] for b in sorted(blocks)]


def run_points(
    points: Sequence[Scenario],
    runs: int,
    seed: int = 0,
    engine: str | Sequence[str] = "request",
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    label: str = "runs",
    done: Callable[[int, int], dict | None] = lambda point, run: None,
    on_rows: Callable[[int, list[dict]], None] = lambda point, rows: None,
    kept: str = "none was kept",
    counted: int | None = None,
) -> list[list[dict]]:
    """Rows of `runs` runs of every point, in run order; `done(point, run)` may supply a stored row.

    `engine` is one engine for every point or one per point. `on_rows(point, rows)` is called in this
    process as each task finishes (a sweep stores them). On Ctrl-C (or SIGINT/SIGTERM made one) the
    runs in flight are stopped and `Interrupted` says how many of the first `counted` points' runs
    had finished and, from `kept`, where they are.
    """
    engines = [engine] * len(points) if isinstance(engine, str) else list(engine)
    check_runs(runs, seed)
    for name in set(engines):
        check_engine(name)
    check_executor(executor, scheduler)
    for scenario in points:  # an analysis query with no simulator meaning: one error before any run starts
        if scenario.strategy.analysis and scenario.analysis is not None:
            scenario.analysis.refuse_unsimulated()
    rows: list[list[dict | None]] = [[done(p, r) for r in range(runs)] for p in range(len(points))]
    tasks, owners = [], []
    for p, scenario in enumerate(points):
        picked = pick_engine(engines[p], scenario)
        todo = [(r, run_seed(seed, r)) for r in range(runs) if rows[p][r] is None]
        data = scenario.model_dump_json()
        for chunk in _tasks_of(picked, todo):
            tasks.append((data, picked, chunk))
            owners.append(p)
    with run_progress(sum(len(t[2]) for t in tasks), label, progress) as advance:
        def finished(i: int, result: list[dict]) -> None:
            for row in result:
                rows[owners[i]][row["run"]] = row
            on_rows(owners[i], result)
            advance(len(result))

        try:
            execute(run_chunk, tasks, executor, scheduler, finished)
        except KeyboardInterrupt:
            mine = rows[:counted]
            finished_runs = sum(row is not None for point in mine for row in point)
            raise Interrupted(f"{label} interrupted: {finished_runs} of {len(mine) * runs} runs had finished; "
                              f"{kept}") from None
    return rows  # type: ignore[return-value]


def runs_frame(rows: list[dict], leading: dict[str, Any] | None = None) -> pd.DataFrame:
    """Rows as a tidy frame: leading label columns, run, run_seed, bad_release, param.*, summary keys, extras."""
    frame = pd.DataFrame(rows)
    for key in SUMMARY_KEYS:
        if key not in frame:
            frame[key] = None
    params = [c for c in frame.columns if c.startswith("param.")]
    order = ["run", "run_seed", "bad_release", *params, *SUMMARY_KEYS]
    order += [c for c in frame.columns if c not in order]
    frame = frame[order]
    for key in [*params, *NUMERIC_KEYS]:
        if frame[key].dtype == object:  # all None (nothing detected, a good release): still a float column
            frame[key] = pd.to_numeric(frame[key]).astype(float)
    for i, (name, value) in enumerate((leading or {}).items()):
        frame.insert(i, name, [value] * len(frame))
    return frame


def replicate(
    scenario: Scenario | str | Path,
    runs: int = 100,
    seed: int = 0,
    engine: str = "request",
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """`runs` replications of `scenario`: one row per run (see runs_frame for the columns)."""
    scenario = as_scenario(scenario)
    (rows,) = run_points([scenario], runs, seed, engine, executor, scheduler, progress, label=scenario.name)
    return runs_frame(rows)
