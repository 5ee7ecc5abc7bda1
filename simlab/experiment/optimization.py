"""`optimize`: search the rollout-policy space of a search file with Optuna, on common random numbers.

Every trial is one policy (the base scenario with the knobs drawn), run `runs` times on the same run seeds
as every other trial, each run beside its no-release twin (one twin serves every policy: the strategy, the
analysis and the rollback cannot change a run without a release). Trials go to the experiment executors in
batches (Optuna's ask-and-tell), so a batch runs on the local pool or on Dask. The objectives are minimised
together (a Pareto front when there are several); each constraint is an Optuna constraint
(`Trial.set_constraint`: feasible when ≤ 0). With a storage URL (`sqlite:///study.db`) the study survives the
process: the same call again continues it, trials already told kept, trials cut off re-run first.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import warnings
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from simlab.errors import Interrupted, ScenarioError
from simlab.experiment.executors import check_executor, workers
from simlab.experiment.objectives import (METRICS, Constraint, check_release, objectives, parse_constraint,
                                         point_values)
from simlab.experiment.replication import as_scenario, check_engine, run_seed, runs_frame
from simlab.experiment.search_file import load_search
from simlab.experiment.search_space import SearchSpace
from simlab.experiment.store import Store
from simlab.experiment.synopsis import synopsis
from simlab.experiment.twins import run_with_twins
from simlab.scenario import Scenario

SAMPLERS = ("tpe", "nsga2", "random")


def fresh_seed(seed: int) -> int:
    """The experiment seed of the held-out runs: derived from `seed`, never one a user would pass for tuning."""
    state = np.random.SeedSequence([seed, zlib.crc32(b"held-out")]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class Runs:
    """Finished runs by policy: in memory for this call and in out/store when given, so a trial that draws a
    policy already run (or a resumed study) costs nothing."""

    def __init__(self, store: Store):
        self.store, self.rows = store, {}
        # id -> (the scenario, its fingerprint): the scenario is kept so its id is never reused by another
        # one while the entry lives (a trial's scenario, once freed, had handed its id and its fingerprint to
        # a later trial's: that trial got another policy's runs, depending on the allocator)
        self._prints: dict[int, tuple[Scenario, str]] = {}

    def _key(self, point: Scenario) -> str:
        hit = self._prints.get(id(point))
        if hit is None or hit[0] is not point:
            hit = self._prints[id(point)] = (point, point.fingerprint())
        return hit[1]

    def get(self, point: Scenario, run: int) -> dict | None:
        row = self.rows.get((self._key(point), run))
        return row if row is not None else self.store.get(point, run)

    def put(self, point: Scenario, rows: list[dict]) -> None:
        for row in rows:
            self.rows[(self._key(point), row["run"])] = row
        self.store.put(point, rows)

    def evaluate(self, points: Sequence[Scenario], runs: int, seed: int, engine: str, executor: str,
                 scheduler: str | None, progress: bool, label: str) -> list[pd.DataFrame]:
        """The runs of each point (equal policies simulated once) as frames with the twin's columns."""
        unique: dict[str, Scenario] = {}
        for p in points:
            unique.setdefault(self._key(p), p)
        rows = run_with_twins(list(unique.values()), runs, seed, engine, executor, scheduler, progress, label,
                              done=self.get, on_rows=self.put, kept=self.store.kept())
        frames = {key: runs_frame(r) for key, r in zip(unique, rows)}
        return [frames[self._key(p)] for p in points]


@contextlib.contextmanager
def _cluster(executor: str, scheduler: str | None) -> Iterator[str | None]:
    """One Dask LocalCluster for the whole study (the executor would start one per batch)."""
    if executor != "dask" or scheduler is not None:
        yield scheduler
        return
    import logging

    try:
        import dask
        from dask.distributed import LocalCluster
    except ImportError:
        raise ScenarioError("executor: 'dask' needs dask.distributed; install simlab[scale]") from None
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ScenarioError("optimize needs Optuna; install simlab[optimize] (pip install 'simlab[optimize]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _sampler(optuna, name: str, seed: int, trials: int, batch: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":  # multivariate and grouped: knobs that depend on each other, and conditional ones
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                              n_startup_trials=min(10, max(3, trials // 4)))
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 4, 4 * batch)))
        return optuna.samplers.RandomSampler(seed=seed)


def settings_key(scenario: Scenario, space: SearchSpace, names: Sequence[str], constraints: Sequence[Constraint],
                 runs: int, seed: int, engine: str) -> dict[str, Any]:
    """What makes two calls the same study: a stored study run with anything else is refused, not mixed."""
    knobs = [repr(e) for e in space.entries]
    return {"scenario": scenario.fingerprint(), "knobs": hashlib.sha256(json.dumps(knobs).encode()).hexdigest()[:16],
            "minimize": list(names), "constraints": [c.text for c in constraints], "runs_per_trial": runs,
            "seed": seed, "engine": engine}


def open_study(optuna, storage: str | None, name: str | None, settings: dict, directions: int):
    """The study (created, or loaded to continue); trials a stopped call left running are failed and queued
    again with their parameters, so they run first."""
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    name = name or f"simlab-{key}"
    if storage is not None:
        _check_storage(storage)
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                directions=["minimize"] * directions)
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    elif stored != settings:
        changed = [k for k in settings if stored.get(k) != settings[k]]
        raise ScenarioError(f"--study {name}: the stored study was run with other settings ({', '.join(changed)}: "
                            f"expected {', '.join(repr(stored.get(k)) for k in changed)}, found "
                            f"{', '.join(repr(settings[k]) for k in changed)}); give another --study name")
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"resumed_from": trial.number})
    return study


def _check_storage(storage: str) -> None:
    if "://" not in storage:
        raise ScenarioError(f"--storage: expected a database URL such as sqlite:///study.db, found {storage!r}")
    if storage.startswith("sqlite:///"):
        path = Path(storage[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise ScenarioError(f"--storage: expected an existing directory for {str(path)!r}, found no "
                                f"{str(path.parent)!r}")


def complete(optuna, study) -> list:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def run_study(optuna, study, base: Scenario, space: SearchSpace, goal: Sequence, constraints: Sequence[Constraint],
              trials: int, batch: int, runs: int, seed: int, engine: str, executor: str, scheduler: str | None,
              cache: Runs, progress: bool) -> int:
    """Ask, run and tell in batches until the study holds `trials` complete trials; how many this call told."""
    told, invalid = 0, []
    while (done := len(complete(optuna, study))) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - done))]
        drawn = []
        for trial in asked:
            kind, overrides = space.draw(trial, base)
            try:
                drawn.append((trial, kind, overrides, space.scenario(base, kind, overrides)))
            except ScenarioError as exc:  # knobs that each fit but not together (weights that do not rise)
                reason = (exc.problems or [str(exc)])[0]
                trial.set_user_attr("policy", {"kind": kind, "overrides": overrides, "invalid": reason})
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                invalid.append(reason)
        if len(invalid) > 2 * trials + 10:
            raise ScenarioError(f"{space.source}: {len(invalid)} drawn policies were not valid scenarios, e.g. "
                                f"{invalid[0]}; narrow the knobs' ranges")
        frames = cache.evaluate([d[-1] for d in drawn], runs, seed, engine, executor, scheduler, progress,
                                label=f"trials {done + 1}-{done + len(asked)} of {trials}")
        for (trial, kind, overrides, scenario), frame in zip(drawn, frames):
            values = point_values(frame, base)
            # two attributes, not one per metric: each is a transaction of an RDB storage
            trial.set_user_attr("policy", {"kind": kind, "overrides": overrides, "fingerprint": scenario.fingerprint()})
            trial.set_user_attr("metrics", {k: None if math.isnan(v) else v for k, v in values.items()})
            for c in constraints:
                trial.set_constraint(c.text, c.violation(values[c.metric.name]))
            objective = [values[m.name] for m in goal]
            if any(math.isnan(v) for v in objective):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, objective)
                told += 1
    return told


def trials_frame(optuna, study, space: SearchSpace, goal: Sequence, constraints: Sequence[Constraint]) -> pd.DataFrame:
    """One row per finished trial: number, state, strategy kind, each knob's value (by scenario path), every
    metric, each constraint's margin, feasible, on the Pareto front."""
    front = {t.number for t in study.best_trials} if complete(optuna, study) else set()
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
            continue
        policy, metrics = t.user_attrs.get("policy") or {}, t.user_attrs.get("metrics") or {}
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower(), "strategy.kind": policy.get("kind")}
        for path, value in (policy.get("overrides") or {}).items():
            row[path] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
        for name in METRICS:
            value = metrics.get(name)
            row[name] = math.nan if value is None else value
        for c in constraints:
            row[f"constraint {c.text}"] = t.constraints.get(c.text, math.nan) if hasattr(t, "constraints") else math.nan
        row["feasible"] = t.state == optuna.trial.TrialState.COMPLETE and all(
            c.holds(row[c.metric.name]) for c in constraints)
        row["pareto"] = t.number in front
        row["fingerprint"] = policy.get("fingerprint")
        row["invalid"] = policy.get("invalid")
        row["overrides"] = json.dumps(policy.get("overrides") or {})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.sort_values("trial", kind="stable").reset_index(drop=True)
    return frame


def check_counts(trials: int, runs: int, fresh_runs: int, batch: int | None) -> None:
    for name, value, low in (("trials", trials, 1), ("runs_per_trial", runs, 2), ("fresh_runs", fresh_runs, 2),
                             ("batch", batch if batch is not None else 1, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ScenarioError(f"{name}: expected a whole number of at least {low}, found {value!r}")


def _decided(base: Scenario, names: list[str], given: list[str]) -> tuple[list[str], list, dict[str, str]]:
    """The objectives and constraints a study runs by: what the caller gave, else the scenario's `decide:` block
    (its objective first, then optimize's other defaults; its limits as constraints), else optimize's defaults.
    Also where each came from ("option", "decide" or "defaults"), for meta.json and the report."""
    from simlab.experiment.decision import limits
    from simlab.experiment.objectives import DEFAULT_OBJECTIVES

    spec = base.decide
    source = {"minimize": "option" if names else "decide" if spec is not None else "defaults",
              "constraints": "option" if given else "decide" if spec is not None else "defaults"}
    if not names and spec is not None:
        names = list(dict.fromkeys([spec.objective, *DEFAULT_OBJECTIVES]))
    bounds = [parse_constraint(c) for c in given] if given or spec is None else limits(spec)
    return names, bounds, source


def optimize(
    scenario: Scenario | str | Path,
    search: str | Path | dict,
    minimize: Sequence[str] | str | None = None,
    constraints: Sequence[str] | str = (),
    trials: int = 40,
    runs_per_trial: int = 20,
    fresh_runs: int | None = None,
    seed: int = 0,
    engine: str = "fluid",
    executor: str = "local",
    scheduler: str | None = None,
    storage: str | None = None,
    study: str | None = None,
    sampler: str = "tpe",
    batch: int | None = None,
    candidates: int = 5,
    out: str | Path | None = None,
    progress: bool = False,
):
    """Search the knobs of `search` for the policy that minimises `minimize` under `constraints` (when not given:
    the scenario's `decide:` objective and limits, else optimize's defaults); return an
    `Optimization` (simlab.experiment.optimum) with the trials, the Pareto front, the fresh-seed comparison of
    the best candidates with the scenario's own policy, and the recommended scenario.

    `trials` is the study's total: with a `storage` that already holds some, only the rest are run. With
    `out` and no `storage`, the study is kept in out/study.db and the runs in out/store, so the same call
    resumes. The held-out comparison runs `fresh_runs` (default: 5 × runs_per_trial, at least 100) on seeds
    no trial saw.
    """
    from simlab.experiment.optimum import Optimization
    from simlab.experiment.recommendation import compare_fresh, pick_candidates

    base = as_scenario(scenario)
    fresh_runs = fresh_runs if fresh_runs is not None else max(100, 5 * runs_per_trial)
    check_counts(trials, runs_per_trial, fresh_runs, batch)
    check_engine(engine)
    check_executor(executor, scheduler)
    if sampler not in SAMPLERS:
        raise ScenarioError(f"sampler: expected one of {', '.join(SAMPLERS)}, found {sampler!r}")
    space = load_search(search, base)
    names = [minimize] if isinstance(minimize, str) else list(minimize or [])
    given = [constraints] if isinstance(constraints, str) else list(constraints)
    names, bounds, source = _decided(base, names, given)
    goal = objectives(names)
    check_release(base, [*goal, *(c.metric for c in bounds)], [run_seed(seed, r) for r in range(runs_per_trial)], "tuning runs")
    optuna = _optuna()
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        storage = storage or f"sqlite:///{Path(out) / 'study.db'}"
    settings = settings_key(base, space, [m.name for m in goal], bounds, runs_per_trial, seed, engine)
    the_study = open_study(optuna, storage, study, settings, len(goal))
    before = len(complete(optuna, the_study))
    if before == 0 and not the_study.get_trials(deepcopy=False):
        start = space.start(base)
        if start:  # the scenario's own policy, where the space holds it, is the first trial
            the_study.enqueue_trial(start, user_attrs={"current_policy": True})
    size = batch or (1 if executor == "serial" else 8 if executor == "dask" else 2 * workers(executor))
    the_study.sampler = _sampler(optuna, sampler, seed + before, trials, size)
    cache = Runs(Store(out, base, engine, seed))
    with _cluster(executor, scheduler) as address:
        try:
            told = run_study(optuna, the_study, base, space, goal, bounds, trials, size, runs_per_trial, seed, engine,
                             executor, address, cache, progress)
        except Interrupted as exc:
            n = len(complete(optuna, the_study))
            where = (f"the study keeps its {n} complete trials in {storage}, and the same command resumes it"
                     if storage else "the study was in memory (give --out or --storage to keep it)")
            raise Interrupted(f"{exc}; {where}") from None
        table = trials_frame(optuna, the_study, space, goal, bounds)
        picks = pick_candidates(table, base, space, goal, bounds, candidates)
        held_out = fresh_seed(seed)
        fresh = compare_fresh(base, picks, goal, bounds, fresh_runs, held_out, engine, executor, address,
                              Runs(Store(out, base, engine, held_out)), progress, np.random.default_rng(seed))
    meta = {"kind": "optimize", "scenario": base.name, "fingerprint": base.fingerprint(), "search": space.source,
            "minimize": [m.name for m in goal], "constraints": [c.text for c in bounds], "goal_source": source,
            "trials": trials,
            "trials_told": told, "trials_before": before, "runs_per_trial": runs_per_trial, "seed": seed,
            "fresh_runs": fresh_runs, "fresh_seed": held_out, "engine": engine, "executor": executor,
            "sampler": sampler, "batch": size, "study": the_study.study_name,
            "storage": storage if storage is None or "@" not in storage else "(a database URL)",
            "knobs": [e.path for e in space.entries],
            "metrics": {name: {"unit": m.unit, "meaning": m.meaning} for name, m in METRICS.items()},
            "synopsis": synopsis(base)}
    origin = None if isinstance(scenario, Scenario) else Path(scenario)
    result = Optimization(base=base, space=space, trials=table, fresh=fresh, meta=meta, origin=origin)
    if out is not None:
        result.write(out)
    return result
