"""Where the fluid engine's figures are validated, as measured by the fidelity grid (benchmarks/fidelity.py).

`outside(scenario)` names the reason a scenario falls where the grid found the
fluid engine outside its tolerances, or None. `--engine auto` sends such a
scenario to the request engine. An entry goes when the grid's rows for its
regime pass, and one comes with every row the grid flags (a `KNOWN_GAPS` entry
of simlab.experiment.fidelity must lie where this returns a reason).

The grid flags no regime today: round robin with lognormal service left when
one instance's E_n/G/c queue was simulated (round_robin.py), power-of-two
dispatch when it got its own model (two_choices.py).
"""
from __future__ import annotations

from simlab.scenario import Scenario


def outside(scenario: Scenario) -> str | None:
    """Why the fluid engine may be outside its validated tolerances on this scenario; None where it is inside."""
    return None
