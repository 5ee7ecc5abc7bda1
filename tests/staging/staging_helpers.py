"""Small staging scenarios for the staging tests (seconds long, a few instances)."""
from __future__ import annotations

import textwrap

from simlab.scenario import parse_scenario
from simlab.scenario.staging import staging_scenario

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
