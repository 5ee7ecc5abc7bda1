"""The request engine against queueing theory, replicated over seeds with stated tolerances."""
from __future__ import annotations

import numpy as np
import pytest

from simlab import simulate
from simlab.queueing import erlang_c, mmc_mean_response, mmck_blocking
from simlab.scenario import parse_scenario

REPLICATIONS = 4


def single_station(workers: int, queue_limit: int, lam: float, mean_service: float, duration: float) -> str:
    """One instance, exponential service, Poisson arrivals, no release: an M/M/c/K queue."""
    return f"""
name: mmc
duration: {duration}
fleet:
  instances: 1
  workers: {workers}
  queue_limit: {queue_limit}
  service_time: {{dist: exponential, mean: {mean_service}}}
traffic: {{rps: {lam}, timeout: 1h}}
"""


def replicate(text: str) -> list:
    scenario = parse_scenario(text)
    return [simulate(scenario, seed=seed) for seed in range(REPLICATIONS)]


@pytest.mark.parametrize(
    "workers,rho,mean_service",
    [(1, 0.5, 0.02), (4, 0.75, 0.02), (8, 0.85, 0.01)],
)
def test_mmc_mean_latency_and_probability_of_waiting_match_erlang_c(workers, rho, mean_service):
    mu = 1.0 / mean_service
    lam = rho * workers * mu
    duration = 60_000 / lam  # about 60,000 requests per replication
    runs = replicate(single_station(workers, 100_000, lam, mean_service, duration))
    latency = np.array([r.summary["latency_mean_ms"] / 1000.0 for r in runs])
    waited = np.array([r.summary["queued_attempts"] / r.summary["requests"] for r in runs])
    expected_w = mmc_mean_response(workers, lam, mu)
    expected_pw = erlang_c(workers, lam / mu)
    # 4 x 60k requests: the mean response is within 5% of theory, P(wait) within 0.03 absolute.
    assert latency.mean() == pytest.approx(expected_w, rel=0.05)
    assert waited.mean() == pytest.approx(expected_pw, abs=0.03)
    assert all(r.summary["failed"] == 0 for r in runs)


@pytest.mark.parametrize(
    "workers,queue_limit,rho",
    [(1, 4, 0.9), (4, 8, 1.0), (8, 4, 1.3)],
)
def test_mmck_rejections_match_blocking_probability(workers, queue_limit, rho):
    mean_service = 0.02
    mu = 1.0 / mean_service
    lam = rho * workers * mu
    duration = 50_000 / lam
    runs = replicate(single_station(workers, queue_limit, lam, mean_service, duration))
    rejected = np.array([r.summary["failed_rejected"] / r.summary["requests"] for r in runs])
    expected = mmck_blocking(workers, workers + queue_limit, lam, mu)
    assert rejected.mean() == pytest.approx(expected, abs=0.01, rel=0.08)


def test_littles_law_holds_through_a_rollout():
    """L = λW on a fleet that is canaried and promoted mid-run (requests in flight sampled each second)."""
    text = """
name: little
duration: 15m
fleet:
  instances: 6
  workers: 4
  queue_limit: 50
  service_time: {dist: lognormal, mean: 60ms, p99: 400ms}
  startup: 10s
  health_check: {interval: 2s, unhealthy_after: 2, healthy_after: 1}
traffic: {rps: 250, timeout: 1h}
release: {at: 2m}
strategy: {kind: canary, steps: [{weight: 20, bake: 2m}, {weight: 60, bake: 2m}, {weight: 100}]}
analysis: {interval: 30s, min_requests: 20, metrics: [{metric: error_rate, max: 0.05}]}
monitoring: {scrape_interval: 5s, window: 30s, delay: 5s}
"""
    for seed in range(2):
        result = simulate(parse_scenario(text), seed=seed)
        s, tl = result.summary, result.timeline
        assert s["outcome"] == "promoted"
        lam = s["requests"] / 900.0
        w = s["latency_mean_ms"] / 1000.0
        assert tl["in_flight"].mean() == pytest.approx(lam * w, rel=0.04)


def test_arrivals_are_poisson_at_the_rate_of_the_pattern_and_spikes():
    """Counts per second have mean = variance = λ(t), through spikes and a diurnal cycle (thinning)."""
    text = """
name: arrivals
duration: 30m
fleet: {instances: 4, workers: 16, service_time: {dist: constant, value: 1ms}}
traffic:
  rps: 80
  pattern: {kind: diurnal, peak_to_trough: 3, peak_at: 15m, period: 30m}
  spikes: [{at: 10m, duration: 2m, multiplier: 2.5}]
  timeout: 10s
"""
    from simlab.engines.traffic import OfferedLoad

    scenario = parse_scenario(text)
    result = simulate(scenario, seed=11)
    offered = result.timeline["offered"].to_numpy()
    expected = OfferedLoad(scenario).rates(np.arange(len(offered)) + 0.5)
    residual = (offered - expected) / np.sqrt(expected)
    assert abs(residual.mean()) < 0.1  # unbiased
    assert residual.var() == pytest.approx(1.0, abs=0.15)  # Poisson dispersion
    spike = offered[600:720].mean()
    assert spike == pytest.approx(expected[600:720].mean(), rel=0.03)
    assert spike > 2.2 * offered[420:540].mean() * 0.8


def test_the_mean_offered_rate_summed_in_chunks_is_the_mean_over_every_second(monkeypatch):
    """`OfferedLoad.mean_rate` (what `--engine auto` sizes a run by) holds a million seconds at a time, so a
    long run's mean does not hold every second's λ at once; in chunks it is the one-shot mean to rounding."""
    import numpy as np

    import simlab.engines.traffic as traffic
    from simlab.scenario import validate_scenario

    s = validate_scenario({"name": "long", "duration": "3d", "fleet": {"instances": 2, "service_time": "20ms"},
                           "traffic": {"rps": 10, "pattern": {"kind": "diurnal"},
                                       "spikes": [{"at": "1h", "duration": "1h", "multiplier": 2}]}})
    load = traffic.OfferedLoad(s)
    whole = float(np.mean(load.rates(np.arange(int(s.duration)) + 0.5)))
    assert load.mean_rate(s.duration) == whole  # one chunk: the same sum
    monkeypatch.setattr(traffic, "MEAN_CHUNK", 1000)  # 260 chunks
    assert load.mean_rate(s.duration) == pytest.approx(whole, rel=1e-12)
    assert load.mean_rate(s.duration) != pytest.approx(10.0, rel=1e-3)  # the spike and the pattern count
