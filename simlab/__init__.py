"""simlab: deployment risk, simulated and then observed on staging."""
from simlab.errors import ScenarioError, SimlabError, SimulationError, StagingError
from simlab.results import SUMMARY_KEYS, Result
from simlab.scenario import Scenario, load_scenario
from simlab.simulate import simulate

__all__ = [
    "Scenario", "load_scenario", "simulate", "Result", "SUMMARY_KEYS",
    "SimlabError", "ScenarioError", "SimulationError", "StagingError",
]
__version__ = "0.1.0"
