"""Detection is never earlier than monitoring lets the controller see the bad data.

The fake monitoring below knows the truth (from `bad_start` on, every request of
the new version fails) but reveals a window of `monitoring.window` seconds that
ends at `visible_until(now, scrape_interval, delay)`: the last scrape that has
made it through ingestion. The controller must not detect anything before that
window holds enough failed requests, and then must detect at the analysis tick
that sees its `failure_limit`-th failing window.
"""
import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from simlab.control import WindowStats
from simlab.metrics import visible_until
from tests.helpers.control import HEALTHY, build_scenario, drive

RATE = 10.0  # requests per second the new version serves once it has traffic
ERROR_LIMIT = 0.01
HOLD = {"kind": "canary", "steps": [{"weight": 50, "bake": "10h"}, {"weight": 100}]}  # stays on step 0


@dataclass
class Monitored:
    """A MetricsView that only shows samples scraped and ingested by `now`."""

    scrape: float
    window: float
    delay: float
    bad_start: float
    alert_sees_it: bool = True  # False: the whole-service windows stay healthy (analysis alone detects)
    now: float = 0.0

    def at(self, now: float) -> "Monitored":
        self.now = now
        return self

    def bad_seconds_visible(self, now: float, window: float) -> float:
        end = visible_until(now, self.scrape, self.delay)
        return max(0.0, end - max(end - window, self.bad_start))

    def version_window(self, version: str) -> WindowStats:
        if version == "old":
            return HEALTHY
        n = int(RATE * self.bad_seconds_visible(self.now, self.window) + 1e-9)
        return WindowStats(requests=n, errors=n)

    def total_window(self, seconds: float) -> WindowStats:
        if not self.alert_sees_it:
            return HEALTHY
        bad = int(RATE * self.bad_seconds_visible(self.now, seconds) + 1e-9)
        return WindowStats(requests=int(RATE * seconds), errors=bad)


def canary_scenario(scrape, window, delay, interval, failure_limit, min_requests, release_at, startup):
    return build_scenario(
        fleet={"startup": startup},
        release={"at": release_at},
        strategy=HOLD,
        analysis={"interval": interval, "failure_limit": failure_limit, "min_requests": min_requests,
                  "metrics": [{"metric": "error_rate", "max": ERROR_LIMIT}]},
        monitoring={"scrape_interval": scrape, "window": window, "delay": delay},
    )


def expected_detection(view: Monitored, release_at, interval, failure_limit, min_requests, until):
    """The analysis tick that sees the failure_limit-th window with at least min_requests (all failed)."""
    failed, t = 0, release_at + interval
    while t <= until:
        if RATE * view.bad_seconds_visible(t, view.window) + 1e-9 >= min_requests:
            failed += 1
            if failed == failure_limit:
                return t
        t += interval
    return None


monitoring = st.sampled_from([1, 5, 10, 15, 30, 60]).flatmap(
    lambda scrape: st.tuples(st.just(scrape), st.integers(1, 4).map(lambda k: scrape * k)))


@settings(max_examples=60)
@given(
    monitoring=monitoring,
    delay=st.integers(0, 120),
    interval=st.integers(1, 120),
    failure_limit=st.integers(1, 3),
    min_requests=st.integers(1, 300),
    release_at=st.integers(0, 60),
    startup=st.integers(1, 30),
)
def test_analysis_detects_no_earlier_than_scrape_window_and_delay_allow(
    monitoring, delay, interval, failure_limit, min_requests, release_at, startup
):
    scrape, window = monitoring
    scenario = canary_scenario(scrape, window, delay, interval, failure_limit, min_requests, release_at, startup)
    bad_start = float(release_at + startup)  # the canary instance is ready and gets its weight
    view = Monitored(scrape, window, delay, bad_start, alert_sees_it=False)
    until = bad_start + delay + window + scrape + min_requests / RATE + (failure_limit + 1) * interval + 5
    run = drive(scenario, metrics=view, until=until)

    assert (bad_start, "weight", {"new_percent": 50.0}) in run.trace
    detected = run.controller.detected_at
    assert detected == expected_detection(view, release_at, interval, failure_limit, min_requests, until)
    if RATE * window < min_requests:
        assert detected is None  # a window can never hold enough requests: inconclusive forever
        return
    # Never earlier: min_requests failed requests must be scraped, then ingested, then failure_limit
    # windows judged one analysis interval apart.
    earliest = bad_start + min_requests / RATE + delay + (failure_limit - 1) * interval
    assert detected >= earliest - 1e-9
    assert visible_until(detected, scrape, delay) >= bad_start + min_requests / RATE - 1e-9
    # ...and not needlessly late: within one scrape and one analysis interval of the data being there.
    assert detected <= earliest + scrape + interval + 1
    failed = [d for t, kind, d in run.trace if kind == "analysis" and d["status"] == "failed"]
    assert len(failed) == failure_limit and all(d["requests"] >= min_requests for d in failed)


def test_with_default_monitoring_a_canary_bad_from_20s_fails_analysis_at_70s_and_130s():
    # scrape 15s, window 1m, delay 30s, analysis every 1m, failure_limit 2; canary gets traffic at 20s.
    scenario = canary_scenario(15, 60, 30, 60, 2, 50, release_at=10, startup=10)
    view = Monitored(15, 60, 30, bad_start=20.0, alert_sees_it=False)
    run = drive(scenario, metrics=view, until=400.0)
    # t=70: monitoring shows up to t=30, i.e. 10s of failures (100 requests): failed #1.
    # t=130: shows up to t=90, a full window of failures: failed #2 -> rollback.
    assert [(t, d["status"], d["requests"]) for t, kind, d in run.trace if kind == "analysis"] == [
        (70.0, "failed", 100), (130.0, "failed", 600)]
    assert run.controller.detected_at == 130.0


BUDGET = 1 - 99.9 / 100
NEEDED_BAD_SECONDS = 14.4 * BUDGET * 300  # the 5-minute window must burn at 14.4x: 4.32s of all-bad traffic


@settings(max_examples=40)
@given(monitoring=monitoring, delay=st.integers(0, 120), release_at=st.integers(0, 60))
def test_burn_rate_alert_fires_no_earlier_than_monitoring_shows_the_burn(monitoring, delay, release_at):
    scrape, window = monitoring
    scenario = build_scenario(strategy={"kind": "big_bang"}, release={"at": release_at},
                              monitoring={"scrape_interval": scrape, "window": window, "delay": delay})
    view = Monitored(scrape, window, delay, bad_start=float(release_at))  # every request bad from the release on
    run = drive(scenario, metrics=view, until=release_at + delay + 3 * scrape + 60, stop_when_done=False)

    alerted = [t for t, kind, _ in run.trace if kind == "alert"]
    assert len(alerted) == 1
    assert alerted[0] >= release_at + delay + NEEDED_BAD_SECONDS - 1e-9
    assert visible_until(alerted[0], scrape, delay) - release_at >= NEEDED_BAD_SECONDS - 1e-9
    assert alerted[0] <= release_at + delay + math.ceil(NEEDED_BAD_SECONDS / scrape) * scrape + 2 * scrape + 1
    assert run.controller.detected_at == alerted[0]
