"""simlab: deployment risk, simulated and then observed on staging.

Names are imported on first use so that `import simlab` stays fast and side-effect free
(pandas, SimPy and the engines load only when a simulation is asked for).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from simlab.errors import ScenarioError, SimlabError, SimulationError, StagingError

__version__ = "0.1.0"

_LAZY = {
    "Scenario": "simlab.scenario",
    "load_scenario": "simlab.scenario",
    "simulate": "simlab.simulation",
    "Result": "simlab.results",
    "SUMMARY_KEYS": "simlab.results",
    "replicate": "simlab.experiment",
    "compare": "simlab.experiment",
    "sweep": "simlab.experiment",
    "analysis_quality": "simlab.experiment.quality",
    "optimize": "simlab.experiment.optimization",
    "lint": "simlab.linter",
    "capacity": "simlab.planning",
    "pair": "simlab.report.views",
    "discover": "simlab.chaos",  # `chaos discover simlab` looks for the extension's discover() here
    "import_argo": "simlab.bridges",
    "import_flagger": "simlab.bridges",
    "export_argo": "simlab.bridges",
    "export_flagger": "simlab.bridges",
}

__all__ = ["SimlabError", "ScenarioError", "SimulationError", "StagingError", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from simlab.bridges import export_argo, export_flagger, import_argo, import_flagger
    from simlab.experiment import compare, replicate, sweep
    from simlab.experiment.optimization import optimize
    from simlab.experiment.quality import analysis_quality
    from simlab.linter import lint
    from simlab.planning import capacity
    from simlab.report.views import pair
    from simlab.results import SUMMARY_KEYS, Result
    from simlab.scenario import Scenario, load_scenario
    from simlab.simulation import simulate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simlab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
