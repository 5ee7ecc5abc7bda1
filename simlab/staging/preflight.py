"""What keeps a scenario's analysis from being evaluated on a Prometheus, found before a deploy starts.

`preflight` evaluates every query for the stable version, now, and refuses what could never
judge: a syntax error, a metric name Prometheus has never stored, a result that is not one value, no series
at all when the query selects a version. A query without `{{version}}` or `{{instance}}` measures the canary
by itself and may have no data before the canary runs; only its syntax, names and shape are checked.
"""
from __future__ import annotations

import re
import time

from simlab.control.observations import sub_windows
from simlab.scenario import Scenario
from simlab.scenario.queries import used
from simlab.scenario.strategy import MetricCheck
from simlab.staging.prometheus import REQUESTS, CustomMetrics, PromQL, QueryRejected, duration, one_value

# PromQL words that are not metric names: grouping and set keywords, number literals.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
             "atan2", "inf", "nan", "start", "end", "topk", "bottomk"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label matchers, grouping lists and functions
    left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {n for n in _NAME.findall(text) if n.lower() not in _KEYWORDS}


def preflight(client: PromQL, scenario: Scenario) -> list[str]:
    """What keeps the scenario's analysis from being evaluated on this Prometheus, one line each (none: it can).

    Also the built-in metrics (simlab's series for the stable version) and the mann_whitney judge's
    sub-windows (each at least one scrape interval, or some hold no scrape).
    """
    analysis = scenario.analysis if scenario.strategy.analysis else None
    if analysis is None or not analysis.metrics:
        return []
    at = time.time()  # now, not monitoring.delay ago: a staging started moments ago has nothing older
    scrape, window = scenario.monitoring.scrape_interval, scenario.monitoring.window
    problems = []
    windows = [window]
    if analysis.judge.kind == "mann_whitney":
        shortest = min(b - a for a, b in sub_windows(0.0, window, analysis.judge.samples))
        windows.append(shortest)
        if shortest < scrape:
            problems.append(f"analysis.judge.samples: expected sub-windows of at least one scrape interval "
                            f"({scrape:g}s) on staging, found {analysis.judge.samples} sub-windows of "
                            f"monitoring.window ({window:g}s), the shortest {shortest:g}s (some would hold no scrape)")
    builtin = [i for i, m in enumerate(analysis.metrics) if m.query is None]
    if builtin and not client.query(f'count(last_over_time({REQUESTS}{{version="old"}}[5m]))', at):
        problems.append(f"analysis.metrics[{builtin[0]}] ({analysis.metrics[builtin[0]].metric}): expected "
                        f"{REQUESTS}{{version=\"old\"}} in Prometheus at {client.base} (the built-in metrics' "
                        f"series, docs/staging.md), found none")
    custom = CustomMetrics(client, scenario)
    if custom:
        problems += _queries(client, custom, windows, scrape)
    return problems


def _queries(client: PromQL, custom: CustomMetrics, windows: list[float], scrape: float) -> list[str]:
    """Each query for the stable version, now, over each window it will be evaluated on (once the stable
    instances have been scraped twice: rate() needs two samples of every series)."""
    _settle(client, scrape)
    at = time.time()
    known = client.metric_names()
    instances = custom.instances("old", at, 300.0)
    # a staging started moments ago has not been scraped over a whole window yet: a query that finds no series
    # is asked again until one window and two scrapes have passed, then it is refused
    patience = at + max(windows) + 2 * scrape + 1.0
    problems = []
    for i, m in custom.checks:
        for seconds in windows:
            expr = custom.expression(m, "old", seconds, instances)
            wrong = _unknown(expr, known) or _shape(client, expr, time.time())
            while wrong == _EMPTY and used(m.query) & {"version", "instance"} and time.time() < patience:
                time.sleep(min(scrape, 1.0))
                wrong = _shape(client, expr, time.time())
            if wrong == _EMPTY and not used(m.query) & {"version", "instance"}:
                continue  # it measures the canary by itself: no data before the canary runs
            if wrong == _EMPTY:
                short = (f"; its {{{{window}}}} of {seconds:g}s holds fewer than two scrapes (scrape_interval "
                         f"{scrape:g}s), too few for rate() or increase()"
                         if "window" in used(m.query) and seconds < 2 * scrape else "")
                wrong = f"one series for the stable version (version old), found none{short}: {expr!r}"
            if wrong:
                problems.append(f"{m.origin + ': ' if m.origin else ''}analysis.metrics[{i}].query: expected {wrong}")
                break
    return problems


def _settle(client: PromQL, scrape: float) -> None:
    """Wait (at most two scrape intervals and a second) until every series of the stable version is two scrapes
    old: right after `staging up` or a restart, a query over a short window sees only some instances."""
    series = f'{REQUESTS}{{version="old"}}'
    young = f"count({series} unless {series} offset {duration(2 * scrape)})"
    deadline = time.time() + 2 * scrape + 1.0
    while time.time() < deadline and client.scalar(young):
        time.sleep(min(scrape / 2, 0.5))


_EMPTY = "no series"


def _where(i: int, m: MetricCheck) -> str:
    return f"{m.origin + ': ' if m.origin else ''}analysis.metrics[{i}].query"


def _unknown(expr: str, known: set[str]) -> str | None:
    """What is wrong with the metric names `expr` selects (some Prometheus has never stored), or None."""
    unknown = sorted(metric_names(expr) - known)
    if not unknown:
        return None
    return f"metrics Prometheus holds, found {', '.join(map(repr, unknown))}, which it has never stored" + \
        _close(unknown[0], known)


def _shape(client: PromQL, expr: str, at: float) -> str | None:
    """What is wrong with `expr`'s answer at `at` (refused, not one value, or _EMPTY), or None."""
    try:
        kind, result = client.instant(expr, at)
    except QueryRejected as exc:
        return f"PromQL Prometheus accepts, found {exc.reason} in {expr!r}"
    if kind == "vector" and not result:
        return _EMPTY
    wrong = one_value(kind, result)[1]
    return f"{wrong}: {expr!r}" if wrong else None


def _close(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
