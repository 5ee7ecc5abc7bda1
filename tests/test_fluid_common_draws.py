"""The fluid data plane's common random numbers (simlab/engines/fluid/common_draws.py).

The counts keep the binomial law (an inverse CDF at uniforms), are monotone in n and p, come out the
same in Python numbers as in arrays, and read each replication's uniforms by its seed, pool rank,
second and slot whatever the batch, the block of ticks or the order of asking. In the engine, a run
and its no-release twin then share their noise: the bad requests a release added are no longer the
difference of two independent counts.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simlab.engines.fluid.common_draws import (
    CHUNK, MAX_MEAN, Uniforms, binomial, binomial_one, ranks, ranks_one, slot, slots,
)
from simlab.experiment.twins import run_with_twins
from tests.helpers.scenarios import scenario

CASES = [(1, 0.3), (7, 0.02), (50, 0.5), (200, 0.001), (1000, 0.02), (60, 0.45), (3, 0.97), (40_000, 0.0007)]


@pytest.mark.parametrize("n,p", CASES)
def test_counts_at_evenly_spread_uniforms_have_the_binomial_law(n, p):
    """At M uniforms spread evenly over (0, 1) the inverse CDF gives count k to within one of M·pmf(k) times."""
    M = 200_000
    u = (np.arange(M) + 0.5) / M
    counts = binomial(np.random.default_rng(0), np.full(M, n), np.array(p), u)
    got = np.bincount(counts, minlength=n + 1)[:n + 1]
    want = stats.binom.pmf(np.arange(n + 1), n, p) * M
    assert np.abs(got - want).max() <= 1.0 + 1e-6 * M


def test_above_the_largest_mean_counts_are_numpys_draws_with_the_binomial_law():
    n, p = 10_000, 0.01  # mean 100 > MAX_MEAN
    assert n * p > MAX_MEAN
    counts = binomial(np.random.default_rng(3), np.full(20_000, n), np.array(p), np.zeros(20_000))
    assert stats.ttest_1samp(counts, n * p).pvalue > 0.001
    assert abs(counts.var(ddof=1) / (n * p * (1 - p)) - 1.0) < 0.05


def test_counts_grow_with_n_and_with_p_at_one_uniform():
    u = np.random.default_rng(1).random(2_000)
    rng = np.random.default_rng(0)
    for p in (0.001, 0.01, 0.05):
        by_n = np.stack([binomial(rng, np.full(u.size, n), np.array(p), u) for n in range(0, 400, 7)])
        assert (np.diff(by_n, axis=0) >= 0).all()
    ps = np.linspace(0.0, 0.07, 40)
    by_p = np.stack([binomial(rng, np.full(u.size, 300), np.array(p), u) for p in ps])
    assert (np.diff(by_p, axis=0) >= 0).all()


def test_one_element_in_python_numbers_is_the_array_count():
    g = np.random.default_rng(7)
    n = g.integers(0, 3_000, 5_000)
    p = np.where(g.random(5_000) < 0.1, 0.0, g.random(5_000) ** 4)
    u = g.random(5_000)
    for i in range(5_000):
        a = binomial(np.random.default_rng(i), n[i:i + 1], p[i:i + 1], u[i:i + 1])
        b = binomial_one(np.random.default_rng(i), int(n[i]), float(p[i]), float(u[i]))
        assert int(a[0]) == b, (n[i], p[i], u[i])


def test_a_replications_uniforms_depend_on_its_seed_alone():
    S = slots(1)
    alone, batch = Uniforms([11], S), Uniforms([5, 11, 9], S)
    for t in (0, 3, CHUNK - 1, CHUNK, 5 * CHUNK + 17):
        for s in (slot(0, 3), slot(1, 2)):
            assert alone.tick(t, 0, s)[0] == batch.tick(t, 0, s)[1]


def test_skipped_chunks_are_skipped_and_a_block_reads_what_ticks_read():
    S = slots(0)
    every, late = Uniforms([2, 3], S), Uniforms([2, 3], S)
    ticks = np.stack([every.tick(t, 1, slot(0, 2)) for t in range(3 * CHUNK - 20, 3 * CHUNK + 30)], axis=1)
    assert np.array_equal(late.block(3 * CHUNK - 20, 50, 1, slot(0, 2)), ticks)  # its first chunks never drawn
    fresh = Uniforms([2, 3], S)
    assert not np.array_equal(fresh.tick(5, 0, 1), fresh.tick(5, 1, 1))  # ranks read streams of their own


def test_replications_of_one_batch_read_their_own_ranks():
    u = Uniforms([4, 8, 15], slots(0))
    mixed = u.tick(40, np.array([0, 1, 0]), slot(0, 3))
    assert mixed[0] == u.tick(40, 0, slot(0, 3))[0]
    assert mixed[1] == u.tick(40, 1, slot(0, 3))[1]
    assert mixed[2] == u.tick(40, 0, slot(0, 3))[2]


def test_pools_are_ranked_by_their_share_ties_by_version():
    share = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    assert ranks(share).tolist() == [[0, 1, 2], [1, 0, 2], [0, 1, 2], [1, 2, 0]]
    assert [ranks_one(row) for row in share.tolist()] == ranks(share).tolist()


# -- in the engine: a run and its no-release twin share their noise -------------------------------------------
BACKGROUND = [{"kind": "dependency", "at": "0s", "duration": "20m", "error_rate": 0.002}]  # ~360 errors a run


def _added(strategy: str, defects) -> tuple[np.ndarray, np.ndarray]:
    s = scenario(strategy, **{"failures": BACKGROUND, "release.defects": defects})
    rows = run_with_twins([s], 40, 0, "fluid", "serial")[0]
    return (np.array([r["added_bad"] for r in rows], float), np.array([r["no_release_bad"] for r in rows], float))


@pytest.mark.parametrize("strategy", ["canary", "blue_green"])
def test_a_good_release_adds_little_noise_to_what_its_twin_serves(strategy):
    """Before the common draws, a good canary's added bad requests varied 1.5x as much as the twin's own count
    (the two were independent); now the release's own noise is all that is left."""
    added, twin = _added(strategy, None)
    assert added.std(ddof=1) < 0.5 * twin.std(ddof=1)
    assert abs(added.mean()) < 3 * added.std(ddof=1) / np.sqrt(added.size) + 1.0


def test_a_bad_release_rolled_back_adds_its_harm_not_its_twins_noise():
    added, twin = _added("canary", [{"kind": "error_rate", "rate": 0.2}])
    assert added.mean() > 100
    assert added.std(ddof=1) < 0.8 * twin.std(ddof=1)  # 1.57x before
