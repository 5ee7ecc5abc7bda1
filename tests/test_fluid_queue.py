"""The fluid engine's queueing and latency model against simlab.queueing and the service distributions."""
from __future__ import annotations

import numpy as np
import pytest

from simlab import queueing
from simlab.dists import from_spec
from simlab.engines.fluid import queue as fq
from simlab.engines.effects import AttemptEffects
from simlab.engines.fluid.latency import LatencyModel
from simlab.scenario.distributions import Exponential, LogNormal

CASES = [(1, 0.5), (4, 3.0), (8, 6.8), (50, 49.0), (200, 150.0), (1600, 200.0)]


@pytest.mark.parametrize("c,a", CASES)
def test_erlang_b_and_c_match_the_recursion(c, a):
    assert fq.erlang_b(c, a) == pytest.approx(queueing.erlang_b(c, a), rel=1e-9, abs=1e-300)
    assert fq.erlang_c(c, a) == pytest.approx(queueing.erlang_c(c, a), rel=1e-9, abs=1e-300)


def test_vectorised_over_pools_and_saturated_pools_always_wait():
    c, a = np.array([[4.0, 8.0], [4.0, 2.0]]), np.array([[3.0, 6.8], [5.0, 2.0]])
    out = fq.erlang_c(c, a)
    assert out.shape == (2, 2)
    assert out[0, 0] == pytest.approx(queueing.erlang_c(4, 3.0))
    assert out[1, 0] == 1.0 and out[1, 1] == 1.0  # at or above saturation


@pytest.mark.parametrize("c,lam,mu", [(1, 0.5, 1.0), (4, 3.0, 1.0), (8, 340.0, 50.0)])
def test_allen_cunneen_is_mmc_for_poisson_arrivals_and_exponential_service(c, lam, mu):
    assert fq.mean_wait(c, lam, mu, 1.0, 1.0) == pytest.approx(queueing.mmc_mean_wait(c, lam, mu), rel=1e-9)
    # the wait's tail rate makes P(wait)/θ the mean wait
    assert fq.erlang_c(c, lam / mu) / fq.wait_tail_rate(c, lam, mu, 1.0, 1.0) == pytest.approx(
        queueing.mmc_mean_wait(c, lam, mu), rel=1e-9)
    # deterministic service halves the M/M/c wait (Allen–Cunneen's (ca² + cs²)/2)
    assert fq.mean_wait(c, lam, mu, 1.0, 0.0) == pytest.approx(queueing.mmc_mean_wait(c, lam, mu) / 2, rel=1e-9)


@pytest.mark.parametrize("c,k,rho", [(1, 5, 0.9), (4, 12, 1.0), (8, 12, 1.3), (4, 100, 0.5)])
def test_finite_queue_blocking_matches_mmck(c, k, rho):
    lam, mu = rho * c, 1.0
    assert fq.finite_queue_blocking(c, lam / mu, k - c) == pytest.approx(queueing.mmck_blocking(c, k, lam, mu), rel=1e-6, abs=1e-12)


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
    pw, theta = float(fq.erlang_c(c, lam / mu)), float(fq.wait_tail_rate(c, lam, mu, 1.0, 1.0))
    cdf = model.response_cdf(comps, pw, theta)
    grid = model.grid
    mean = np.sum(np.diff(cdf) * 0.5 * (grid[1:] + grid[:-1]))
    assert mean == pytest.approx(queueing.mmc_mean_response(c, lam, mu), rel=0.02)
    # without the wait the same CDF is the service time alone: waiting must move the tail
    assert model.quantiles(cdf)[1] > 1.3 * model.quantiles(model.service()[3])[1]
