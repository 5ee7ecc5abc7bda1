"""Least-outstanding dispatch in the fluid engine (simlab/engines/fluid/shortest_queue.py): its chain against
exact M/M/c results where it must reduce to them, and against the request engine's least-outstanding balancer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simlab import queueing as q
from simlab.engines.fluid import shortest_queue as sq
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
