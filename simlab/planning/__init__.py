"""Capacity planning: the smallest fleet that holds the SLO under stated conditions (`simlab capacity`).

`capacity(scenario, p99="300ms", during_rollout=..., zone_down=..., at_peak=...)` searches fleet sizes with
replications (`search.py`) in the steady world the conditions make (`conditions.py`) and returns a `Capacity`
(`result.py`: the answer, every size judged with 95% intervals, `.plot()` from `figures.py`); `theory.py` sizes
an M/M/c fleet by Erlang C, the check the search is held to.
"""
from simlab.planning.result import Capacity
from simlab.planning.search import capacity

__all__ = ["capacity", "Capacity"]
