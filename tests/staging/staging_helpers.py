"""What the staging tests share: small scenarios (seconds long, a few instances) and polling with a deadline.

Fixtures are in conftest.py; everything a test module imports by name is here.
"""
from __future__ import annotations

import concurrent.futures
import textwrap
import time

import pytest

from simlab.errors import StagingError
from simlab.scenario import parse_scenario
from simlab.scenario.loading import staging_scenario
from simlab.staging import procs

SMALL = textwrap.dedent("""\
    name: staging-test
    duration: 60s
    seed: 3
    fleet:
      instances: 3
      workers: 4
      queue_limit: 8
      service_time: {dist: exponential, mean: 10ms}
      startup: 500ms
      load_balancer: round_robin
      health_check: {interval: 250ms, unhealthy_after: 2, healthy_after: 2}
    traffic: {rps: 30, timeout: 2s}
    monitoring: {scrape_interval: 1s, window: 5s, delay: 0s}
    slo: {latency_threshold: 100ms}
""")


def small_scenario(extra: str = ""):
    return staging_scenario(parse_scenario(SMALL + textwrap.dedent(extra)))


DEPLOY = textwrap.dedent("""\
    name: staging-deploy-test
    duration: 40s
    seed: 5
    fleet:
      instances: 2
      workers: 8
      queue_limit: 16
      service_time: {dist: exponential, mean: 10ms}
      startup: 500ms
      load_balancer: least_outstanding
      health_check: {interval: 250ms, unhealthy_after: 2, healthy_after: 2}
    traffic: {rps: 40, timeout: 2s}
    release: {at: 5s}
    strategy:
      kind: canary
      steps: [{weight: 50, bake: 8s}, {weight: 100}]
    analysis:
      interval: 3s
      failure_limit: 2
      # At least 30 requests a window: with 10, a window of a 30%-bad canary has no error 2.8% of the
      # time (0.7^10) and one such pass completes a bake; with 30 it is 0.02% (at most one error).
      min_requests: 30
      metrics: [{metric: error_rate, max: 0.05}]
    rollback: {automatic: true, duration: 1s, on_call: {ack: 10s}}
    monitoring: {scrape_interval: 1s, window: 5s, delay: 0s}
    slo: {availability: 99.0, latency_threshold: 250ms, alert: {long_window: 20s, short_window: 5s}}
""")


def deploy_scenario(extra: str = ""):
    return staging_scenario(parse_scenario(DEPLOY + textwrap.dedent(extra)))


STEPS = ("release_started", "step_started", "weight", "promoted", "old_released", "detected", "rollback_started",
         "rollback_finished")


def rollout_steps(events) -> list[tuple]:
    """A rollout's moves from controller events, without the analysis measurements whose count depends on timing."""
    return [(e.kind, e.detail) for e in events if e.kind in STEPS]


def wait_for(check, timeout: float, what: str) -> float:
    """Poll `check()` until true (the supervisor's own `procs.wait_until`); fail the test after `timeout` s."""
    try:
        return procs.wait_until(check, timeout, what, interval=0.1)
    except StagingError as exc:
        pytest.fail(str(exc), pytrace=False)


def get_many(url: str, n: int, threads: int = 8) -> list[int]:
    """The statuses of `n` GETs of `url`, `threads` at a time."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [status for status, _ in pool.map(lambda _: procs.http_get(url, timeout=5.0), range(n))]


def answer(port: int) -> tuple[int, float]:
    """Status and seconds of one request straight to the instance on `port` (not through HAProxy)."""
    t0 = time.monotonic()
    status, _ = procs.http_get(f"http://127.0.0.1:{port}/", timeout=5.0)
    return status, time.monotonic() - t0


def until_every_instance(st, seen, timeout: float, what: str) -> None:
    """Ask every instance of `st` directly until `seen(status, seconds)` held once for each.

    Instances read the dependency-fault file once a second; this is how a test
    knows they all have, without sleeping for a guessed second.
    """
    ports = {name: m.record.port for name, m in st.members.items()}
    done: set[str] = set()

    def all_seen() -> bool:
        done.update(name for name, port in ports.items() if name not in done and seen(*answer(port)))
        return len(done) == len(ports)

    wait_for(all_seen, timeout, what)
