"""The fluid engine's monitoring computed for all due replications at once gives each controller exactly the
windows it would get one replication at a time (`Ledger.window`), and so the same decisions.

Scenarios: the Mann-Whitney judge (sub-window samples; against the stable fleet or a canary baseline), the
threshold judge (windows, baseline ratios, a dry-run metric) and the SLO burn-rate alert, with a slow release
that saturates its pools so that windows mix per-second CDFs of slow pools (`Ledger.qslow`) too. About 4 s;
the two Monte Carlo benchmarks at a small size, as the README runs them, about 8 s more.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simlab.engines.fluid.engine import Lockstep
from simlab.engines.fluid.monitoring import Monitoring, Windows
from tests.helpers.scenarios import scenario

MW = {"judge": {"kind": "mann_whitney", "samples": 5}, "interval": "30s", "failure_limit": 2, "min_requests": 30,
      "metrics": [{"metric": "error_rate", "direction": "increase"}, {"metric": "latency_p99", "direction": "increase"},
                  {"metric": "latency_mean", "direction": "either", "tolerance": 0.1}]}
THRESHOLD = {"interval": "20s", "failure_limit": 3, "min_requests": 30,
             "metrics": [{"metric": "error_rate", "max_ratio_to_baseline": 2.0}, {"metric": "latency_mean", "max": "300ms"},
                         {"metric": "latency_p50", "max_ratio_to_baseline": 1.5},
                         {"metric": "latency_p99", "max": "1s", "dry_run": True}]}
SLOW_AND_FAILING = [{"kind": "latency", "multiplier": 4.0}, {"kind": "error_rate", "rate": 0.02}]
CASES = {
    "mann_whitney": {"analysis": MW},
    "threshold": {"analysis": THRESHOLD, "rollback.automatic": False},  # the alert fires before the on-call acts
    "mann_whitney_baseline": {"analysis": MW, "strategy.baseline": True},  # the canary against its baseline's windows
}


def _lockstep(case: str, monitoring: type[Monitoring]) -> Lockstep:
    s = scenario("canary", duration="9m", **{"traffic.rps": 400, "release.defects": SLOW_AND_FAILING,
                                              "release.bad_probability": 0.5}, **CASES[case])
    sim = Lockstep(s, list(range(40, 46)))
    sim.monitoring = monitoring(sim.ledger, s.monitoring.window)
    for view in sim.views:
        view.monitoring = sim.monitoring
    return sim.run()


class Compared(Monitoring):
    """Checks every row of every batch of windows against the one-replication window, as it is computed."""

    def __init__(self, ledger, window_len):
        super().__init__(ledger, window_len)
        self.compared, self.with_latency, self.with_slow_pools, self.keys = 0, 0, 0, set()

    def window(self, r, version, start, end):
        key = (version, max(0, int(start)), max(0, int(end)))
        fresh = key not in self._windows and self.place[r] >= 0
        got = super().window(r, version, start, end)
        if fresh:
            batch = self._windows[key]
            for i, row in enumerate(self.rows.tolist()):
                alone = self.ledger.window(row, (version,), start, end, quantiles=True)
                assert batch.stats(i) == alone, (row, key)
                self.compared += 1
                self.with_latency += alone.latency_p99 is not None
                self.with_slow_pools += any(version in (v for v, _ in self.ledger.qslow[row].get(sec, ()))
                                            for sec in range(key[1], key[2]))
            self.keys.add(key[2] - key[1])
        return got


class OneAtATime(Monitoring):
    """Every window computed for its replication alone (`Ledger.window`), as before batching."""

    def open(self, rows) -> None:
        pass  # no replication in a batch: each asks Ledger.window


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_windows_equal_one_replication_windows_and_make_the_same_decisions(case):
    batched = _lockstep(case, Compared)
    m = batched.monitoring
    assert m.compared > 100 and m.with_latency > 100 and m.with_slow_pools > 10
    assert m.keys == ({6} if case.startswith("mann_whitney") else {30})  # five sub-windows of the 30 s window, or the window
    alone = _lockstep(case, OneAtATime)
    events = [[(e.time, e.kind, e.detail) for e in c.events] for c in batched.controllers]
    assert events == [[(e.time, e.kind, e.detail) for e in c.events] for c in alone.controllers]
    assert [batched.summary(r) for r in range(batched.R)] == [alone.summary(r) for r in range(alone.R)]
    kinds = {e[1] for run in events for e in run}
    assert {"analysis", "rollback_started"} <= kinds
    if case == "threshold":
        assert "alert" in kinds
    if case.endswith("baseline"):
        assert {e[2].get("against") for run in events for e in run if e[1] == "analysis"} == {"baseline"}


def test_windows_mixing_many_effect_states_add_in_the_same_order_as_one_replication():
    """Windows whose successes spread over every effect state (a mixture of several CDFs, where a matrix-matrix
    product would add in another order than a replication's vector-matrix product) and random latency sums."""
    sim = _lockstep("threshold", Monitoring)
    led, rng = sim.ledger, np.random.default_rng(7)
    keys = min(led.K, len(led.plane.k_cdf))
    assert keys >= 5
    steps = rng.integers(0, 400, size=led.qcum.shape).astype(float)
    steps[..., keys:] = 0
    led.qcum[:] = np.cumsum(steps, axis=1)  # whole numbers rising second by second, as the ledger keeps them
    led.qsum[:] = rng.random(led.qsum.shape) * 50.0
    rows = np.arange(sim.R)
    for version in (0, 1):
        for a, b in ((0, 30), (5, 11), (17, led.Lq - 1)):
            batch = Windows(led, rows, version, a, b)
            for i, r in enumerate(rows.tolist()):
                assert batch.stats(i) == led.window(r, (version,), a, b, quantiles=True), (version, a, b, r)


@pytest.mark.parametrize("script", ["reference_monte_carlo.py", "monte_carlo_scale.py"])
def test_the_monte_carlo_benchmarks_run_as_the_readme_runs_them(script):
    """benchmarks/reference_monte_carlo.py and monte_carlo_scale.py (the local pool) at 8 runs of 6 minutes."""
    done = subprocess.run([sys.executable, f"benchmarks/{script}", "--runs", "8", "--hours", "0.1"],
                          cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["runs"] == 8 and out["wall_s"] >= 0
    assert out["cpu_s" if script.startswith("reference") else "cpu_s_all_processes"] > 0
    if script.startswith("monte"):
        assert out["peak_rss_mb_all_processes"] > 50
