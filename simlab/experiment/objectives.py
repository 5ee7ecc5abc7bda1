"""What `simlab optimize` minimises and bounds: named metrics of a policy's runs, each a per-run value and a
reduction (mean, share or percentile), with a 95% interval and a paired interval against another policy.

Every metric is lower-is-better. A good release that was rolled back (or had not finished by the end of the
run) counts as deployed at the end of the run, so deploy times never drop a failed deploy; a bad release never
detected counts as detected at the end of the run.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError
from simlab.experiment.aggregate import mean_interval, wilson
from simlab.scenario import Scenario
from simlab.units import parse_duration

Values = Callable[[pd.DataFrame, float], np.ndarray]  # (runs, seconds from release to the run's end) -> values


@dataclass(frozen=True)
class Metric:
    name: str
    meaning: str
    values: Values  # NaN where the run does not count (a good-release metric on a bad release)
    reduce: str  # mean | share | p50 | p95
    unit: str  # count | share | seconds
    needs: str | None = None  # good | bad: the release draws it needs


def _bad(runs: pd.DataFrame) -> np.ndarray:
    return runs["bad_release"].astype(bool).to_numpy()


def _where(mask: np.ndarray, values) -> np.ndarray:
    return np.where(mask, np.asarray(values, dtype=float), np.nan)


def _num(runs: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)


def _deploy(runs: pd.DataFrame, remaining: float) -> np.ndarray:
    promoted = (runs["outcome"] == "promoted").to_numpy()
    seconds = np.where(promoted, _num(runs, "deploy_duration_s"), remaining)
    return _where(~_bad(runs), seconds)


def _detect(runs: pd.DataFrame, remaining: float) -> np.ndarray:
    detected = _num(runs, "detected_at_s")
    return _where(_bad(runs), np.where(np.isnan(detected), remaining, detected))


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("bad_requests_added", "bad requests the release added over its no-release twin, mean over all runs",
           lambda r, _: _num(r, "added_bad"), "mean", "count"),
    Metric("bad_requests_added_bad", "bad requests a bad release added, mean over bad releases",
           lambda r, _: _where(_bad(r), _num(r, "added_bad")), "mean", "count", "bad"),
    Metric("bad_requests_added_good", "bad requests a good release added (the price of deploying), mean",
           lambda r, _: _where(~_bad(r), _num(r, "added_bad")), "mean", "count", "good"),
    Metric("bad_requests", "bad requests per run (failed + slow), mean", lambda r, _: _num(r, "bad"), "mean", "count"),
    Metric("false_rollback", "share of good releases rolled back",
           lambda r, _: _where(~_bad(r), r["outcome"] == "rolled_back"), "share", "share", "good"),
    Metric("bad_promoted", "share of bad releases promoted (missed)",
           lambda r, _: _where(_bad(r), r["outcome"] == "promoted"), "share", "share", "bad"),
    Metric("deploy_duration_mean", "deploy time of a good release, mean (not deployed: the rest of the run)",
           _deploy, "mean", "seconds", "good"),
    Metric("deploy_duration_p50", "deploy time of a good release, median", _deploy, "p50", "seconds", "good"),
    Metric("deploy_duration_p95", "deploy time of a good release, 95th percentile", _deploy, "p95", "seconds", "good"),
    Metric("time_to_detect_p50", "time from the release to detecting a bad one, median (never: the rest of the run)",
           _detect, "p50", "seconds", "bad"),
    Metric("error_budget_used", "share of the SLO window's error budget used, mean",
           lambda r, _: _num(r, "error_budget_used"), "mean", "share"),
    Metric("extra_instance_seconds", "instance-seconds beyond the fleet's, mean",
           lambda r, _: _num(r, "extra_instance_seconds"), "mean", "count"),
)}

DEFAULT_OBJECTIVES = ("bad_requests_added", "false_rollback", "deploy_duration_mean")
"""Without --minimize: three objectives, the harm first (it decides the recommendation)."""


def metric(name: str, option: str = "--minimize") -> Metric:
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ScenarioError(f"{option}: expected one of {', '.join(METRICS)}, found {name!r}{hint}")
    return METRICS[name]


def objectives(names) -> tuple[Metric, ...]:
    names = list(names or DEFAULT_OBJECTIVES)
    picked = [metric(n) for n in names]
    if len(set(names)) != len(names):
        raise ScenarioError(f"--minimize: expected each metric once, found {', '.join(names)}")
    return tuple(picked)


@dataclass(frozen=True)
class Constraint:
    """`metric <= bound` or `metric >= bound`; `violation` is > 0 when broken, scaled by the bound."""

    metric: Metric
    op: str
    bound: float
    text: str

    def violation(self, value: float) -> float:
        gap = value - self.bound if self.op == "<=" else self.bound - value
        return gap / (abs(self.bound) or 1.0)

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and self.violation(value) <= 0


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_0-9]+)\s*(<=|>=|<|>|==|=)\s*(.*?)\s*$")


def parse_constraint(text: str) -> Constraint:
    """`deploy_duration_p50<=30m`, `false_rollback<=0.05` (or 5%), `bad_requests_added<=100`."""
    match = _CONSTRAINT.match(str(text))
    if not match:
        raise ScenarioError(f"--constraint: expected METRIC<=VALUE or METRIC>=VALUE (e.g. deploy_duration_p50<=30m, "
                            f"false_rollback<=0.05), found {text!r}")
    name, op, raw = match.groups()
    m = metric(name, "--constraint")
    if op not in ("<=", ">="):
        raise ScenarioError(f"--constraint {name}: expected <= or >= (a bound the policy may reach), found {op!r}")
    try:
        if m.unit == "seconds":
            bound = parse_duration(raw)
        elif m.unit == "share" and raw.endswith("%"):
            bound = float(raw[:-1]) / 100
        else:
            bound = float(raw)
    except ValueError:
        example = {"seconds": "30m", "share": "0.05 or 5%", "count": "100"}[m.unit]
        raise ScenarioError(f"--constraint {name}: expected a {'duration' if m.unit == 'seconds' else 'number'} "
                            f"such as {example}, found {raw!r}") from None
    if not math.isfinite(bound) or (m.unit == "share" and not 0 <= bound <= 1):
        expected = "a share from 0 to 1" if m.unit == "share" else "a finite number"
        raise ScenarioError(f"--constraint {name}: expected {expected}, found {raw!r}")
    return Constraint(m, op, bound, f"{name}{op}{raw}")


def check_release(scenario: Scenario, metrics, run_seeds: list[int], what: str) -> None:
    """A metric of good (or bad) releases needs some among the runs' drawn releases; say so before running."""
    from simlab.scenario.release import draw_release

    if scenario.release is None:
        raise ScenarioError(f"{scenario.name}: optimize judges a release; expected a `release:` in the scenario, "
                            f"found none")
    bad = [bool(c.release is not None and c.release.bad) for c, _ in (draw_release(scenario, s) for s in run_seeds)]
    for m in metrics:
        if m.needs == "good" and all(bad) or m.needs == "bad" and not any(bad):
            other = "good" if m.needs == "good" else "bad"
            raise ScenarioError(f"{m.name}: measured on {other} releases, but none of the {len(bad)} {what} draws a "
                                f"{other} release (release.bad_probability {'1' if other == 'good' else 'is 0'}); "
                                f"{'set release.bad_probability below 1' if other == 'good' else 'add defects'} "
                                f"or raise the runs")


# --- estimates ------------------------------------------------------------------------------------------

def _reduce(values: np.ndarray, how: str) -> np.ndarray:
    """Along the last axis, NaNs left out (all NaN: NaN)."""
    valid = ~np.isnan(values)
    n = valid.sum(axis=-1)
    if how in ("mean", "share"):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, np.where(valid, values, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)
    # numpy's linear percentile, row by row at once (nanpercentile loops over rows in Python)
    ordered = np.sort(values, axis=-1)  # NaN last
    pos = np.maximum(n - 1, 0) * float(how[1:]) / 100
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    at = lambda i: np.take_along_axis(ordered, np.asarray(i)[..., None], axis=-1)[..., 0]  # noqa: E731
    out = at(low) * (1 - (pos - low)) + at(high) * (pos - low)
    return np.where(n > 0, out, np.nan)


def estimate(m: Metric, values: np.ndarray, rng: np.random.Generator, resamples: int = 1000
             ) -> tuple[float, float, float]:
    """(value, low, high): Student-t for means, Wilson for shares, a bootstrap percentile interval otherwise."""
    x = values[~np.isnan(values)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    if m.reduce == "mean":
        return mean_interval(x)
    if m.reduce == "share":
        return wilson(int(x.sum()), len(x))
    point = float(_reduce(x, m.reduce))
    boot = _reduce(x[rng.integers(0, len(x), (resamples, len(x)))], m.reduce)
    return point, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def paired_difference(m: Metric, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int = 1000
                      ) -> tuple[float, float, float]:
    """metric(a) − metric(b) for two policies' runs on the same seeds, with a paired bootstrap 95% interval
    (the runs are resampled together, so what both policies share cancels out)."""
    if len(a) != len(b) or len(a) == 0:
        return math.nan, math.nan, math.nan
    point = float(_reduce(a, m.reduce) - _reduce(b, m.reduce))
    idx = rng.integers(0, len(a), (resamples, len(a)))
    boot = _reduce(a[idx], m.reduce) - _reduce(b[idx], m.reduce)
    boot = boot[~np.isnan(boot)]
    if len(boot) == 0:
        return point, math.nan, math.nan
    return point, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def remaining(scenario: Scenario) -> float:
    """Seconds from the release to the end of the run: the time a deploy or detection that never came counts."""
    return scenario.duration - (scenario.release.at if scenario.release is not None else 0.0)


def point_values(runs: pd.DataFrame, scenario: Scenario) -> dict[str, float]:
    """Every metric's point estimate of one policy's runs."""
    left = remaining(scenario)
    return {name: float(_reduce(m.values(runs, left), m.reduce)) if len(runs) else math.nan
            for name, m in METRICS.items()}
