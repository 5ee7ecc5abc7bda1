"""Where the fluid engine's figures are validated, as measured by the fidelity grid (benchmarks/fidelity.py).

`outside(scenario)` names the reason a scenario falls where the grid found the
fluid engine outside its tolerances, or None. `--engine auto` sends such a
scenario to the request engine. The regimes are those the grid flags today;
each entry goes when the grid's rows for it pass (round robin with lognormal
service left when one instance's E_n/G/c queue was simulated: round_robin.py).
"""
from __future__ import annotations

import numpy as np

from simlab.dists import from_spec
from simlab.engines.traffic import OfferedLoad
from simlab.scenario import Scenario

WAITS = 0.5  # peak utilisation from which waiting shows in latency (below it the flagged gaps are negligible)
POOLED_WAITS = 0.7  # power-of-two is one pooled queue, as least-outstanding was when 13% short at 0.8


def peak_utilisation(scenario: Scenario) -> float:
    """Peak offered load over the full fleet's workers (before failures and rollouts take any away)."""
    load = OfferedLoad(scenario)
    t = np.linspace(0.0, scenario.duration, 2049)
    peak = float(load.rates(t).max()) if scenario.duration > 0 else float(scenario.traffic.rps)
    dist = from_spec(scenario.fleet.service_time)
    return peak * dist.mean / (scenario.fleet.instances * scenario.fleet.workers)


def outside(scenario: Scenario) -> str | None:
    """Why the fluid engine may be outside its validated tolerances on this scenario; None where it is inside."""
    fleet = scenario.fleet
    dist = from_spec(fleet.service_time)
    scv = dist.variance / dist.mean**2 if dist.mean > 0 else 0.0
    rho = peak_utilisation(scenario)
    if rho < WAITS:
        return None
    where = f"at peak utilisation {rho:.2f}"
    if fleet.load_balancer == "power_of_two" and rho >= POOLED_WAITS:
        return (f"power-of-two dispatch {where}: the fluid engine pools its queues, which understates waits "
                f"there (by 13% for least-outstanding before it was modelled per instance)")
    return None
