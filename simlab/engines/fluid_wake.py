"""When a rollout controller can next act, so a batch ticks it only then (and whenever its fleet changes).

The controller is pure: between fleet changes its decisions depend only on
time, through a few deadlines it keeps (the release time, the next analysis,
the next alert evaluation, the on-call's acknowledgement, the end of a bake
or of the progress deadline). This reads those deadlines. It relies on the
controller's private fields; tests/test_fluid_engine.py holds it to ticking
every second (identical events), and a public `next_wakeup()` on
RolloutController would remove the coupling.
"""
from __future__ import annotations

import math

from simlab.control import plans


def next_wake(c, now: float) -> float:
    """Earliest time after `now` at which `c.tick` could act without a fleet change."""
    if c.release is None:
        return math.inf
    if c._plan is None and not c._in_rollback and c.phase == "stable":
        return max(c.release.at, now + 1.0) if now >= c.release.at else c.release.at
    times = [math.inf]
    deadline = c.scenario.strategy.progress_deadline
    if c._plan is not None:
        item = c._waiting
        if item is None or isinstance(item, plans.Tick):
            return now + 1.0
        if isinstance(item, plans.Bake):
            end = c._wait_since + item.seconds
            if now < end:
                times.append(end)
            elif item.need_pass and c._analysis_on and not c._passed_since_bake:
                if not c._in_rollback:
                    times.append(end + deadline)
            else:
                return now + 1.0
        elif isinstance(item, plans.Until):
            if item.deadline and not c._in_rollback:
                times.append(c._wait_since + deadline)
    if c.phase != "rolled_back" and not c._in_rollback:
        if c._analysis_on and c.analysis_spec is not None:
            times.append(c._next_analysis)
        if not c._alerted:
            times.append(c._next_alert)
        if c._manual_rollback_at is not None:
            times.append(c._manual_rollback_at)
    return max(min(times), now + 1.0)
