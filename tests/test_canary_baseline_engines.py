"""The canary baseline on both engines: the share each version is routed, and what comparing with the baseline
instead of the warm stable fleet does to a good release's false rollbacks.

About 15 s: 2 x 100 fluid runs and 2 x 20 request-engine runs of six minutes, and two routing runs.
"""
from __future__ import annotations

import pytest

from simlab.experiment.aggregate import wilson
from simlab.scenario import validate_scenario

Z99 = 2.576


def routed(engine: str, seeds) -> list[tuple[int, int, int]]:
    """Requests served by the old, new and baseline versions in the last minute of a canary held at 20% with a
    20% baseline, one row per seed."""
    s = validate_scenario({
        "name": "routing", "duration": "3m", "traffic": {"rps": 200}, "release": {"at": "10s"},
        "fleet": {"instances": 10, "service_time": "20ms", "startup": "5s"},
        "strategy": {"kind": "canary", "baseline": True, "steps": [{"weight": 20, "bake": "1h"}, {"weight": 100}]},
    })
    a, b = 120.0, 180.0
    if engine == "request":
        from simlab.engines.request.engine import RequestEngine

        rows = []
        for seed in seeds:
            e = RequestEngine(s, seed)
            e.run()
            rows.append(tuple(e.rec.window((v,), a, b, quantiles=False).requests for v in range(3)))
        return rows
    from simlab.engines.fluid.engine import Lockstep

    sim = Lockstep(s, list(seeds)).run()
    return [tuple(sim.ledger.window(r, (v,), a, b, quantiles=False).requests for v in range(3)) for r in range(sim.R)]


@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_the_baseline_and_the_canary_each_get_the_step_weight(engine):
    from scipy.stats import binomtest

    for old, new, baseline in routed(engine, range(3)):
        n = old + new + baseline
        assert n > 10_000
        for count, share in ((new, 0.2), (baseline, 0.2), (old, 0.6)):
            assert binomtest(count, n, share).pvalue > 1e-3, (engine, count, n, share)


def warm_canary(baseline: bool):
    """A good release whose fresh instances time out more while they warm up (service time x1.4 at first, for 4
    minutes; timeouts are errors), judged by mann_whitney on the error rate: against the warm stable fleet the
    canary looks worse than it is; against a baseline started with it, not."""
    return validate_scenario({
        "name": "warm-canary", "duration": "6m",
        "fleet": {"instances": 10, "service_time": {"dist": "exponential", "mean": "50ms"}, "startup": "10s",
                  "warmup": {"duration": "4m", "slowdown": 1.4}},
        "traffic": {"rps": 100, "timeout": "250ms"}, "release": {"at": "30s"},
        "monitoring": {"scrape_interval": "5s", "window": "1m", "delay": "0s"},
        "strategy": {"kind": "canary", "baseline": baseline, "steps": [{"weight": 20, "bake": "4m"}, {"weight": 100}]},
        "analysis": {"interval": "1m", "failure_limit": 2, "min_requests": 50,
                     "judge": {"kind": "mann_whitney", "samples": 6},
                     "metrics": [{"metric": "error_rate", "tolerance": 0.5}]},
    })


def test_a_baseline_removes_the_false_rollbacks_of_comparing_fresh_instances_with_warm_ones():
    from simlab import simulate
    from simlab.engines.fluid.engine import simulate_batch

    fluid, runs = {}, 100
    for baseline in (False, True):
        df = simulate_batch(warm_canary(baseline), range(runs))
        assert not df["bad_release"].any()
        fluid[baseline] = wilson(int((df["outcome"] == "rolled_back").sum()), runs)
        if baseline:  # the baseline's instances ran and cost: 4 of them (2 + 2 x 20% of 10) for the step
            assert (df["instance_seconds"] > simulate_batch(warm_canary(False), [0])["instance_seconds"][0]).all()
    biased, fair = fluid[False], fluid[True]
    assert biased[1] > 0.5 and fair[2] < 0.1, (biased, fair)  # 95% intervals far apart
    # The request engine, every request an event, agrees within its own 99% intervals.
    for baseline in (False, True):
        outcomes = [simulate(warm_canary(baseline), seed=i, engine="request").summary["outcome"] for i in range(20)]
        _, lo, hi = wilson(outcomes.count("rolled_back"), 20, Z99)
        assert lo - 1e-9 <= fluid[baseline][0] <= hi + 1e-9, (baseline, outcomes.count("rolled_back"), fluid[baseline])
