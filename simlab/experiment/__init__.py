"""Experiments: Monte Carlo replication, strategy and policy comparison, parameter sweeps.

The three names load on first use, so registering the CLI commands (which
imports simlab.cli.experiment) does not pull in pandas or the engines.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["replicate", "compare", "sweep"]

if TYPE_CHECKING:  # pragma: no cover
    from simlab.experiment.comparison import compare
    from simlab.experiment.replication import replicate
    from simlab.experiment.sweeps import sweep

# Module names differ from the function names so that importing a module never
# shadows the function of the same name on this package.
_MODULES = {"replicate": "replication", "compare": "comparison", "sweep": "sweeps"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'simlab.experiment' has no attribute {name!r}")
    value = getattr(import_module(f"simlab.experiment.{_MODULES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
