"""What a release added: each run next to its no-release twin, the same seed without the release.

Run i of a scenario and run i of the same scenario without its release share
their seed, and every random stream is keyed by its component's name
(simlab/rng.py), so the twin meets the same traffic, the same instance crashes
and the same dependency failures. The bad requests the twin still serves would
have happened with no deploy at all; the difference is what the release and
its rollout added (its defects, the capacity the rollout took away, the
rollback). A good release's difference is the price of deploying it; a bad
release's is the harm the policy let through.

Without a release the controller never acts, so the strategy, the analysis and
the rollback policy cannot change a twin: points that differ only there share
one twin, simulated once.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable, Sequence

from simlab.experiment.replication import pick_engine, run_points
from simlab.scenario import Scenario

TWIN_COLUMNS = ("no_release_bad", "added_bad")
"""Per-run columns: bad requests of the no-release twin, and bad − no_release_bad."""

_NOT_IN_TWIN = {"name", "description", "release", "strategy", "analysis", "rollback"}


def no_release_twin(scenario: Scenario) -> Scenario:
    """`scenario` without its release: run with the same seed, it is the run the release was deployed into."""
    return scenario.model_copy(update={"release": None})


def twin_key(scenario: Scenario, engine: str) -> str:
    """Equal for points whose twins are the same run: same world, same engine (policy fields left out)."""
    data = scenario.model_dump(mode="json", exclude=_NOT_IN_TWIN)
    return engine + ":" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def with_twins(points: Sequence[Scenario], engine: str) -> tuple[list[Scenario], list[str], list[int]]:
    """(points followed by their distinct twins, the engine each runs on, the index of each point's twin).

    A twin runs on the engine its point runs on (`auto` resolved on the point), so the difference
    is never an engine's difference.
    """
    everything, engines, twin_of = list(points), [pick_engine(engine, s) for s in points], []
    index: dict[str, int] = {}
    for scenario, picked in zip(points, list(engines)):
        key = twin_key(scenario, picked)
        if key not in index:
            index[key] = len(everything)
            everything.append(no_release_twin(scenario))
            engines.append(picked)
        twin_of.append(index[key])
    return everything, engines, twin_of


def added_by_release(rows: Sequence[dict[str, Any]], twin_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bad requests a release added, run by run: `rows` (run order) with two columns more.

    `no_release_bad` is the bad requests of run i of the no-release twin (`twin_rows[i]`, same
    seed, see `no_release_twin`); `added_bad` = `bad` − `no_release_bad`: the failed and slow
    requests the release and its rollout caused beyond what the same traffic, crashes and
    failures cause with no deploy. NaN where either is missing.

    A run and its twin share their arrivals, crashes, failures and release draw. On the fluid
    engine they share the data plane's outcome draws too: each pool's counts are inverse CDFs
    at uniforms of the seed, the second and the pool's rank by traffic (engines/fluid/
    common_draws.py), so the pool serving most of the traffic meets the twin's numbers and
    only the release's own pools add noise (a good canary's difference varies a fifth as much
    as the twin's count, a good blue-green's not at all). The request engine draws per request,
    and the release's own requests shift the draws after them, so there a difference still
    carries some of both runs' noise. A run's difference may be below zero; its mean over runs
    is unbiased, and its interval comes from the per-run differences (simlab.experiment.aggregate).
    """
    out = []
    for row, twin in zip(rows, twin_rows, strict=True):
        if row["run"] != twin["run"]:
            raise ValueError(f"run {row['run']} paired with the twin of run {twin['run']}")
        base = _number(twin.get("bad"))
        bad = _number(row.get("bad"))
        out.append({**row, "no_release_bad": base, "added_bad": bad - base})
    return out


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def run_with_twins(
    points: Sequence[Scenario],
    runs: int,
    seed: int = 0,
    engine: str = "request",
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    label: str = "runs",
    done: Callable[[Scenario, int], dict | None] = lambda point, run: None,
    on_rows: Callable[[Scenario, list[dict]], None] = lambda point, rows: None,
    kept: str = "none was kept",
) -> list[list[dict]]:
    """`run_points` of `points` and of their no-release twins in one pass; each point's rows carry
    `no_release_bad` and `added_bad` (`added_by_release`). The callbacks get the scenario a run
    belongs to (a point or a twin), so a store keeps twins like any other point.
    """
    everything, engines, twin_of = with_twins(points, engine)
    rows = run_points(
        everything, runs, seed, engines, executor, scheduler, progress, label,
        done=lambda p, run: done(everything[p], run), on_rows=lambda p, got: on_rows(everything[p], got),
        kept=kept, counted=len(points),
    )
    return [added_by_release(rows[p], rows[twin_of[p]]) for p in range(len(points))]
