"""Timeline columns both engines fill the same way: instances by version and state, weight, utilization."""
from __future__ import annotations

from simlab.engines.instance import DOWN, DRAINING, READY, STARTING
from simlab.engines.versions import BASELINE, NEW, OLD, VERSION_NAMES

STATES = ((READY, "ready"), (STARTING, "starting"), (DOWN, "down"), (DRAINING, "draining"))


def timeline_state(state: str, stopping: bool, in_rotation: bool) -> str:
    """The timeline's category of an instance that is not stopped."""
    if stopping:
        return DRAINING  # told to stop, finishing what it holds
    if in_rotation and state == READY:
        return READY
    if state in (READY, STARTING):
        return STARTING  # starting, or up but not yet through its health checks
    return DOWN  # crashed or restarting (possibly still in rotation until checks notice)


def add_fleet_columns(cols: dict[str, list], counts: dict, weight: float | None, base_weight: float = 0.0) -> None:
    """Append one second's new-version share and {old,new}_{ready,starting,down,draining} counts, and the
    baseline's (results.BASELINE_COLUMNS) when `cols` has them."""
    baseline = "baseline_ready" in cols
    ready_old, ready_new = counts[(OLD, READY)], counts[(NEW, READY)]
    if weight is None:  # traffic spread over ready instances: each version's share is its share of them
        ready = ready_old + ready_new + (counts[(BASELINE, READY)] if baseline else 0)
        weight = 100.0 * ready_new / ready if ready else 0.0
        base_weight = 100.0 * counts[(BASELINE, READY)] / ready if baseline and ready else 0.0
    cols["new_weight"].append(weight)
    for v in (OLD, NEW, BASELINE) if baseline else (OLD, NEW):
        for state, name in STATES:
            cols[f"{VERSION_NAMES[v]}_{name}"].append(counts[(v, state)])
    if baseline:
        cols["baseline_weight"].append(base_weight)


def utilization(area: float, capacity: float) -> float:
    """Busy worker-seconds over worker-seconds of up instances, capped at 1 (capacity is sampled once a second)."""
    return min(1.0, max(0.0, area / capacity)) if capacity else 0.0
