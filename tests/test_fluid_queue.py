"""The fluid engine's queueing and latency model against simlab.queueing and the service distributions."""
from __future__ import annotations

import numpy as np
import pytest

from simlab import queueing
from simlab.dists import from_spec
import math

from simlab.engines.fluid import queue as fq
from simlab.engines.fluid.station import stationary
from simlab.engines.effects import AttemptEffects
from simlab.engines.fluid.latency import LatencyModel
from simlab.scenario.distributions import Exponential, LogNormal

CASES = [(1, 0.5), (4, 3.0), (8, 6.8), (50, 49.0), (200, 150.0), (1600, 200.0)]


UNBOUNDED = 1e7  # places: no rejection at these loads


def station_at(c, lam, mu, places=UNBOUNDED, cs2=1.0):
    """The station's stationary law at exactly this arrival rate (Poisson arrivals, no deadline)."""
    law = stationary(c, places, mu, 1.0, cs2, math.inf, rho=np.array([lam / (c * mu)]))
    return {k: float(v[0]) for k, v in law.items()}


@pytest.mark.parametrize("c,a", CASES)
def test_erlang_b_matches_the_recursion_and_the_station_waits_with_erlang_c(c, a):
    assert fq.erlang_b(c, a) == pytest.approx(queueing.erlang_b(c, a), rel=1e-9, abs=1e-300)
    assert station_at(c, a, 1.0)["pw"] == pytest.approx(queueing.erlang_c(c, a), rel=1e-9, abs=1e-300)


def test_vectorised_over_loads_and_saturated_stations_always_wait():
    law = stationary(4, UNBOUNDED, 1.0, 1.0, 1.0, math.inf, rho=np.array([0.75, 1.25]))
    assert law["pw"].shape == (2,)
    assert law["pw"][0] == pytest.approx(queueing.erlang_c(4, 3.0))
    assert law["pw"][1] == pytest.approx(1.0)  # above saturation


@pytest.mark.parametrize("c,lam,mu", [(1, 0.5, 1.0), (4, 3.0, 1.0), (8, 340.0, 50.0)])
def test_allen_cunneen_is_mmc_for_poisson_arrivals_and_exponential_service(c, lam, mu):
    law = station_at(c, lam, mu)
    assert law["Lq"] / lam == pytest.approx(queueing.mmc_mean_wait(c, lam, mu), rel=1e-9)
    # the wait's rate makes P(wait)/θ the mean wait
    assert law["pw"] / law["theta"] == pytest.approx(queueing.mmc_mean_wait(c, lam, mu), rel=1e-9)
    # deterministic service halves the M/M/c wait (Allen–Cunneen's (ca² + cs²)/2)
    half = station_at(c, lam, mu, cs2=0.0)
    assert half["Lq"] / lam == pytest.approx(queueing.mmc_mean_wait(c, lam, mu) / 2, rel=1e-9)


@pytest.mark.parametrize("c,k,rho", [(1, 5, 0.9), (4, 12, 1.0), (8, 12, 1.3), (4, 100, 0.5)])
def test_finite_queue_blocking_matches_mmck(c, k, rho):
    lam, mu = rho * c, 1.0
    assert station_at(c, lam, mu, places=k - c)["B"] == pytest.approx(queueing.mmck_blocking(c, k, lam, mu),
                                                                        rel=1e-6, abs=1e-12)


def test_idle_probability_is_mmc_p0():
    import math

    c, a = 4, 3.0
    p0 = 1 / (sum(a**k / math.factorial(k) for k in range(c)) + a**c / math.factorial(c) / (1 - a / c))
    assert fq.idle_probability(c, a) == pytest.approx(p0, rel=1e-9)
    assert fq.idle_probability(4, 5.0) == 0.0


def test_service_cdf_quantiles_are_the_distributions():
    spec = LogNormal(dist="lognormal", mean=0.04, p99=0.2)
    model = LatencyModel(spec, threshold=0.5, timeout=2.0)
    comps, mean, scv, cdf = model.service()
    p50, p99 = model.quantiles(cdf)
    dist = from_spec(spec)
    assert p50 == pytest.approx(dist.quantile(0.5), rel=0.01)
    assert p99 == pytest.approx(dist.quantile(0.99), rel=0.01)
    assert mean == pytest.approx(0.04) and scv == pytest.approx(dist.scv)
    # a latency defect x2 + 10ms moves every quantile the same way
    _, mean2, _, cdf2 = model.service(AttemptEffects(multiplier=2.0, add=0.01))
    assert model.quantiles(cdf2)[1] == pytest.approx(2 * dist.quantile(0.99) + 0.01, rel=0.01)
    assert mean2 == pytest.approx(0.09)


def test_response_cdf_adds_the_mmc_waiting_time():
    """Exponential service plus M/M/c's wait: the CDF's mean is 1/μ + C/(cμ - λ)."""
    c, mu = 4, 25.0
    lam = 0.85 * c * mu
    model = LatencyModel(Exponential(dist="exponential", mean=1 / mu), threshold=1.0, timeout=30.0)
    comps = model.service()[0]
    law = station_at(c, lam, mu)
    cdf = model.response_cdf(comps, law["pw"], law["theta"], shape=law["shape"])
    grid = model.grid
    mean = np.sum(np.diff(cdf) * 0.5 * (grid[1:] + grid[:-1]))
    assert mean == pytest.approx(queueing.mmc_mean_response(c, lam, mu), rel=0.02)
    # without the wait the same CDF is the service time alone: waiting must move the tail
    assert model.quantiles(cdf)[1] > 1.3 * model.quantiles(model.service()[3])[1]


@pytest.mark.parametrize("ca2", [0.25, 0.5])
@pytest.mark.parametrize("c", [1, 2, 4])
def test_wait_decay_rate_is_gi_m_cs_for_exponential_service(ca2, c):
    from simlab.engines.fluid.round_robin import decay_rate as _decay_rate, gi_sigma as _gi_sigma

    mu, rho = 10.0, np.array([0.3, 0.6, 0.8, 0.95])
    eta = _decay_rate(rho * c * mu, c, ca2, lambda s: np.where(s < mu, mu / np.maximum(mu - s, 1e-300), np.inf))
    assert eta == pytest.approx(c * mu * (1.0 - _gi_sigma(rho, ca2)), rel=1e-6)


def test_wait_decay_rate_is_the_tail_of_m_d_1s_exact_wait():
    from simlab.engines.fluid.round_robin import decay_rate as _decay_rate

    lam, d = 7.0, 0.1
    eta = float(_decay_rate(np.array([lam]), 1, 1.0, lambda s: np.exp(s * d))[0])
    tail = [1.0 - queueing.md1_wait_cdf(lam, d, t) for t in (1.0, 1.5)]
    assert eta == pytest.approx(-math.log(tail[1] / tail[0]) / 0.5, rel=0.01)
