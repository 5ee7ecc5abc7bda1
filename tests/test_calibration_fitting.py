"""Calibration's fitting on known numbers (no staging): each family told apart through a measured overhead, what
is written (the service time plus the users' way to it), and a recording's round trip fitted as a shift."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.calibration.fitting import fit_service_time
from simlab.scenario.distributions import LogNormal

TRUE_MU, TRUE_SIGMA = LogNormal(dist="lognormal", mean=0.020, p99=0.080).mu_sigma()


@pytest.mark.parametrize("family", ["lognormal", "exponential", "gamma", "constant"])
def test_each_family_is_told_apart_through_a_measured_overhead(family):
    """Service times of a known family plus an overhead drawn like a busy machine's; 1,000 each, 3 seeds."""
    draws = {
        "lognormal": lambda rng: rng.lognormal(TRUE_MU, TRUE_SIGMA, 1000),
        "exponential": lambda rng: rng.exponential(0.010, 1000),
        "gamma": lambda rng: rng.gamma(3.0, 0.020 / 3, 1000),
        "constant": lambda rng: np.full(1000, 0.020),
    }
    overhead = lambda rng, n: 0.0004 + rng.gamma(2.0, 0.0003, n)  # noqa: E731  mean 1 ms, a tail
    for seed in range(3):
        rng = np.random.default_rng(seed)
        fit = fit_service_time(draws[family](rng) + overhead(rng, 1000), overhead(rng, 300))
        assert fit.chosen == family, (seed, fit.why)
        mean = {"lognormal": 0.020, "exponential": 0.010, "gamma": 0.020, "constant": 0.020}[family]
        assert abs(fit.best.mean / mean - 1) < 0.1, (seed, fit.best.mean)
        written = fit.spec["dist"]
        assert written == {"gamma": "empirical"}.get(family, family)  # the scenario writes a gamma as quantiles


def test_what_is_written_is_the_fitted_service_time_plus_the_users_way_to_it():
    """Exact on known numbers: a constant 2 ms way adds 2 ms to the mean and the p99; a spread one gives the p99 of
    the sum (against a million draws of the fitted law plus the overhead); a gamma's 150 quantiles hold it at
    the 149th (the 0.99 quantile itself)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    overhead = 0.0004 + rng.gamma(2.0, 0.0003, 300)
    x = rng.lognormal(TRUE_MU, TRUE_SIGMA, 1000) + rng.choice(overhead, 1000)
    as_fitted = fit_service_time(x, overhead)
    fit = fit_service_time(x, overhead, np.full(50, 0.002))
    assert fit.best == as_fitted.best and fit.path_mean == pytest.approx(0.002)
    assert fit.seen_mean == pytest.approx(fit.best.mean + 0.002) and fit.seen_p99 == pytest.approx(fit.best.p99 + 0.002)
    assert fit.spec == {"dist": "lognormal", "mean": f"{fit.seen_mean * 1e3:.3f}ms", "p99": f"{fit.seen_p99 * 1e3:.3f}ms"}
    path = 0.001 + rng.exponential(0.002, 400)
    fit = fit_service_time(x, overhead, path)
    p = fit.best.params
    drawn = stats.lognorm(p["sigma"], scale=math.exp(p["mu"])).rvs(1_000_000, random_state=rng)
    # the path overheads enter as their 48 quantiles: about 0.1 ms off the raw draws' p99 at most
    assert fit.seen_p99 == pytest.approx(np.percentile(drawn + rng.choice(path, len(drawn)), 99), rel=0.005)
    g = rng.gamma(3.0, 0.020 / 3, 2000)
    fit = fit_service_time(g + rng.choice(overhead, 2000), overhead, path)
    assert fit.chosen == "gamma" and len(fit.spec["samples"]) == 150
    assert fit.spec["samples"][148] == pytest.approx(fit.seen_p99, rel=1e-5)


def test_a_recordings_round_trip_is_fitted_as_a_shift_so_the_tail_is_kept():
    """Log-normal service times (mean 20 ms, p99 80 ms) plus a round trip of 2.5 ms on average, no overhead
    measured, 3,000 latencies, 5 seeds. A plain log-normal fit thins the tail (p99 9% short here); with the shift
    the written p99 is within 4% of the sum's on average (the mean of 5 has a standard error of about 1.2%)."""
    round_trip = lambda rng, n: 0.0015 + rng.gamma(2.0, 0.0005, n)  # noqa: E731
    rng = np.random.default_rng(99)
    truth = np.percentile(rng.lognormal(TRUE_MU, TRUE_SIGMA, 1_000_000) + round_trip(rng, 1_000_000), 99)
    errors = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fit = fit_service_time(rng.lognormal(TRUE_MU, TRUE_SIGMA, 3000) + round_trip(rng, 3000))
        assert fit.chosen == "lognormal" and 0.001 < fit.best.params["shift_s"] < 0.003, fit.best.params
        assert fit.spec["dist"] == "lognormal" and fit.seen_p99 == pytest.approx(fit.best.p99)
        errors.append(fit.seen_p99 / truth - 1)
    assert abs(np.mean(errors)) < 0.04, errors
