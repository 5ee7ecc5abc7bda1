"""The offered rate of a scenario's traffic, second by second, for Locust's LoadTestShape.

The simulator's engines own their own copy of this formula (base rate x
pattern x spikes); staging must not import the engines, and a test checks
both give the same rates.
"""
from __future__ import annotations

import math

from simlab.scenario import Scenario
from simlab.scenario.model import Diurnal, Replay


def offered_rate(scenario: Scenario, t: float) -> float:
    """Requests per second the scenario offers at second `t` of the run."""
    traffic = scenario.traffic
    p = traffic.pattern
    factor = 1.0
    if isinstance(p, Diurnal):
        r = p.peak_to_trough
        factor = 1.0 + (r - 1.0) / (r + 1.0) * math.cos(2 * math.pi * (t - p.peak_at) / p.period)
    elif isinstance(p, Replay) and p.rates:
        mean = sum(p.rates) / len(p.rates)
        factor = p.rates[int(t) % len(p.rates)] / mean if mean > 0 else 0.0
    value = traffic.rps * factor
    for spike in traffic.spikes:
        if spike.at <= t < spike.at + spike.duration:
            value *= spike.multiplier
    return value


def schedule(scenario: Scenario, duration: float) -> list[float]:
    """The offered rate at the middle of each second of a run of `duration` seconds."""
    return [offered_rate(scenario, i + 0.5) for i in range(int(math.ceil(duration)))]
