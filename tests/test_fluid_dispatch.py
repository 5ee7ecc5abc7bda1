"""Dispatch in the fluid engine: least-outstanding's chain (shortest_queue.py), round robin's simulated E_n/G/c
queue (round_robin.py) and power-of-two's refined mean field (two_choices.py), each against exact results where
it must reduce to them (M/M/c, E_n/M/c, the supermarket model, exact chains of two instances) and against the
request engine."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simlab import queueing as q
from simlab.engines.fluid import round_robin as rr
from simlab.engines.fluid import shortest_queue as sq
from simlab.engines.fluid import two_choices as tc
from simlab.experiment.fidelity import Row, _stats, station
from simlab.scenario import validate_scenario
from simlab.simulation import simulate


@pytest.mark.parametrize("c", [1, 2, 4])
@pytest.mark.parametrize("rho", [0.3, 0.7, 0.95])
def test_one_instance_is_exactly_m_m_c(c, rho):
    pw, wait = sq._chain(1, c, rho)  # mean wait in units of 1/μ
    assert pw == pytest.approx(q.erlang_c(c, rho * c), rel=1e-9)
    assert wait == pytest.approx(q.mmc_mean_wait(c, rho * c, 1.0), rel=1e-9)


def test_factors_are_one_where_dispatch_cannot_matter():
    rho = np.array([0.5, 0.9, 1.0, 1.5])
    for n, c in ((1, 8), (200, 4)):  # one instance; a pool too large to model (its waits are negligible)
        share, longer = sq.factors(n, c, rho)
        assert np.all(share == 1.0) and np.all(longer == 1.0)
    share, longer = sq.factors(4, 2, rho)
    assert np.all(share[:2] < 1.0) and np.all(longer[:2] > 1.0)  # waits less often than one queue, and longer
    assert np.all(share[2:] == 1.0) and np.all(longer[2:] == 1.0)  # saturated: dispatch balances every queue


@pytest.mark.slow
@pytest.mark.parametrize("instances,workers,rho", [(4, 2, 0.7), (8, 1, 0.8)])
def test_the_chain_mean_wait_matches_the_request_engine_within_3_percent(instances, workers, rho):
    mean = 0.04  # exponential service, 40 ms
    rps = rho * instances * workers / mean
    spec = station(instances=instances, workers=workers, queue_limit=100_000, rps=rps, duration=400,
                   service={"dist": "exponential", "mean": mean}, balancer="least_outstanding")
    scenario = validate_scenario(spec)
    waits = [simulate(scenario, seed=seed, engine="request").summary["latency_mean_ms"] - 1000 * mean
             for seed in range(10)]
    truth, se = _stats(waits)
    chain = 1000 * mean * sq._chain(instances, workers, rho)[1]
    pooled = 1000 * q.mmc_mean_wait(instances * workers, rps, 1 / mean)
    row = Row(case="jsq", regime="steady", figure="wait mean ms", truth=truth, truth_se=se, truth_source="request",
              request=truth, fluid=chain, fluid_se=0.0, tolerance=0.03, absolute=False)
    assert row.passed, f"request {truth:.3f} ± {1.96 * se:.3f} ms, chain {chain:.3f} ms, pooled {pooled:.3f} ms"
    assert abs(pooled - truth) > abs(chain - truth) and not math.isclose(pooled, chain, rel_tol=0.05)


# -- round robin's E_n/G/c queue (round_robin.py) ------------------------------------------------------------------
def _erlang_arrivals_exponential_service(n: int, c: int, rho: float, levels: int = 400) -> tuple[float, float]:
    """E_n/M/c exactly: P(wait) and the mean wait (units of 1/μ) from the chain on (arrival phase, number in
    system), seen by arrivals (the phase-n completions)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    lam = rho * c
    size = n * (levels + 1)
    here = np.arange(size)
    m, k = np.divmod(here, n)
    targets = [(k < n - 1, here + 1, np.full(size, n * lam)),  # the next arrival phase
               (k == n - 1, np.minimum(m + 1, levels) * n, np.full(size, n * lam)),  # an arrival
               (m > 0, here - n, np.minimum(m, c).astype(float))]  # a completion
    rows = np.concatenate([here[w] for w, _, _ in targets])
    cols = np.concatenate([t[w] for w, t, _ in targets])
    vals = np.concatenate([r[w] for w, _, r in targets])
    rate = sp.csr_matrix((vals, (rows, cols)), shape=(size, size))
    rate.setdiag(0.0)
    out = np.asarray(rate.sum(axis=1)).ravel()
    a = (rate.T - sp.diags(out)).tolil()
    a[0, :] = 1.0
    b = np.zeros(size)
    b[0] = 1.0
    p = spsolve(a.tocsc(), b).reshape(levels + 1, n)[:, n - 1]
    p /= p.sum()
    found = np.arange(levels + 1)
    return float(p[found >= c].sum()), float((p * np.maximum(found - c + 1, 0)).sum() / c)


EXPONENTIAL_QUANTILE = lambda u: -np.log1p(-u)  # noqa: E731


@pytest.mark.parametrize("n,c", [(1, 2), (4, 2), (8, 1)])
def test_the_simulated_erlang_queue_is_exact_for_exponential_service(n, c):
    """n = 1 is M/M/c (Erlang C); n > 1 the chain on (arrival phase, number in system): within 1.96 standard
    errors of the simulation, plus the float32 free times' 0.5 %."""
    loads = np.array([0.5, 0.8, 0.9])
    start = np.array([q.mmc_mean_wait(c, r * c, 1.0) * (1.0 / n + 1.0) / 2.0 for r in loads])  # as wait_law starts
    sim = rr.simulate(n, c, EXPONENTIAL_QUANTILE, loads=loads, chains=500, steps=rr.STEPS, start=start)
    for i, rho in enumerate(loads):
        pw, wait = ((q.erlang_c(c, rho * c), q.mmc_mean_wait(c, rho * c, 1.0)) if n == 1
                    else _erlang_arrivals_exponential_service(n, c, float(rho)))
        assert abs(sim["wait"][i] - wait) <= 1.96 * sim["se"][i] + 0.005 * wait, (rho, sim["wait"][i], wait)
        assert sim["pw"][i] == pytest.approx(pw, rel=0.03)
        assert sim["scv"][i] == pytest.approx(1.0, abs=0.06)  # the wait given a wait is exponential (GI/M/c)


def test_round_robin_wait_law_reads_its_grid_and_interpolates_between():
    from scipy.stats import lognorm

    sigma, mean = 0.845, 0.04
    survival = lambda x: lognorm.sf(x, sigma, scale=mean * math.exp(-sigma**2 / 2))  # noqa: E731
    cs2 = math.expm1(sigma**2)
    rho = np.array([0.5, 0.8, 0.99, 1.0])
    law = (None, survival, mean)  # no name: the law's key is its CDF
    pw4, wait4, scv4 = rr.wait_law(4, 2, cs2, law, rho)
    start = rr._erlang_c(2, np.array([0.8])) / (2 * 0.2) * (0.25 + cs2) / 2  # Allen–Cunneen, as wait_law starts
    sim = rr.simulate(4, 2, rr._quantiles(rr._LAWS[rr._law_key(survival, mean)]), loads=np.array([0.8]),
                      chains=500, steps=rr.STEPS, seed=7, start=start)  # another seed: an independent estimate
    assert abs(wait4[1] - sim["wait"][0]) <= 1.96 * math.hypot(sim["se"][0], 0.01 * wait4[1])
    assert np.isnan(wait4[3]) and pw4[2] > 0.95  # heavy traffic: P(wait) → 1
    # the grid case of the fidelity grid: the lognormal waits like exponential service, not 3.5 % longer
    exp_pw, exp_wait = _erlang_arrivals_exponential_service(4, 2, 0.8)
    assert wait4[1] == pytest.approx(1.02 * exp_wait, rel=0.02) and scv4[1] > 1.15
    _, wait6, _ = rr.wait_law(6, 2, cs2, law, rho)
    _, wait8, _ = rr.wait_law(8, 2, cs2, law, rho)
    assert wait8[1] < wait6[1] < wait4[1]  # smoother arrivals wait less; 6 lies between its grid neighbours
    # a law is known by its key: a named one (a leak's slower copy) shares the simulation, bit for bit
    named = rr.wait_law(4, 2, cs2, (("lognormal", sigma), survival, mean), rho)
    slower = rr.wait_law(4, 2, cs2, (("lognormal", sigma), lambda x: survival(x / 3), 3 * mean), rho)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(named, slower))
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(named, (pw4, wait4, scv4)))


# -- power of two choices (two_choices.py) -------------------------------------------------------------------------
def _power_of_two_exact(n: int, c: int, rho: float, levels: int) -> float:
    """Mean wait (units of 1/μ) of power-of-two over n instances, exactly: the chain on sorted outstanding counts."""
    import itertools

    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    states = list(itertools.combinations_with_replacement(range(levels + 1), n))
    index = {s: i for i, s in enumerate(states)}
    rows, cols, vals, wait = [], [], [], np.zeros(len(states))
    for i, s in enumerate(states):
        for a, b in itertools.product(range(n), repeat=2):  # two draws with replacement; the fewer outstanding
            j = a if s[a] <= s[b] else b
            wait[i] += max(s[j] - c + 1, 0) / c / n**2
            if s[j] < levels:
                rows.append(i), cols.append(index[tuple(sorted(s[:j] + (s[j] + 1,) + s[j + 1:]))])
                vals.append(rho * n * c / n**2)
        for j in range(n):
            if s[j]:
                rows.append(i), cols.append(index[tuple(sorted(s[:j] + (s[j] - 1,) + s[j + 1:]))])
                vals.append(float(min(s[j], c)))
    size = len(states)
    rate = sp.csr_matrix((vals, (rows, cols)), shape=(size, size))
    out = np.asarray(rate.sum(axis=1)).ravel()
    a = (rate.T - sp.diags(out)).tolil()
    a[0, :] = 1.0
    b = np.zeros(size)
    b[0] = 1.0
    return float(spsolve(a.tocsc(), b) @ wait)


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_single_server_mean_field_is_the_supermarket_model(rho):
    s = tc.levels(1, rho)
    k = np.arange(1, len(s) + 1)
    assert np.allclose(s, rho ** (2.0**k - 1.0), rtol=1e-9, atol=1e-15)  # s_k = ρ^(2^k − 1)
    assert tc.refined(0, 1, rho)["wait"] == pytest.approx(float(np.sum(s[1:])) / rho, rel=1e-9)


@pytest.mark.parametrize("c", [2, 4, 8])
def test_mean_field_conserves_work_and_the_refinement_vanishes_with_many_instances(c):
    for rho in (0.3, 0.8, 0.97):
        s = tc.fixed_point(c, np.array([rho]))[:, 0]
        assert s[0] == pytest.approx(1.0, abs=1e-9) and s[1:].sum() == pytest.approx(rho * c, rel=1e-9)
        big, mf = tc.refined(10**9, c, rho), tc.refined(0, c, rho)
        assert big["wait"] == pytest.approx(mf["wait"], rel=1e-6) and big["pw"] == pytest.approx(mf["pw"], rel=1e-6)
        if rho > 0.5:
            assert tc.refined(8, c, rho)["wait"] > mf["wait"]  # a finite fleet waits longer


@pytest.mark.parametrize("n,c,rho,within", [(2, 1, 0.8, 0.03), (2, 1, 0.95, 0.03), (2, 2, 0.8, 0.03),
                                            (2, 2, 0.95, 0.035)])
def test_power_of_two_wait_against_the_exact_chain(n, c, rho, within):
    """Two instances, where the refined mean field alone is 14–47 % short: with its error at one instance carried
    as a 1/n² term and blended with the pooled queue, within 3 % (3.1 % at 2 × 2 workers, ρ 0.95)."""
    exact = _power_of_two_exact(n, c, rho, levels=90 if rho > 0.9 else 40)
    pooled = q.mmc_mean_wait(n * c, rho * n * c, 1.0)
    law = tc.station_law(n, c, np.array([rho]), np.array([q.erlang_c(n * c, rho * n * c)]), np.array([pooled]),
                         np.array([1.0]))
    assert law["wait"][0] == pytest.approx(exact, rel=within)
    assert tc.refined(n, c, rho)["wait"] < 0.9 * exact  # what the blend is for
