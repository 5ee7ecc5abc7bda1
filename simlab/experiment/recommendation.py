"""Which policy `simlab optimize` recommends, judged on fresh seeds so the winner is not just lucky on the
seeds it was tuned on.

The rule: the best few trials of the study (its Pareto front, feasible ones only when there are any, ordered
by the first objective) and the scenario's own policy are run again on held-out seeds, all on the same ones.
Among those that meet every constraint there (point estimates), the one with the lowest first objective is
the best; every policy whose paired 95% interval against it reaches 0 is as good within the noise, and of
those the fastest to deploy a good release wins (deploy_duration_mean, then the first objective). If none
meets the constraints on fresh seeds, the one that misses them by least (the sum of its relative
violations) is named, marked infeasible. The scenario's own policy takes part, so "keep what you have" is
a possible answer.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from simlab.experiment.objectives import METRICS, Constraint, estimate, paired_difference, remaining
from simlab.scenario import Scenario

TIE_BREAK = "deploy_duration_mean"
FRESH_COLUMNS = ("policy", "trial", "role", "metric", "value", "lo", "hi", "diff_vs_current", "diff_lo", "diff_hi",
                 "objective", "constraint", "meets")
"""fresh.csv, one row per policy and metric: its value on the held-out seeds with a 95% interval (Student-t
for means, Wilson for shares, bootstrap for percentiles), the paired difference from the current policy on the
same seeds with a paired bootstrap 95% interval, whether the metric is an objective, the constraint on it and
whether the policy meets it."""


@dataclass(frozen=True)
class Candidate:
    label: str  # current | trial 17
    trial: int | None
    scenario: Scenario
    kind: str
    overrides: dict = field(default_factory=dict)


@dataclass
class Fresh:
    """The held-out comparison: the candidates (the current policy first), the long table, the pick and why."""

    candidates: list[Candidate]
    table: pd.DataFrame
    recommended: int  # index into candidates
    feasible: bool
    tied: list[int]
    reason: str


def pick_candidates(table: pd.DataFrame, base: Scenario, space, goal: Sequence, bounds: Sequence[Constraint],
                    k: int) -> list[Candidate]:
    """The scenario's own policy, then up to `k` distinct trials: the Pareto front ordered by the first objective
    (then deploy time); with no feasible trial, the ones that miss the constraints by least."""
    current = Candidate("current", None, base, base.strategy.kind)
    if not len(table):
        return [current]
    done = table[table["state"] == "complete"]
    front = done[done["pareto"].astype(bool) & done["feasible"].astype(bool)]
    if len(front):
        pool = front.sort_values([goal[0].name, TIE_BREAK], kind="stable")
    else:
        miss = done.apply(lambda row: sum(max(0.0, c.violation(row[c.metric.name])) for c in bounds), axis=1)
        pool = done.assign(_miss=miss).sort_values(["_miss", goal[0].name], kind="stable")
    seen, out = {base.fingerprint()}, [current]
    for _, row in pool.iterrows():
        if len(out) > k:
            break
        if row["fingerprint"] in seen:
            continue
        seen.add(row["fingerprint"])
        overrides = json.loads(row["overrides"])
        kind = row["strategy.kind"]
        out.append(Candidate(f"trial {int(row['trial'])}", int(row["trial"]), space.scenario(base, kind, overrides),
                             kind, overrides))
    return out


def compare_fresh(base: Scenario, picks: list[Candidate], goal: Sequence, bounds: Sequence[Constraint], runs: int,
                  seed: int, engine: str, executor: str, scheduler: str | None, cache, progress: bool,
                  rng: np.random.Generator) -> Fresh:
    """Run every candidate `runs` times on the held-out seeds and apply the rule (module docstring)."""
    frames = cache.evaluate([c.scenario for c in picks], runs, seed, engine, executor, scheduler, progress,
                            label=f"fresh seeds: {len(picks)} policies")
    left = remaining(base)
    values = [{name: m.values(frame, left) for name, m in METRICS.items()} for frame in frames]
    est = [{name: estimate(METRICS[name], v[name], rng) for name in METRICS} for v in values]
    primary = goal[0]
    feasible, best, tied = leaders(values, est, primary, bounds, rng)
    if feasible:
        pick = min(tied, key=lambda i: (_or_inf(est[i][TIE_BREAK][0]), est[i][primary.name][0]))
    else:
        tied = []
        pick = min(range(len(picks)), key=lambda i: sum(max(0.0, c.violation(est[i][c.metric.name][0]))
                                                        for c in bounds))
    rows = []
    for i, c in enumerate(picks):
        role = "recommended" if i == pick else ("current" if c.trial is None else "candidate")
        if i == pick and c.trial is None:
            role = "current, recommended"
        for name in METRICS:
            diff = paired_difference(METRICS[name], values[i][name], values[0][name], rng) if i else (0.0, 0.0, 0.0)
            bound = next((b for b in bounds if b.metric.name == name), None)
            rows.append({
                "policy": c.label, "trial": c.trial, "role": role, "metric": name,
                "value": est[i][name][0], "lo": est[i][name][1], "hi": est[i][name][2],
                "diff_vs_current": diff[0], "diff_lo": diff[1], "diff_hi": diff[2],
                "objective": any(m.name == name for m in goal), "constraint": bound.text if bound else "",
                "meets": (bound.holds(est[i][name][0]) if bound else None),
            })
    table = pd.DataFrame(rows, columns=list(FRESH_COLUMNS))
    return Fresh(picks, table, pick, bool(feasible), tied, _reason(picks, est, feasible, tied, pick, primary, bounds))


def leaders(values: Sequence[dict[str, np.ndarray]], est: Sequence[dict[str, tuple]], primary,
            bounds: Sequence[Constraint], rng: np.random.Generator,
            difference: Callable[..., tuple[float, float, float]] | None = None
            ) -> tuple[list[int], int | None, list[int]]:
    """(feasible, best, tied): the policies that meet every bound (point estimates), the one of them with the lowest
    `primary` (then deploy time), and those whose paired 95% interval against it reaches 0 (best included).

    `values[i][metric]` are policy i's per-run values on the seeds every policy shares, `est[i][metric]` their
    (value, low, high); `difference(metric, a, b)` is `paired_difference` unless a caller that quotes the same
    differences later passes its own (simlab.experiment.decision, which judges compares and sweeps by this rule)."""
    difference = difference or (lambda m, a, b: paired_difference(m, a, b, rng))
    feasible = [i for i in range(len(values)) if all(c.holds(est[i][c.metric.name][0]) for c in bounds)]
    if not feasible:
        return feasible, None, []
    best = min(feasible, key=lambda i: (est[i][primary.name][0], _or_inf(est[i][TIE_BREAK][0])))
    tied = [i for i in feasible if i == best or not difference(
        primary, values[i][primary.name], values[best][primary.name])[1] > 0]
    return feasible, best, tied


def _or_inf(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _reason(picks, est, feasible, tied, pick, primary, bounds) -> str:
    chosen = picks[pick]
    n = len(picks)
    if not feasible:
        return (f"no policy of the {n} run on fresh seeds meets {', '.join(b.text for b in bounds)}; "
                f"{chosen.label} misses them by least")
    met = f"{len(feasible)} of the {n} run on fresh seeds meet the constraints" if bounds else f"{n} run on fresh seeds"
    lowest = min(feasible, key=lambda i: est[i][primary.name][0])
    if len(tied) > 1 and pick != lowest:
        return (f"{met}; {len(tied)} of them are within the noise of the lowest {primary.name} "
                f"(paired 95% intervals), and {chosen.label} deploys a good release fastest among them")
    if len(tied) > 1:
        return (f"{met}; {chosen.label} has the lowest {primary.name}, {len(tied) - 1} other(s) within its noise "
                f"(paired 95% intervals), none deploying a good release faster")
    return f"{met}; {chosen.label} has the lowest {primary.name}, clear of the others (paired 95% intervals)"


def summary(fresh: Fresh) -> dict[str, Any]:
    """The recommendation as meta.json keeps it."""
    chosen = fresh.candidates[fresh.recommended]
    return {"policy": chosen.label, "trial": chosen.trial, "strategy_kind": chosen.kind, "overrides": chosen.overrides,
            "feasible": fresh.feasible, "tied": [fresh.candidates[i].label for i in fresh.tied],
            "reason": fresh.reason, "fingerprint": chosen.scenario.fingerprint()}
