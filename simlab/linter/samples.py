"""The mann_whitney judge's sub-windows against the scrape interval (`analysis.judge.samples`).

The judge cuts `monitoring.window` into `samples` sub-windows (`simlab.control.observations.sub_windows`: edges
on whole seconds after the window's start) and ranks one value per sub-window and side. What a sub-window holds
depends on the driver:

- the simulators (request and fluid engines) count every second, whatever the scrape interval: a sub-window of
  one second or more always has its requests; only a 0 s sub-window (a window shorter than `samples` seconds) is
  empty, in every driver;
- staging reads Prometheus: a sub-window's value is how much the counters grew between the scrapes at its
  edges, so one with no scrape inside has not moved (0 requests, no value), and a metric's own `query:` with
  `rate(...[{{window}}])` or `increase` over the sub-window needs two scrapes in it. Below one scrape interval
  some sub-windows hold none (staging's preflight refuses the deploy); below two, some hold a single one.

A metric with fewer than MIN_SAMPLES values a side is nodata, a measurement with every metric nodata
inconclusive. The rule flags sub-windows under one scrape interval (an error) and, when a metric's own query
reads {{window}}, under two (a warning: the built-in metrics need one scrape per sub-window, so the defaults
pass), and computes the smallest change that clears it: fewer samples, a longer window, or a shorter scrape
interval.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simlab.control.mann_whitney import MIN_SAMPLES
from simlab.control.observations import sub_windows
from simlab.linter.finding import Finding, span
from simlab.scenario.queries import used

if TYPE_CHECKING:  # pragma: no cover
    from simlab.linter.rules import Context

FEWEST = 3  # analysis.judge.samples' own lower bound


def seconds(x: float) -> str:
    """A short duration to the fraction (1.5s); a long one as a scenario writes it (1m30s)."""
    return span(x) if x >= 60 else f"{x:g}s"


def lengths(window: float, samples: int) -> list[float]:
    """The sub-windows' lengths, as every driver cuts the window."""
    return [b - a for a, b in sub_windows(0.0, window, samples)]


def fixes(window: float, samples: int, scrape: float) -> tuple[int | None, float, float]:
    """The smallest change that gives every sub-window two scrape intervals: the most samples (at least 3) that
    do, or None; the shortest window that does with `samples`; the longest scrape interval that does."""
    need = 2 * scrape
    fewer = next((k for k in range(samples - 1, FEWEST - 1, -1) if min(lengths(window, k)) >= need), None)
    longer = max(window, samples * need)
    while min(lengths(longer, samples)) < need:  # ends by samples x ceil(need): every edge on a whole second
        longer = math.floor(longer) + 1.0
    return fewer, longer, min(lengths(window, samples)) / 2


def short_sub_windows(c: "Context") -> list[Finding]:
    s = c.s
    spec = s.analysis
    if (s.release is None or spec is None or not spec.metrics or spec.judge.kind != "mann_whitney"
            or not getattr(s.strategy, "analysis", False)):
        return []
    mon, k = s.monitoring, spec.judge.samples
    cut = lengths(mon.window, k)
    shortest, scrape = min(cut), mon.scrape_interval
    if shortest >= 2 * scrape:
        return []
    fewer, longer, faster = fixes(mon.window, k, scrape)
    bakes = mon.scrape_interval + longer + mon.delay
    fix = " or ".join(([f"samples {fewer}"] if fewer else []) + [
        f"monitoring.window {seconds(longer)} (bakes then at least scrape + window + delay = {seconds(bakes)})"] + (
        [f"monitoring.scrape_interval {seconds(faster)}"] if faster > 0 else []))
    cuts = (f"{k} sub-windows of monitoring.window {seconds(mon.window)} are "
            f"{seconds(shortest) + ' long' if len(set(cut)) == 1 else 'as short as ' + seconds(shortest)}")
    queries = [f"analysis.metrics[{i}] ({m.metric}{', dry run' if m.dry_run else ''})"
               for i, m in enumerate(spec.metrics) if m.query is not None and "window" in used(m.query)]
    data = {"samples": k, "window_s": mon.window, "sub_window_s": shortest, "scrape_interval_s": scrape,
            "fix_samples": fewer, "fix_window_s": longer, "fix_scrape_interval_s": faster,
            "query_metrics": queries}
    if shortest < scrape:
        held = sum(min(length, scrape) for length in cut) / scrape  # sub-windows holding a scrape, on average
        empty = sum(length == 0 for length in cut)
        sims = (f"the simulators count every second and rank all {k}" if not empty else
                f"{empty} of them are 0s long and empty in the simulators too")
        odds = (f"fewer than the {MIN_SAMPLES} a side the judge needs: most measurements are nodata, inconclusive"
                if held < MIN_SAMPLES else f"the judge needs {MIN_SAMPLES} a side; fewer values, less power")
        return [Finding("short-sub-windows", "error", "analysis.judge.samples",
                        f"{cuts}, under one scrape_interval {seconds(scrape)}: on staging a sub-window with no scrape "
                        f"in it has counters that did not move and no value (about {held:.1f} of {k} hold one, "
                        f"{odds}) and the deploy's preflight refuses it; {sims}. Smallest fix: {fix}",
                        {**data, "holding_a_scrape": held})]
    if not queries:
        # The built-in metrics read how much the counters grew between the scrapes at a sub-window's edges: one
        # scrape in it is enough. Warning here would flag the defaults (window 1m, 4 samples, scrape 15s).
        return []
    why = (f"{', '.join(queries)}: a query's rate() or increase() over {{{{window}}}} finds a single scrape in some "
           f"sub-windows and has no value there (below {MIN_SAMPLES} values a side the metric is nodata)")
    return [Finding("short-sub-windows", "warning", "analysis.judge.samples",
                    f"{cuts}, under two scrape_intervals (2 x {seconds(scrape)} = {seconds(2 * scrape)}): on staging "
                    f"{why}; the simulators count every second and do not see it. Smallest fix: {fix}", data)]
