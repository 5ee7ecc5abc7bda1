"""From a frame of runs to the numbers an SRE compares policies by, with 95% intervals.

Columns used: bad_release, outcome, bad, detected_at_s, rollback_done_at_s,
deploy_duration_s, error_budget_used, extra_instance_seconds, and where present
rollback_cause and rollback_trigger.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # standard normal quantile at 0.975

TABLE_COLUMNS = (
    "runs", "bad_runs", "good_runs",
    "p_rollback_bad", "p_rollback_bad_lo", "p_rollback_bad_hi",
    "p_false_rollback", "p_false_rollback_lo", "p_false_rollback_hi",
    "p_bad_promoted", "p_bad_promoted_lo", "p_bad_promoted_hi",
    "bad_mean", "bad_mean_lo", "bad_mean_hi", "bad_p95",
    "bad_given_bad_mean", "bad_given_bad_mean_lo", "bad_given_bad_mean_hi",
    "bad_given_good_mean", "bad_given_good_mean_lo", "bad_given_good_mean_hi",
    "no_release_bad_mean",
    "added_given_bad_mean", "added_given_bad_mean_lo", "added_given_bad_mean_hi",
    "added_given_good_mean", "added_given_good_mean_lo", "added_given_good_mean_hi",
    "added_mean", "added_mean_lo", "added_mean_hi",
    "ttd_mean_s", "ttd_p50_s", "ttd_p95_s",
    "ttr_mean_s", "ttr_p95_s",
    "deploy_duration_good_mean_s", "deploy_duration_good_p95_s",
    "error_budget_mean", "extra_instance_seconds_mean",
    "false_rollback_causes", "false_rollback_triggers",
)
"""The aggregates of compare and sweep tables, after the label columns.

p_* are shares with Wilson 95% intervals: rolled back among bad releases, rolled
back among good ones (false rollbacks), promoted among bad ones. bad_mean and
bad_p95 are bad requests per deploy over all runs (the expectation over whether
the release is bad); bad_given_bad_* and bad_given_good_* split them by the
drawn release. no_release_bad_mean is what the same seeds serve with no release
at all, and added_* the bad requests the release added over it, run by run
(simlab.experiment.twins.added_by_release): given a bad release (the harm let
through), given a good one (the price of deploying) and over all runs. Means
carry a Student-t 95% interval. ttd is the time to detect among
bad releases that were detected, ttr the time until the rollback finished, both
from release.at. Deploy duration is over good releases that were promoted.
false_rollback_causes counts the good releases rolled back by rollback_cause
("error_rate 20, alert 1"), false_rollback_triggers by what made the metric cross
(rollback_trigger, simlab.attribution: "failure 20, crash 3, noise 2"), as
analysis-quality's causes and triggers (`counted`); NaN when no good release was
rolled back.
"""


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float, float]:
    """(share, low, high): the Wilson score interval, sound near 0 and 1 where the normal one is not."""
    if trials == 0:
        return math.nan, math.nan, math.nan
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    # the ends are held to the share they bound: at n of n the arithmetic gives 1 - 2e-16 for the upper end, at
    # 0 of n a low of 3e-17
    return p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): Student-t 95% interval on the mean; NaN bounds with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def counted(values: Iterable[Any]) -> str:
    """"a 3, b 1": each value and how often, most common first (missing values left out)."""
    counts = Counter(str(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
    return ", ".join(f"{v} {n}" for v, n in counts.most_common())


def _mean(row: dict[str, Any], name: str, values: pd.Series, count: bool) -> None:
    """row[name], row[name_lo], row[name_hi]: the mean and its interval; a count's interval stops at 0."""
    mean, low, high = mean_interval(pd.to_numeric(values, errors="coerce"))
    row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean, (max(0.0, low) if count and not math.isnan(low) else low), high


def _stat(values: pd.Series, how: str) -> float:
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if len(x) == 0:
        return math.nan
    return float(x.mean()) if how == "mean" else float(np.percentile(x, float(how[1:])))


def aggregate(runs: pd.DataFrame) -> dict[str, Any]:
    """The TABLE_COLUMNS of one policy's runs."""
    bad = runs["bad_release"].astype(bool)
    outcome = runs["outcome"]
    bad_runs, good_runs = int(bad.sum()), int((~bad).sum())
    rolled_back = outcome == "rolled_back"
    row: dict[str, Any] = {"runs": len(runs), "bad_runs": bad_runs, "good_runs": good_runs}
    for name, hits, among in (
        ("p_rollback_bad", rolled_back & bad, bad_runs),
        ("p_false_rollback", rolled_back & ~bad, good_runs),
        ("p_bad_promoted", (outcome == "promoted") & bad, bad_runs),
    ):
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = wilson(int(hits.sum()), among)
    _mean(row, "bad_mean", runs["bad"], count=True)
    row["bad_p95"] = _stat(runs["bad"], "p95")
    _mean(row, "bad_given_bad_mean", runs.loc[bad, "bad"], count=True)
    _mean(row, "bad_given_good_mean", runs.loc[~bad, "bad"], count=True)
    twin = runs["no_release_bad"] if "no_release_bad" in runs else pd.Series(math.nan, index=runs.index)
    added = runs["added_bad"] if "added_bad" in runs else pd.Series(math.nan, index=runs.index)
    row["no_release_bad_mean"] = _stat(twin, "mean")
    _mean(row, "added_given_bad_mean", added[bad], count=False)
    _mean(row, "added_given_good_mean", added[~bad], count=False)
    _mean(row, "added_mean", added, count=False)
    detect = runs.loc[bad, "detected_at_s"]
    recover = runs.loc[bad, "rollback_done_at_s"]
    deploy = runs.loc[~bad & (outcome == "promoted"), "deploy_duration_s"]
    row.update(
        ttd_mean_s=_stat(detect, "mean"), ttd_p50_s=_stat(detect, "p50"), ttd_p95_s=_stat(detect, "p95"),
        ttr_mean_s=_stat(recover, "mean"), ttr_p95_s=_stat(recover, "p95"),
        deploy_duration_good_mean_s=_stat(deploy, "mean"), deploy_duration_good_p95_s=_stat(deploy, "p95"),
        error_budget_mean=_stat(runs["error_budget_used"], "mean"),
        extra_instance_seconds_mean=_stat(runs["extra_instance_seconds"], "mean"),
    )
    for name, column in (("false_rollback_causes", "rollback_cause"), ("false_rollback_triggers", "rollback_trigger")):
        # NaN, not "", when there are none: what compare.csv reads back as
        row[name] = (counted(runs.loc[rolled_back & ~bad, column]) if column in runs else "") or math.nan
    return row


def table(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per group of `by` (in order of first appearance): the label columns, then TABLE_COLUMNS."""
    by = list(by)
    rows = []
    for key, group in runs.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **aggregate(group)})
    return pd.DataFrame(rows, columns=[*by, *TABLE_COLUMNS])


def pareto(table: pd.DataFrame, x: str = "deploy_duration_good_mean_s", y: str = "bad_mean") -> pd.DataFrame:
    """Rows no other row beats on both x and y (lower is better); rows missing either are left out."""
    known = table.dropna(subset=[x, y])
    xs, ys = known[x].to_numpy(float), known[y].to_numpy(float)
    keep = [
        not np.any((xs <= xs[i]) & (ys <= ys[i]) & ((xs < xs[i]) | (ys < ys[i])))
        for i in range(len(known))
    ]
    return known.loc[np.array(keep, dtype=bool)].sort_values(x, kind="stable")
