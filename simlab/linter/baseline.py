"""A canary baseline nobody reads (`strategy.baseline`).

`baseline: true` starts fresh instances of the old version beside the canary, as many as the canary at each
step below 100, from the step's start until the last step's canary instances are ready
(`simlab/control/plans.py`); they count in `instance_seconds`. Only a comparison with the baseline reads them
(`simlab/control/gate.py`): the mann_whitney judge, or a threshold metric's `max_ratio_to_baseline`, on an
acting metric. Without one (no analysis, only dry-run metrics, only absolute `max` bounds) the baseline is cost
and nothing else.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simlab.linter.finding import Finding, span
from simlab.scenario.strategy import Canary

if TYPE_CHECKING:  # pragma: no cover
    from simlab.linter.rules import Context


def unread(s) -> str | None:
    """Why no analysis reads the canary's baseline, or None when one does."""
    spec = s.analysis
    if not s.strategy.analysis:
        return "strategy.analysis is false"
    if spec is None or not spec.metrics:
        return "the scenario has no analysis"
    if not spec.acting:
        return "every analysis metric is dry_run (measured and reported, never acting)"
    if spec.judge.kind == "mann_whitney" or any(m.max_ratio_to_baseline is not None for m in spec.acting):
        return None
    bounds = ", ".join(f"analysis.metrics[{i}].max" for i, m in enumerate(spec.metrics) if not m.dry_run)
    return f"the threshold judge's acting metrics have only absolute bounds ({bounds}), none max_ratio_to_baseline"


def unread_baseline(c: "Context") -> list[Finding]:
    s = c.s
    if s.release is None or not isinstance(s.strategy, Canary) or not s.strategy.baseline:
        return []
    why = unread(s)
    n, steps = s.fleet.instances, s.strategy.steps
    sizes = [max(1, math.ceil(n * step.weight / 100)) for step in steps[:-1]]  # as many as the canary
    if why is None or not sizes:  # read, or a single step to 100: the baseline never starts
        return []
    hc = s.fleet.health_check
    ready = s.fleet.startup + hc.healthy_after * hc.interval  # a step's instances up and in rotation
    # each step's baseline from its start to the next step's (its bake after the step is ready), the last one's
    # until the canary at weight 100 is ready; a gated bake waits for a passed measurement, so it can run longer
    lives = [ready + step.bake for step in steps[:-1]]
    lives[-1] += ready
    cost = sum(size * life for size, life in zip(sizes, lives))
    rollout = sum(ready + step.bake for step in steps)
    at = ", ".join(f"{size} at step {i} ({step.weight:g}%)" for i, (size, step) in enumerate(zip(sizes, steps)))
    return [Finding("unread-baseline", "warning", "strategy.baseline",
                    f"baseline: true runs old-version instances beside the canary ({at}): about {cost:,.0f} "
                    f"instance-seconds per good release (each step's startup, health checks and bake), "
                    f"+{cost / (n * rollout):.0%} on the {n}-instance fleet over the {span(rollout)} rollout; but "
                    f"nothing compares the canary "
                    f"with them: {why}. Drop `baseline: true`, or judge against it (analysis.judge kind "
                    f"mann_whitney, or max_ratio_to_baseline on an acting metric)",
                    {"instances": sizes, "instance_seconds": cost})]
