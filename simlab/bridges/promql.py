"""Analysis metrics between PromQL and simlab: what a query with a bound measures (import), and the queries
an exported manifest runs against the staging fleet's own metrics (export).

Import reads the common forms, not PromQL in general: a success or error ratio (`result[0] >= 0.95` on a
success ratio is an error-rate bound of 0.05; a value above 1 is a percentage), a latency from
`histogram_quantile` or a `_sum`/`_count` mean (unit from the metric's name: `seconds` or `milliseconds`), and
either of them against the old version (a query naming `stable`, `baseline`, `primary` or `version="old"`) as a
ratio to the baseline. Anything else is reported, not guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from simlab.bridges.manifests import format_duration

REQUESTS = "simlab_requests_total"  # the staging instances' counters (simlab/staging/service.py)
LATENCY = "simlab_request_duration_seconds"

FailWhen = Literal["above", "below"]


@dataclass(frozen=True)
class Bound:
    """A measurement fails when the value is above (or below) `value`."""

    fail_when: FailWhen
    value: float


class Unmodelled(Exception):
    """The query or bound is not one of the forms simlab models; the message says why."""


_BASELINE = re.compile(r"stable|baseline|primary|version\s*=~?\s*\"old\"", re.IGNORECASE)
_QUANTILE = re.compile(r"histogram_quantile\s*\(\s*([0-9.]+)")


def _tidy(x: float) -> float:
    return float(f"{x:.10g}")


# How a query's value becomes simlab's (a fraction of errors, seconds), as a format of the query (queries.py).
AS_IS, SUCCESS, PERCENT, SUCCESS_PERCENT, MILLISECONDS = "{}", "1 - ({})", "({}) / 100", "1 - ({}) / 100", "({}) / 1000"


def check_for(query: str, name: str, bound: Bound) -> tuple[dict, list[str], str]:
    """The simlab analysis metric a query and bound amount to, any caveats, and how the query's value becomes that
    metric's (AS_IS, SUCCESS, PERCENT, SUCCESS_PERCENT or MILLISECONDS); raise Unmodelled otherwise."""
    text = f"{query} {name}".lower()
    baseline = bool(_BASELINE.search(query))
    latency = "histogram_quantile" in text or any(k in text for k in ("latency", "duration", "response_time"))
    if latency:
        return _latency(query, text, bound, baseline)
    check, terms = _rate(bound, baseline)
    return check, [], terms


def _latency(query: str, text: str, bound: Bound, baseline: bool) -> tuple[dict, list[str], str]:
    notes = []
    match = _QUANTILE.search(query)
    if match:
        q = float(match.group(1))
        if q <= 0.5:
            metric = "latency_p50"
        else:
            metric = "latency_p99"
        if q not in (0.5, 0.99):
            notes.append(f"quantile {q:g} measured as {metric} (simlab has p50, p99 and the mean)")
    elif "_sum" in text and "_count" in text or re.search(r"\b(mean|avg|average)\b", text):
        metric = "latency_mean"
    elif "p50" in text or "median" in text:
        metric = "latency_p50"
    else:
        metric = "latency_p99"
    if bound.fail_when != "above":
        raise Unmodelled("a latency that fails when it is low is not a regression simlab models")
    if baseline:
        return {"metric": metric, "max_ratio_to_baseline": _tidy(bound.value)}, notes, AS_IS
    if "milliseconds" in text or re.search(r"_ms\b", text):
        scale = 0.001
    elif "seconds" in text:
        scale = 1.0
    else:
        scale = 0.001 if bound.value >= 10 else 1.0
        notes.append(f"unit not named in the query: {bound.value:g} read as {'milliseconds' if scale < 1 else 'seconds'}")
    terms = MILLISECONDS if scale < 1 else AS_IS
    return {"metric": metric, "max": format_duration(bound.value * scale)}, notes, terms


def _rate(bound: Bound, baseline: bool) -> tuple[dict, str]:
    if baseline:
        if bound.fail_when != "above":
            raise Unmodelled("a ratio to the baseline that fails when it is low is not a regression simlab models")
        return {"metric": "error_rate", "max_ratio_to_baseline": _tidy(bound.value)}, AS_IS
    percent = bound.value > 1
    value = bound.value / 100.0 if percent else bound.value
    if not 0 <= value <= 1:
        raise Unmodelled(f"expected a ratio from 0 to 1 or a percentage, found {bound.value:g}")
    # failing below a value: a success ratio; above: an error ratio
    success = bound.fail_when == "below"
    error_max = 1.0 - value if success else value
    terms = {(False, False): AS_IS, (True, False): SUCCESS, (False, True): PERCENT, (True, True): SUCCESS_PERCENT}
    return {"metric": "error_rate", "max": _tidy(error_max)}, terms[success, percent]


# --- conditions (Argo Rollouts' successCondition / failureCondition) ------------------------------------

_GUARD = re.compile(r"^\s*(?:len\(result\)\s*==\s*0|isNaN\(result(?:\[0\])?\))\s*\|\|\s*|"
                    r"^\s*len\(result\)\s*>\s*0\s*&&\s*")
_VALUE = r"(?:asFloat\()?result(?:\[0\])?\)?"
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_LEFT = re.compile(rf"^\s*{_VALUE}\s*(>=|>|<=|<)\s*{_NUMBER}\s*$")
_RIGHT = re.compile(rf"^\s*{_NUMBER}\s*(>=|>|<=|<)\s*{_VALUE}\s*$")
_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


def comparison(condition: str) -> tuple[str, float]:
    """`result[0] >= 0.95` (or `0.95 <= result[0]`, with an `isNaN(...) ||` guard) as (operator, number)."""
    text = condition.strip()
    while True:
        stripped = _GUARD.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    match = _LEFT.match(text)
    if match:
        return match.group(1), float(match.group(2))
    match = _RIGHT.match(text)
    if match:
        return _FLIP[match.group(2)], float(match.group(1))
    raise Unmodelled(f"expected a comparison such as `result[0] >= 0.95`, found {condition!r}")


def bound_of(success: str | None, failure: str | None) -> tuple[Bound, bool]:
    """The failing side of the conditions, and whether values may fall between them (Argo: inconclusive)."""
    fail = None
    if failure:
        op, value = comparison(failure)
        fail = Bound("above" if op in (">", ">=") else "below", value)
    ok = None
    if success:
        op, value = comparison(success)
        ok = Bound("below" if op in (">", ">=") else "above", value)  # not succeeding is failing
    if fail is None and ok is None:
        raise Unmodelled("expected a successCondition or a failureCondition, found neither")
    if fail is None:
        return ok, False
    band = ok is not None and (ok.fail_when != fail.fail_when or ok.value != fail.value)
    return fail, band


# --- export: the staging fleet's metrics -----------------------------------------------------------------

FIVE_XX = 'code_class="5xx"'
NOT_5XX = 'code_class!="5xx"'


def _sel(version: str, extra: str = "") -> str:
    inner = f'version="{version}"' + (f",{extra}" if extra else "")
    return "{" + inner + "}"


def _error_ratio(version: str, window: str) -> str:
    return (f"sum(rate({REQUESTS}{_sel(version, FIVE_XX)}[{window}])) / "
            f"sum(rate({REQUESTS}{_sel(version)}[{window}]))")


def _latency_query(metric: str, version: str, window: str) -> str:
    if metric == "latency_mean":
        return (f"sum(rate({LATENCY}_sum{_sel(version)}[{window}])) / "
                f"sum(rate({LATENCY}_count{_sel(version)}[{window}]))")
    q = "0.5" if metric == "latency_p50" else "0.99"
    return f"histogram_quantile({q}, sum by (le) (rate({LATENCY}_bucket{_sel(version)}[{window}])))"


def staging_query(metric: str, against_baseline: bool, window: str) -> str:
    """PromQL over the staging fleet's metrics for one simlab check; `window` is a duration or a placeholder.

    A ratio to the baseline counts a clean baseline as one error in its window, as simlab's judge does.
    """
    if metric == "error_rate":
        if not against_baseline:
            return _error_ratio("new", window)
        errors_old = f"clamp_min(sum(increase({REQUESTS}{_sel('old', FIVE_XX)}[{window}])), 1)"
        return (f"({_error_ratio('new', window)}) / "
                f"({errors_old} / sum(increase({REQUESTS}{_sel('old')}[{window}])))")
    new = _latency_query(metric, "new", window)
    return f"({new}) / ({_latency_query(metric, 'old', window)})" if against_baseline else new


def success_query(window: str) -> str:
    """The success ratio of the new version (the form Argo Rollouts' examples use)."""
    return (f"sum(rate({REQUESTS}{_sel('new', NOT_5XX)}[{window}])) / "
            f"sum(rate({REQUESTS}{_sel('new')}[{window}]))")


def bounds(check) -> list[tuple[str, bool, float]]:
    """A simlab check as manifest metrics: (name, against the baseline, bound), one per bound it carries.

    The bound is the value the check fails above: a fraction for error_rate, seconds for a latency, the ratio
    to the baseline.
    """
    base = check.metric.replace("_", "-")
    out = []
    if check.max is not None:
        out.append((base, False, float(check.max)))
    if check.max_ratio_to_baseline is not None:
        out.append((f"{base}-vs-baseline", True, float(check.max_ratio_to_baseline)))
    return out
