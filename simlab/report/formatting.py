"""Numbers as a design review reads them: "97% [91–99%]", "1,240 [980–1,530]", "4.2m"."""
from __future__ import annotations

import math
from typing import Any, Callable

import pandas as pd

from simlab.report.document import Table
from simlab.units import format_duration


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def pct(p: Any) -> str:
    """A probability as a percent with as many digits as it needs: 97%, 2.5%, 0.3%, 0%."""
    if missing(p):
        return "-"
    x = 100.0 * float(p)
    if abs(x) < 1e-9 or abs(x - 100.0) < 1e-9:  # float noise from interval arithmetic, e.g. 2.8e-17
        x = round(x)
    if x in (0.0, 100.0) or 10 <= x <= 99:
        return f"{x:.0f}%"
    if x < 0.01:
        return "<0.01%"
    if x < 0.1:
        return f"{x:.2g}%"
    return f"{x:.1f}".removesuffix(".0") + "%"


def pct_ci(p: Any, lo: Any = None, hi: Any = None) -> str:
    """'97% [91–99%]'; the interval is left off when it is not known."""
    if missing(p):
        return "-"
    if missing(lo) or missing(hi):
        return pct(p)
    return f"{pct(p)} [{pct(lo)[:-1]}–{pct(hi)}]"


def count(x: Any) -> str:
    """A count or mean count: 1,240 / 12.5 / 0.3."""
    if missing(x):
        return "-"
    x = float(x)
    if abs(x) >= 100 or x == int(x):
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.2g}"


def count_ci(x: Any, lo: Any = None, hi: Any = None) -> str:
    if missing(x):
        return "-"
    if missing(lo) or missing(hi):
        return count(x)
    return f"{count(x)} [{count(lo)}–{count(hi)}]"


def duration(seconds: Any) -> str:
    return "-" if missing(seconds) else format_duration(float(seconds))


def times(ratio: float) -> str:
    """A ratio as '12×' or '1.8×'."""
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def _get(row: pd.Series, key: str) -> Any:
    return row[key] if key in row.index else None


Column = tuple[str, Callable[[pd.Series], str], tuple[str, ...]]  # header, formatter, columns it needs


def _false_rollbacks(name: str) -> Callable[[pd.Series], str]:
    """A count list of the good releases rolled back ("error_rate 20, alert 1"); "none" when there were none."""
    def cell(r: pd.Series) -> str:
        value = _get(r, name)
        if not missing(value) and str(value):
            return str(value)
        return "none" if _get(r, "p_false_rollback") == 0 else "-"
    return cell


def _mean_ci(name: str) -> Callable[[pd.Series], str]:
    return lambda r: count_ci(_get(r, name), _get(r, f"{name}_lo"), _get(r, f"{name}_hi"))


# Bad requests are split by the drawn release and set against the same seeds with no release, so a
# column never mixes good and bad releases (results written before the split show the mixed mean).
SPLIT_BAD = "bad_given_bad_mean"
AGGREGATE_COLUMNS: list[Column] = [
    ("runs (bad/good)", lambda r: f"{count(_get(r, 'runs'))} ({count(_get(r, 'bad_runs'))}/{count(_get(r, 'good_runs'))})",
     ("runs",)),
    ("caught bad release", lambda r: pct_ci(_get(r, "p_rollback_bad"), _get(r, "p_rollback_bad_lo"), _get(r, "p_rollback_bad_hi")),
     ("p_rollback_bad",)),
    ("false rollback", lambda r: pct_ci(_get(r, "p_false_rollback"), _get(r, "p_false_rollback_lo"), _get(r, "p_false_rollback_hi")),
     ("p_false_rollback",)),
    ("false rollbacks by cause", _false_rollbacks("false_rollback_causes"), ("false_rollback_causes",)),
    ("false rollbacks: what crossed", _false_rollbacks("false_rollback_triggers"), ("false_rollback_triggers",)),
    ("bad promoted", lambda r: pct_ci(_get(r, "p_bad_promoted"), _get(r, "p_bad_promoted_lo"), _get(r, "p_bad_promoted_hi")),
     ("p_bad_promoted",)),
    ("bad requests, mean", _mean_ci("bad_mean"), ("bad_mean",)),
    ("bad p95", lambda r: count(_get(r, "bad_p95")), ("bad_p95",)),
    ("bad requests per bad release", _mean_ci(SPLIT_BAD), (SPLIT_BAD,)),
    ("per good release", _mean_ci("bad_given_good_mean"), ("bad_given_good_mean",)),
    ("with no release", lambda r: count(_get(r, "no_release_bad_mean")), ("no_release_bad_mean",)),
    ("added by a bad release", _mean_ci("added_given_bad_mean"), ("added_given_bad_mean",)),
    ("added by a good release", _mean_ci("added_given_good_mean"), ("added_given_good_mean",)),
    ("detect p50 / p95", lambda r: f"{duration(_get(r, 'ttd_p50_s'))} / {duration(_get(r, 'ttd_p95_s'))}", ("ttd_p50_s",)),
    ("recover mean / p95", lambda r: f"{duration(_get(r, 'ttr_mean_s'))} / {duration(_get(r, 'ttr_p95_s'))}", ("ttr_mean_s",)),
    ("deploy (good) mean / p95",
     lambda r: f"{duration(_get(r, 'deploy_duration_good_mean_s'))} / {duration(_get(r, 'deploy_duration_good_p95_s'))}",
     ("deploy_duration_good_mean_s",)),
    ("error budget / deploy", lambda r: pct(_get(r, "error_budget_mean")), ("error_budget_mean",)),
    ("extra instance-s", lambda r: count(_get(r, "extra_instance_seconds_mean")), ("extra_instance_seconds_mean",)),
]
MIXED = ("bad requests, mean", "bad p95")  # over good and bad releases as drawn: the sweep's Pareto axis

TABLE_NOTE = (
    "Brackets are 95% confidence intervals. 'caught' = rolled back given a bad release; 'false rollback' = rolled "
    "back given a good one; detect and recover are measured from the start of the release; error budget is the "
    "share of the SLO window's budget one deploy uses."
)
CAUSES_NOTE = (" False rollbacks are counted by cause (the analysis metrics that failed, joined by +, or alert, deadline, "
               "inconclusive) and by what made the metric cross: a scheduled failure in the analysis' view, an instance "
               "crash, the capacity the deploy held out of rotation, or noise.")
SPLIT_NOTE = (
    " Bad requests are per deploy of a bad release (the figure's runs) and of a good one; 'with no release' is what "
    "the same seeds serve with no deploy at all (crashes, failures, traffic), and 'added' is a run's bad requests "
    "minus those of the same seed with no release, so a good release's is the price of deploying it."
)
MIXED_NOTE = " 'bad requests, mean' is per deploy over good and bad releases as drawn (the Pareto front's axis)."


def aggregate_table(frame: pd.DataFrame, key_columns: list[str], key_headers: list[str] | None = None,
                    mixed: bool = False) -> Table:
    """The compare/sweep aggregates, one row per variant or grid point, keys first; absent columns are left out.

    Where bad requests are split by release, the mean over good and bad releases together is left out
    unless `mixed` (a sweep's Pareto front is drawn on it).
    """
    split = SPLIT_BAD in frame.columns and frame[SPLIT_BAD].notna().any()
    hide = MIXED if split and not mixed else ()
    cols = [c for c in AGGREGATE_COLUMNS if all(k in frame.columns for k in c[2]) and c[0] not in hide]
    headers = (key_headers or [short_param(k) for k in key_columns]) + [c[0] for c in cols]
    rows = []
    for _, row in frame.iterrows():
        keys = [str(row[k]) for k in key_columns]
        rows.append(keys + [fmt(row) for _, fmt, _ in cols])
    causes = any(c[2] == ("false_rollback_causes",) for c in cols)
    return Table(headers, rows, TABLE_NOTE + (SPLIT_NOTE if split else "") + (MIXED_NOTE if split and mixed else "")
                 + (CAUSES_NOTE if causes else ""))


def short_param(name: str) -> str:
    """'param.strategy.steps[0].bake' -> 'strategy.steps[0].bake'."""
    return name[len("param."):] if name.startswith("param.") else name
