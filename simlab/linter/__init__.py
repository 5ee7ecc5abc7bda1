"""`simlab lint`: a rollout policy's obvious mistakes, found before anything is simulated.

`lint(scenario)` runs every rule of `simlab/linter/rules.py` and returns the findings, errors first. Each names
its rule, its severity (an error breaks the rollout on every run; a warning is a risk with its chance or cost),
the field it is about and one line with the numbers. Pure arithmetic on the scenario: the rollout's schedule in
closed form (`schedule.py`) and the false rollbacks it predicts (`noise.py`).
"""
from __future__ import annotations

from pathlib import Path

from simlab.linter.finding import Finding, Findings
from simlab.scenario import Scenario

__all__ = ["lint", "Finding", "Findings"]


def lint(scenario: Scenario | str | Path, strategy: str | None = None) -> Findings:
    """Every rule's findings on `scenario` (a Scenario or a YAML path; `strategy` overrides its kind)."""
    from simlab.linter.rules import RULES, Context
    from simlab.scenario import load_scenario

    s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if strategy is not None:
        s = s.with_strategy(strategy)
    context = Context(s)
    return Findings(f for rule in RULES.values() for f in rule(context))
