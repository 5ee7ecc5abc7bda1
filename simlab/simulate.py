"""`simulate(scenario, seed=…, engine=…)`: one simulated rollout."""
from __future__ import annotations

from pathlib import Path

from simlab.errors import ScenarioError
from simlab.results import Result
from simlab.scenario import Scenario, load_scenario

ENGINES = ("request",)


def simulate(scenario: Scenario | str | Path, seed: int | None = None, engine: str = "request") -> Result:
    """Run one replication of `scenario` with `seed` (default: the scenario's) on `engine`."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    if engine == "request":
        from simlab.engines.request import RequestEngine

        return RequestEngine(scenario, seed).run()
    raise ScenarioError(f"engine: expected one of {', '.join(ENGINES)}, found {engine!r}")
