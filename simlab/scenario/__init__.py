"""The scenario format: validated, frozen, loaded once."""
from simlab.scenario.loading import load_scenario, parse_scenario, validate_scenario
from simlab.scenario.model import Scenario
from simlab.scenario.strategy import STRATEGY_KINDS

__all__ = ["Scenario", "load_scenario", "parse_scenario", "validate_scenario", "STRATEGY_KINDS"]
