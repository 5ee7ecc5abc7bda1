"""Distributions know their analytic moments; samples agree with them. Seeded streams are per component.

Samples are large (200,000-400,000) and seeded; each tolerance is about five
standard errors of the statistic it bounds.
"""
import math

import numpy as np
import pytest

from simlab import dists
from simlab.rng import Streams, stream
from simlab.scenario.distributions import Constant, Empirical, Exponential, LogNormal

N = 200_000


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_a_constant_has_no_variance_and_always_draws_its_value():
    d = dists.from_spec(Constant(dist="constant", value="40ms"))
    assert (d.mean, d.variance, d.scv, d.quantile(0.99)) == (0.04, 0.0, 0.0, 0.04)
    assert np.all(d.sample(rng(), 1000) == 0.04)


def test_exponential_moments_and_quantile():
    d = dists.from_spec(Exponential(dist="exponential", mean="50ms"))
    assert (d.mean, d.variance, d.scv) == pytest.approx((0.05, 0.0025, 1.0))
    x = d.sample(rng(), N)
    assert x.mean() == pytest.approx(d.mean, rel=5 / math.sqrt(N))  # SE of the mean: mean / sqrt(N)
    assert x.var() == pytest.approx(d.variance, rel=5 * math.sqrt(8 / N))  # kurtosis 9
    assert d.quantile(0.99) == pytest.approx(-0.05 * math.log(0.01))
    assert np.mean(x <= d.quantile(0.99)) == pytest.approx(0.99, abs=5 * math.sqrt(0.99 * 0.01 / N))


def lognormal_kurtosis(sigma: float) -> float:
    s2 = sigma**2
    return math.exp(4 * s2) + 2 * math.exp(3 * s2) + 3 * math.exp(2 * s2) - 3


def test_lognormal_from_mean_and_p99():
    spec = LogNormal(dist="lognormal", mean="40ms", p99="200ms")
    d = dists.from_spec(spec)
    assert d.mean == pytest.approx(0.04)
    assert d.quantile(0.99) == pytest.approx(0.2)
    assert d.variance == pytest.approx((math.exp(d.sigma**2) - 1) * d.mean**2)
    n = 400_000
    x = d.sample(rng(2), n)
    sd = math.sqrt(d.variance)
    assert x.mean() == pytest.approx(d.mean, abs=5 * sd / math.sqrt(n))
    assert x.var() == pytest.approx(d.variance, rel=5 * math.sqrt((lognormal_kurtosis(d.sigma) - 1) / n))
    assert np.quantile(x, 0.99) == pytest.approx(0.2, rel=0.02)
    assert np.mean(x <= 0.2) == pytest.approx(0.99, abs=5 * math.sqrt(0.99 * 0.01 / n))


def test_lognormal_takes_the_lighter_of_the_two_tails_that_fit():
    mu, sigma = LogNormal(dist="lognormal", mean=1.0, p99=5.0).mu_sigma()
    z = 2.3263478740408408
    assert sigma < z  # the other root, z + sqrt(...), also gives mean 1 and p99 5
    assert math.exp(mu + sigma**2 / 2) == pytest.approx(1.0) and math.exp(mu + z * sigma) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "keys, median, mean, q",
    [
        ({"median": "30ms", "p95": "90ms"}, 0.03, None, (0.95, 0.09)),
        ({"median": "30ms", "p99": "90ms"}, 0.03, None, (0.99, 0.09)),
        ({"median": "30ms", "sigma": 0.5}, 0.03, 0.03 * math.exp(0.125), None),
        ({"mean": "40ms", "sigma": 0.5}, 0.04 * math.exp(-0.125), 0.04, None),
    ],
)
def test_lognormal_parametrisations(keys, median, mean, q):
    d = dists.from_spec(LogNormal(dist="lognormal", **keys))
    assert d.quantile(0.5) == pytest.approx(median)
    if mean is not None:
        assert d.mean == pytest.approx(mean)
    if q is not None:
        assert d.quantile(q[0]) == pytest.approx(q[1])


def test_empirical_resamples_its_values():
    values = (0.01, 0.02, 0.02, 0.05, 0.1)
    d = dists.from_spec(Empirical(dist="empirical", samples=values))
    assert d.mean == pytest.approx(np.mean(values))
    assert d.variance == pytest.approx(np.var(values))  # resampling: the population variance (ddof 0)
    x = d.sample(rng(3), N)
    assert set(np.unique(x)) == set(values)
    assert x.mean() == pytest.approx(d.mean, abs=5 * math.sqrt(d.variance / N))
    assert x.var() == pytest.approx(d.variance, rel=0.03)
    assert np.mean(x == 0.02) == pytest.approx(0.4, abs=5 * math.sqrt(0.24 / N))


def test_samples_come_only_from_the_generator_passed_in():
    d = dists.from_spec(LogNormal(dist="lognormal", mean="40ms", p99="200ms"))
    assert np.array_equal(d.sample(rng(7), 100), d.sample(rng(7), 100))
    assert not np.array_equal(d.sample(rng(7), 100), d.sample(rng(8), 100))


# -- seeded streams -----------------------------------------------------------


def test_same_seed_and_component_give_identical_draws():
    assert np.array_equal(stream(7, "traffic").random(1000), stream(7, "traffic").random(1000))


def test_other_components_and_seeds_give_other_draws():
    base = stream(7, "traffic").random(1000)
    assert not np.array_equal(base, stream(7, "service").random(1000))
    assert not np.array_equal(base, stream(8, "traffic").random(1000))


def test_streams_of_different_components_are_uncorrelated():
    n = 100_000
    a, b = stream(7, "traffic").random(n), stream(7, "service").random(n)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)
    # neither stream is a shifted copy of the other
    assert not np.intersect1d(a[:1000], b).size


def test_a_component_draws_the_same_whatever_other_components_exist():
    alone = Streams(7)["failures"].random(100)
    crowded = Streams(7)
    crowded["traffic"].random(1000)
    crowded["defects"].random(1000)
    assert np.array_equal(crowded["failures"].random(100), alone)
    assert crowded["failures"] is crowded["failures"]  # one Generator per component per run
