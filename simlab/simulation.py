"""`simulate(scenario, seed=…, engine=…)`: one simulated rollout."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simlab.errors import ScenarioError
from simlab.results import Result
from simlab.scenario import Scenario, load_scenario

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ENGINES = ("request", "fluid", "auto")
AUTO_REQUESTS = 2_000_000  # expected simulated requests above which `auto` picks the fluid engine
AUTO_INSTANCES = 100


def engine_choice(scenario: Scenario) -> tuple[str, str]:
    """The engine `auto` runs, and why: the request engine for small runs and wherever the fidelity grid flags
    the fluid engine (simlab.engines.fluid.domain), the fluid engine for large runs inside its domain."""
    from simlab.engines.fluid.domain import outside
    from simlab.engines.traffic import OfferedLoad

    expected = OfferedLoad(scenario).mean_rate(scenario.duration) * scenario.duration
    flagged = outside(scenario)
    if flagged is not None:
        return "request", flagged
    if expected <= AUTO_REQUESTS and scenario.fleet.instances <= AUTO_INSTANCES:
        return "request", (f"a small run ({expected:,.0f} requests expected, {scenario.fleet.instances} instances): "
                           f"the request engine simulates each request")
    return "fluid", (f"{expected:,.0f} requests expected on {scenario.fleet.instances} instances, inside the fluid "
                     f"engine's validated domain (docs/fluid-engine.md)")


def choose_engine(scenario: Scenario) -> str:
    """The engine `auto` runs (see engine_choice for why)."""
    return engine_choice(scenario)[0]


def simulate(scenario: Scenario | str | Path, seed: int | None = None, engine: str = "request") -> Result:
    """Run one replication of `scenario` with `seed` (default: the scenario's) on `engine`."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    seed = scenario.seed if seed is None else seed
    from simlab.scenario.release import draw_release

    # Whether this replication's release is bad, and its drawn defect parameters (release.bad_probability,
    # distribution-valued defects). Idempotent on a scenario that is already concrete.
    scenario, drawn = draw_release(scenario, seed)
    result = _run(scenario, seed, engine)
    result.summary.values.update(drawn)
    return result


def simulate_batch(scenario: Scenario, seeds, releases: "list[Scenario] | None" = None) -> "pd.DataFrame":
    """Replications of a concrete scenario in lockstep on the fluid engine: one summary row per seed.

    The replications share one data-plane stream, so a seed's numbers depend on
    the seeds batched with it (a batch of one equals `simulate(engine="fluid")`).
    `releases`, one per seed, are the concrete scenarios the replications simulate
    (`draw_release`'s good or bad draws of `scenario`), batched together.
    """
    from simlab.engines.fluid.engine import simulate_batch as batch

    return batch(scenario, seeds, releases=releases)


def _run(scenario: Scenario, seed: int, engine: str) -> Result:
    if engine == "auto":
        engine, reason = engine_choice(scenario)
        result = _run(scenario, seed, engine)
        result.summary.values["engine_reason"] = reason  # and the "engine" key says which one ran
        return result
    if engine == "fluid":
        from simlab.engines.fluid.engine import FluidEngine

        return FluidEngine(scenario, seed).run()
    if engine == "request":
        from simlab.engines.request.engine import RequestEngine

        return RequestEngine(scenario, seed).run()
    raise ScenarioError(f"engine: expected one of {', '.join(ENGINES)}, found {engine!r}")
