"""How measurements add up to a decision (Argo Rollouts' failureLimit and inconclusiveLimit, simlab's counting).

- `failure_counting: cumulative`: every failed measurement of the rollout counts; the `failure_limit`-th
  is the decision. `consecutive`: only an unbroken run counts: a measurement that did not fail (passed or
  inconclusive) starts the count again, so the decision is `failure_limit` failures in a row.
- `inconclusive_limit`: the `inconclusive_limit`-th inconclusive measurement (cumulative) is the decision;
  none without it. A pause the on-call ends starts that count again (`resume`).

Unlike Argo, whose limits are the failures *tolerated* (fail at limit + 1), simlab acts *at* the limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simlab.control.analysis import Status
from simlab.scenario.strategy import Analysis

Decision = Literal["failed", "inconclusive"] | None


@dataclass
class Tally:
    """The counts of one analysis (the acting metrics, or the dry-run ones on their own)."""

    spec: Analysis
    failures: int = 0  # what failure_limit is compared with: all failures, or the current run of them
    failed_total: int = 0
    inconclusive: int = 0
    inconclusive_total: int = 0
    measurements: int = 0

    def add(self, status: Status) -> Decision:
        """Count one measurement; the decision it completes, if any."""
        self.measurements += 1
        consecutive = self.spec.failure_counting == "consecutive"
        if status == "failed":
            self.failures += 1
            self.failed_total += 1
            if self.failures >= self.spec.failure_limit:
                return "failed"
            return None
        if consecutive:
            self.failures = 0
        if status == "inconclusive":
            self.inconclusive += 1
            self.inconclusive_total += 1
            limit = self.spec.inconclusive_limit
            if limit is not None and self.inconclusive >= limit:
                return "inconclusive"
        return None

    @property
    def reached_failure_limit(self) -> bool:
        return self.failures >= self.spec.failure_limit

    def resume(self) -> None:
        """The on-call ended a pause: inconclusive measurements count from zero again."""
        self.inconclusive = 0
