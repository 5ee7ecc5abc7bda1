"""Experiments: Monte Carlo replication, strategy and policy comparison, parameter sweeps."""
from simlab.experiment.compare import compare
from simlab.experiment.replicate import replicate
from simlab.experiment.sweep import sweep

__all__ = ["replicate", "compare", "sweep"]
