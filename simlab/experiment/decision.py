"""Which policy to pick: the variants (strategies, named variants, grid points) within the scenario's `decide:`
limits, the one with the lowest objective among them, and whether the data can tell it from the others.

The rule is the one `simlab optimize` judges its candidates by (simlab.experiment.recommendation.leaders):
qualify on point estimates, rank by the objective, and call two policies different only when the paired 95%
interval of their difference, over the seeds every variant shares (common random numbers), excludes 0. When
it does not, no winner is named: the leaders are indistinguishable at this many runs, and a power estimate
from the observed paired variance says how many runs each would tell them apart.

`decide` returns plain JSON, which meta.json keeps under "decision"; simlab.report.decision writes the sentences.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from simlab.experiment.aggregate import Z95
from simlab.experiment.objectives import METRICS, Constraint, estimate, paired_difference
from simlab.experiment.recommendation import TIE_BREAK, leaders
from simlab.scenario.decide import Decide

Z80 = 0.8416212335729143  # standard normal quantile at 0.8: 80% power
SHOWN = ("false_rollback", "deploy_duration_mean", "bad_promoted")
"""Metrics every variant carries besides the objective and the limits: what a reason sentence quotes."""


def limits(spec: Decide) -> list[Constraint]:
    """The `decide:` block's limits as the constraints `simlab optimize --constraint` writes."""
    out = [Constraint(METRICS["false_rollback"], "<=", spec.max_false_rollback,
                      f"false_rollback<={spec.max_false_rollback:g}")]
    if spec.max_deploy_duration is not None:
        out.append(Constraint(METRICS["deploy_duration_mean"], "<=", spec.max_deploy_duration,
                              f"deploy_duration_mean<={spec.max_deploy_duration:g}s"))
    if spec.max_bad_promoted is not None:
        out.append(Constraint(METRICS["bad_promoted"], "<=", spec.max_bad_promoted,
                              f"bad_promoted<={spec.max_bad_promoted:g}"))
    return out


def spec_json(spec: Decide | None) -> dict[str, Any]:
    """The block as it was applied, and whether it came from the scenario or is the defaults."""
    used = spec or Decide()
    return {**used.model_dump(mode="json"), "source": "scenario" if spec is not None else "defaults"}


def decide(runs: pd.DataFrame, by: Sequence[str], spec: Decide | None, remaining: float, rng: np.random.Generator,
           runs_each: int, pair_on: Sequence[str] = ("run",), labels: Sequence[str] | None = None,
           also_fails: dict[int, list[dict]] | None = None) -> dict[str, Any]:
    """The decision over the groups of `runs` by `by` (in order of first appearance, as the tables list them).

    Runs are paired across groups on `pair_on` (run i of every group has the same seed); `runs_each` is how many
    runs each group has per pairing unit (a compare's --runs), the unit "at N runs" and the power estimate use.
    `remaining` is the seconds from the release to the end of a run (what an undeployed release counts).
    `also_fails[i]`: reasons group i is out beyond the limits (analysis-quality's detection target).
    """
    used = spec or Decide()
    bounds = limits(used)
    objective = METRICS[used.objective]
    names = list(dict.fromkeys([objective.name, *(c.metric.name for c in bounds), *SHOWN, TIE_BREAK]))
    groups = [g.sort_values(list(pair_on), kind="stable") for _, g in runs.groupby(list(by), sort=False, dropna=False)]
    keys = [g[list(pair_on)].apply(tuple, axis=1) for g in groups]
    common = set(keys[0]) if keys else set()
    for k in keys[1:]:
        common &= set(k)
    aligned = [g[k.isin(common).to_numpy()] for g, k in zip(groups, keys)]
    values = [{n: METRICS[n].values(g, remaining) for n in names} for g in aligned]
    est = [{n: estimate(METRICS[n], v[n], rng) for n in names} for v in values]
    labels = list(labels) if labels is not None else [", ".join(map(str, _key(g, by))) for g in aligned]
    also_fails = also_fails or {}

    memo: dict[tuple, tuple[float, float, float]] = {}

    def difference(metric, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
        """One bootstrap per pair and metric, so a difference quoted is the one that decided."""
        key = (metric.name, id(a), id(b))
        if key not in memo:
            memo[key] = paired_difference(metric, a, b, rng)
        return memo[key]

    eligible = [i for i in range(len(aligned)) if not also_fails.get(i)]
    feasible, best, tied = leaders([values[i] for i in eligible], [est[i] for i in eligible], objective, bounds, rng,
                                   difference)
    feasible, tied = [eligible[i] for i in feasible], [eligible[i] for i in tied]
    best = None if best is None else eligible[best]
    status = "none" if best is None else ("indistinguishable" if len(tied) > 1 else "recommended")

    variants = []
    for i, g in enumerate(aligned):
        entry: dict[str, Any] = {
            "label": labels[i], "key": [_plain(x) for x in _key(g, by)], "runs": len(g),
            "metrics": {n: [_plain(x) for x in est[i][n]] for n in names},
            "fails": [_failure(c, est[i][c.metric.name]) for c in bounds if not c.holds(est[i][c.metric.name][0])]
            + list(also_fails.get(i, [])),
            "qualifies": i in feasible, "counts": _counts(g),
        }
        if best is not None and i != best:
            diff = difference(objective, values[i][objective.name], values[best][objective.name])
            entry["vs_best"] = [_plain(x) for x in diff]
            if i in tied:
                entry["runs_to_separate"] = runs_to_separate(values[i][objective.name], values[best][objective.name],
                                                             diff[0], runs_each)
                entry["deploy_vs_best"] = [_plain(x) for x in difference(
                    METRICS[TIE_BREAK], values[i][TIE_BREAK], values[best][TIE_BREAK])]
        variants.append(entry)
    closest = None
    if best is None and eligible:
        closest = min(eligible, key=lambda i: sum(max(0.0, c.violation(est[i][c.metric.name][0]))
                                                  if not math.isnan(est[i][c.metric.name][0]) else math.inf
                                                  for c in bounds))
    return {
        "spec": spec_json(spec), "objective": objective.name, "meaning": objective.meaning, "unit": objective.unit,
        "limits": [{"metric": c.metric.name, "op": c.op, "bound": c.bound, "unit": c.metric.unit} for c in bounds],
        "runs": runs_each, "status": status, "best": best, "tied": tied if len(tied) > 1 else [],
        "recommended": best if status == "recommended" else None, "closest": closest, "variants": variants,
        "lowest": {n: lowest(values, est, METRICS[n], difference) for n in (objective.name, TIE_BREAK)},
    }


def lowest(values: list[dict], est: list[dict], metric, difference) -> dict[str, Any] | None:
    """Among every group (qualifying or not): the lowest point estimate of `metric`, the groups whose paired 95%
    interval against it reaches 0, and the nearest group clear of it with the paired difference (it − lowest)."""
    known = [i for i in range(len(est)) if not math.isnan(est[i][metric.name][0])]
    if not known:
        return None
    first = min(known, key=lambda i: est[i][metric.name][0])
    diffs = {i: difference(metric, values[i][metric.name], values[first][metric.name]) for i in known if i != first}
    tied = [first] + [i for i, d in diffs.items() if not d[1] > 0]
    clear = [i for i in known if i not in tied]
    nearest = min(clear, key=lambda i: est[i][metric.name][0]) if clear else None
    return {"index": first, "tied": tied, "next": nearest,
            "margin": None if nearest is None else [_plain(x) for x in diffs[nearest]]}


def runs_to_separate(a: np.ndarray, b: np.ndarray, difference: float, runs_each: int) -> int | None:
    """Runs each that a paired 95% test would need to tell a difference of this size apart with 80% power:
    ((z.975 + z.8) · sd / |difference|)² pairs, with sd of the observed per-run differences; None when the
    observed difference is 0 (no run count follows from it)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[~np.isnan(d)]
    if len(d) < 2 or not difference or math.isnan(difference) or runs_each <= 0:
        return None
    pairs = ((Z95 + Z80) * float(d.std(ddof=1)) / abs(difference)) ** 2
    per_run = len(d) / runs_each  # pairs one run of each adds (a good-release metric counts good runs only)
    return max(2, math.ceil(pairs / per_run))


def _failure(c: Constraint, value: tuple[float, float, float]) -> dict[str, Any]:
    return {"metric": c.metric.name, "op": c.op, "bound": c.bound, "unit": c.metric.unit,
            "value": [_plain(x) for x in value]}


def _counts(g: pd.DataFrame) -> dict[str, Any]:
    """What a reason sentence quotes: good and bad releases, rolled back and promoted, and the false rollbacks'
    causes (rollback_cause, most common first) and what made their metric cross (rollback_trigger)."""
    bad = g["bad_release"].astype(bool)
    rolled = g["outcome"] == "rolled_back"
    causes = g.loc[rolled & ~bad, "rollback_cause"].dropna().astype(str) if "rollback_cause" in g else pd.Series([], dtype=str)
    triggers = (g.loc[rolled & ~bad, "rollback_trigger"].dropna().astype(str) if "rollback_trigger" in g
                else pd.Series([], dtype=str))
    return {"good": int((~bad).sum()), "bad": int(bad.sum()), "false_rollbacks": int((rolled & ~bad).sum()),
            "good_promoted": int(((g["outcome"] == "promoted") & ~bad).sum()),
            "bad_promoted": int(((g["outcome"] == "promoted") & bad).sum()),
            "causes": {str(k): int(v) for k, v in causes.value_counts().items()},
            "triggers": {str(k): int(v) for k, v in triggers.value_counts().items()}}


def _key(g: pd.DataFrame, by: Sequence[str]) -> list:
    return [g[b].iloc[0] for b in by] if len(g) else []


def _plain(x: Any) -> Any:
    """JSON-ready: numpy scalars as Python ones, NaN as None."""
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def quality_decision(runs: pd.DataFrame, table: pd.DataFrame, verdicts: list[dict], spec: Decide | None,
                     max_false_rollback: float, min_detection: float, catch: str | None, remaining: float,
                     runs_each: int, rng: np.random.Generator) -> dict[str, Any]:
    """analysis-quality's decision: its false-rollback bound as the limit, its detection target as a further
    reason a variant is out, then the objective over every release judged (run i of each release paired)."""
    used = (spec or Decide()).model_copy(update={"max_false_rollback": max_false_rollback})
    names = [v["variant"] for v in verdicts]
    also: dict[int, list[dict]] = {}
    for i, v in enumerate(verdicts):
        bad = table[(table["variant"] == v["variant"]) & (table["release"] != "good")]
        if catch is not None:
            caught = any(c is not None and catch in c["severities"] for c in v["catches"].values())
            row = bad[bad["release"] == catch]
            if not caught and len(row):
                also[i] = [_detection(row.iloc[0], min_detection, catch=True)]
        else:
            also[i] = [_detection(bad[bad["defect"] == kind].sort_values("p_rollback").iloc[-1], min_detection)
                       for kind, c in v["catches"].items() if c is None]
    out = decide(runs, ["variant"], used, remaining, rng, runs_each, ("release", "run"), names, also)
    out["spec"]["source"] = "analysis-quality" if spec is None else "scenario"
    out["spec"]["min_detection"], out["spec"]["catch"] = min_detection, catch
    return out


def _detection(row: pd.Series, target: float, catch: bool = False) -> dict[str, Any]:
    return {"metric": "detection", "severity": str(row["release"]), "kind": str(row["defect"]), "catch": catch,
            "bound": target, "value": [_plain(row["p_rollback"]), _plain(row["p_rollback_lo"]),
                                       _plain(row["p_rollback_hi"])]}
