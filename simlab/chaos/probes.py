"""Chaos Toolkit probes of the local staging: what users get, what HAProxy and Prometheus saw, a deploy's result.

`success_ratio` and `latency_p99_ms` send their own requests (GETs through
HAProxy on 127.0.0.1, four at a time), so a hypothesis holds or not on what a
user would get right now, with or without load; `error_rate` reads HAProxy's
counters from the staging's Prometheus over a window, so it includes the
load a deploy or `simlab staging load` is driving.

No `from __future__ import annotations` here: chaoslib reads the annotations
to describe each argument's type in `chaos discover`.
"""
import json
import math
import time
from pathlib import Path

from simlab.chaos import check_version, open_staging, ready_count
from simlab.errors import ScenarioError, StagingError

__all__ = ["ready_instances", "success_ratio", "latency_p99_ms", "error_rate", "deploy_summary_value"]


def ready_instances(version: str | None = None, settle: float = 0.0, configuration: dict | None = None,
                    state_dir: str | None = None) -> int:
    """Instances in HAProxy rotation (of `version`, or all), waiting up to `settle` s for `fleet.instances`.

    `settle` gives a fleet that is coming back (start-up, health checks) time;
    it returns as soon as the whole fleet serves, else the count at the end.
    """
    check_version(version)
    _check_positive("settle", settle, allow_zero=True)
    return ready_count(open_staging(configuration, state_dir), version, settle)


def success_ratio(requests: int = 50, configuration: dict | None = None, state_dir: str | None = None) -> float:
    """Share of `requests` GETs through HAProxy (4 at a time) answered 2xx (others, timeouts included, fail)."""
    answers = _sample(requests, configuration, state_dir)
    return sum(1 for status, _ in answers if 200 <= status < 300) / len(answers)


def latency_p99_ms(requests: int = 50, configuration: dict | None = None, state_dir: str | None = None) -> float:
    """99th percentile latency (ms) of the successful ones of `requests` GETs through HAProxy (4 at a time).

    Failed requests are left out, as in simlab's summaries; if none succeeds the
    probe fails (there is no latency to judge).
    """
    import numpy as np

    answers = _sample(requests, configuration, state_dir)
    ok = [seconds for status, seconds in answers if 200 <= status < 300]
    if not ok:
        raise StagingError(f"latency_p99_ms: none of {len(answers)} requests succeeded")
    return round(float(np.percentile(ok, 99)) * 1000.0, 3)


def error_rate(window="30s", configuration: dict | None = None, state_dir: str | None = None) -> float:
    """Share of requests HAProxy answered 5xx over the last `window` (its own 503s included), from Prometheus.

    0.0 when the window holds no request at all: nothing failed. Prometheus
    scrapes HAProxy every `monitoring.scrape_interval`, so the last seconds
    may not be in yet.
    """
    from simlab.staging.prometheus import PromQL
    from simlab.units import parse_duration

    try:
        seconds = parse_duration(window)
    except ValueError as exc:
        raise ScenarioError(f"window: {exc}") from None
    _check_positive("window", seconds)
    st = open_staging(configuration, state_dir)
    w = f"{max(1, round(seconds * 1000))}ms"
    client = PromQL(st.prometheus_url)
    requests = client.scalar(f'sum(increase(haproxy_frontend_http_requests_total{{proxy="fe"}}[{w}]))') or 0.0
    errors = client.scalar(f'sum(increase(haproxy_frontend_http_responses_total{{proxy="fe",code="5xx"}}[{w}]))')
    return 0.0 if requests <= 0 else min(1.0, (errors or 0.0) / requests)


def deploy_summary_value(out: str, key: str):
    """One key of the summary.json a deploy wrote to `out` (see `actions.deploy`), e.g. outcome or failed."""
    path = Path(out) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise StagingError(f"out: expected a deploy's results in {out} (no summary.json; run the deploy action "
                           f"with out={out!r} first)") from None
    except ValueError as exc:
        raise StagingError(f"{path}: expected a JSON summary, found unreadable content ({exc})") from None
    if key not in summary:
        raise ScenarioError(f"key: expected one of {', '.join(sorted(summary))}, found {key!r}")
    return summary[key]


CONCURRENCY = 4
"""Probe requests in flight at once: a probe of 100 takes a quarter of the time, and 4 in flight stay far below
what an instance serves, so they measure the fleet, not themselves."""


def _sample(requests: int, configuration: dict | None, state_dir: str | None) -> list[tuple[int, float]]:
    """(status, seconds) of `requests` GETs of the service through HAProxy, CONCURRENCY at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from simlab.staging import procs

    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ScenarioError(f"requests: expected a whole number >= 1, found {requests!r}")
    st = open_staging(configuration, state_dir)
    timeout = st.scenario.traffic.timeout
    url = st.url + "/"

    def one(_) -> tuple[int, float]:
        t0 = time.perf_counter()
        status, _ = procs.http_get(url, timeout=timeout)
        return status, time.perf_counter() - t0

    with ThreadPoolExecutor(min(CONCURRENCY, requests)) as pool:
        return list(pool.map(one, range(requests)))


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ScenarioError(f"{name}: expected seconds {'>= 0' if allow_zero else '> 0'}, found {value!r}")
