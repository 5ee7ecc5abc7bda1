"""Parameter sweeps: the full grid of dotted-path values, stored run by run so a re-run resumes.

Each run's row is kept as soon as it comes back (simlab/experiment/store.py);
a second call finds it and does not simulate it again, and a worker that dies
or a Ctrl-C loses only the runs in flight.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError
from simlab.experiment.aggregate import pareto as pareto_front, table as aggregate_table
from simlab.experiment.decision import decide
from simlab.experiment.objectives import remaining
from simlab.experiment.overrides import apply_overrides, parse_path
from simlab.experiment.replication import as_scenario, runs_frame
from simlab.experiment.store import Store
from simlab.experiment.synopsis import synopsis
from simlab.experiment.twins import run_with_twins
from simlab.experiment.views import SweepView
from simlab.scenario import Scenario


@dataclass
class SweepResult(SweepView):
    """`.runs` every run (param columns first), `.table` aggregates per grid point, `.pareto` its front; shown as
    its report's table in a notebook, `.plot()` its figures."""

    runs: pd.DataFrame
    table: pd.DataFrame
    pareto: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    executed: int = 0  # runs simulated by this call (the rest came from the store), twins not counted

    def write(self, out_dir: str | Path) -> Path:
        """sweep.parquet, table.csv, pareto.csv and meta.json into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.runs.to_parquet(out / "sweep.parquet", index=False)
        self.table.to_csv(out / "table.csv", index=False)
        self.pareto.to_csv(out / "pareto.csv", index=False)
        (out / "meta.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        return out


def grid(scenario: Scenario, params: dict[str, Sequence[Any]]) -> list[tuple[dict[str, Any], Scenario]]:
    """Every combination of the values, as (overrides, validated scenario); all problems at once."""
    if not params:
        raise ScenarioError("params: expected at least one PATH=v1,v2 to sweep, found none")
    for path, values in params.items():
        parse_path(path)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ScenarioError(f"params: {path}: expected a list of at least one value, found {values!r}")
    problems = []
    for path, values in params.items():  # each value alone first: one message per bad value, not per grid point
        for value in values:
            try:
                apply_overrides(scenario, {path: value}, source=f"--param {path}={value}")
            except ScenarioError as exc:
                problems.extend(p for p in (exc.problems or [str(exc)]) if p not in problems)
    if problems:
        raise ScenarioError(f"params: {len(problems)} problem(s) in the sweep values", problems)
    points = []
    for combo in itertools.product(*params.values()):
        overrides = dict(zip(params, combo))
        label = ", ".join(f"{k}={v}" for k, v in overrides.items())
        try:
            points.append((overrides, apply_overrides(scenario, overrides, source=f"sweep point {label}")))
        except ScenarioError as exc:
            problems.extend(exc.problems or [str(exc)])
    if problems:
        raise ScenarioError(f"params: {len(problems)} problem(s) in the sweep grid", problems)
    return points


def _labels(params: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Column values of each parameter: as given when plain scalars of one type, else as JSON text."""
    out = {}
    for path, values in params.items():
        scalar = all(isinstance(v, (int, float, str, bool)) for v in values)
        same = len({type(v) for v in values}) == 1
        out[path] = list(values) if scalar and same else [
            v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in values
        ]
    return out


def sweep(
    scenario: Scenario | str | Path,
    params: dict[str, Sequence[Any]],
    runs: int = 20,
    seed: int = 0,
    engine: str = "request",
    executor: str = "local",
    scheduler: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> SweepResult:
    """`runs` runs of every grid point on common random numbers; resumes from out/store when given."""
    scenario = as_scenario(scenario)
    points = grid(scenario, params)
    store = Store(None if out is None else Path(out), scenario, engine, seed)
    fresh = [0]

    overrides = {id(s): o for o, s in points}

    def keep(point: Scenario, rows: list[dict]) -> None:
        if id(point) in overrides:  # a grid point's runs, not its no-release twin's
            fresh[0] += len(rows)
        store.put(point, rows, overrides.get(id(point), {"release": None}))

    rows = run_with_twins(
        [s for _, s in points], runs, seed, engine, executor, scheduler, progress,
        label=f"sweep {scenario.name}", done=store.get, on_rows=keep, kept=store.kept(),
    )
    labels = _labels(params)
    frames = []
    for i, point_rows in enumerate(rows):
        combo = itertools.product(*labels.values())
        leading = dict(zip(labels, next(itertools.islice(combo, i, None))))
        frames.append(runs_frame(point_rows, leading))
    all_runs = pd.concat(frames, ignore_index=True)
    names = list(params)
    table = aggregate_table(all_runs, names)
    meta = {
        "kind": "sweep", "scenario": scenario.name, "fingerprint": scenario.fingerprint(), "runs": runs,
        "seed": seed, "engine": engine, "params": names, "points": len(points),
    }
    meta["synopsis"] = synopsis(scenario)
    meta["decision"] = decide(all_runs, names, scenario.decide, remaining(scenario), np.random.default_rng(seed), runs)
    result = SweepResult(all_runs, table, pareto_front(table), meta, executed=fresh[0])
    if out is not None:
        result.write(out)
    return result
