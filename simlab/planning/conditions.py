"""The world a fleet size is judged in: the scenario's steady state with the conditions asked for, all at once.

- `at_peak`: the traffic pattern's busiest rate (a diurnal day's peak, a replay's busiest second) held for the
  whole run; spikes stay as written.
- `zone_down`: the largest zone is out (instances are spread round-robin, so zone 0 holds ceil(n / zones)).
- `during_rollout`: the rollout takes its share out of rotation at its worst moment: rolling's
  `max_unavailable` (Kubernetes rounding, down); canary and blue-green add instances and take none out;
  big bang takes the whole fleet (no size serves through it).

The judged scenario has the serving instances only, no release and no scheduled failure (a dependency failing is
not a capacity question); random instance crashes stay, as they take capacity too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from simlab.errors import ScenarioError
from simlab.scenario import Scenario, validate_scenario
from simlab.scenario.model import Diurnal, Replay
from simlab.scenario.strategy import BigBang, Rolling
from simlab.scenario.types import resolve_count


@dataclass(frozen=True)
class Conditions:
    during_rollout: bool = False
    zone_down: bool = False
    at_peak: bool = False

    def names(self) -> list[str]:
        return [n for n in ("during_rollout", "zone_down", "at_peak") if getattr(self, n)]

    def describe(self) -> str:
        words = {"during_rollout": "a rollout in progress", "zone_down": "the largest zone down",
                 "at_peak": "at the traffic's peak"}
        return ", ".join(words[n] for n in self.names()) or "the scenario's traffic, whole fleet"

    def check(self, s: Scenario) -> None:
        """Conditions that no fleet size can meet, said before anything runs."""
        if self.zone_down and s.fleet.zones < 2:
            raise ScenarioError("--zone-down: expected fleet.zones of 2 or more (one zone down is the whole fleet), "
                                f"found {s.fleet.zones}")
        if self.during_rollout and isinstance(s.strategy, BigBang):
            raise ScenarioError("--during-rollout: the strategy is big_bang, which stops every instance at once: "
                                "no fleet size serves through it; expected rolling, canary or blue_green")


def taken_out(s: Scenario, n: int, conditions: Conditions) -> dict[str, int]:
    """Instances out of rotation at fleet size n, by cause."""
    out = {}
    if conditions.zone_down:
        out["zone_down"] = math.ceil(n / s.fleet.zones)
    if conditions.during_rollout and isinstance(s.strategy, Rolling):
        out["during_rollout"] = resolve_count(s.strategy.max_unavailable, n, round_up=False)
    return out


def serving(s: Scenario, n: int, conditions: Conditions) -> int:
    return max(0, n - sum(taken_out(s, n, conditions).values()))


def peak_rate(s: Scenario) -> float:
    """The pattern's busiest rate (spikes left out: they stay in the run at their times)."""
    from simlab.engines.traffic import OfferedLoad

    pattern = s.traffic.pattern
    load = OfferedLoad(s)
    if isinstance(pattern, Diurnal):
        return s.traffic.rps * load.pattern_factor(pattern.peak_at)
    if isinstance(pattern, Replay):
        return s.traffic.rps * max(load.pattern_factor(t) for t in range(len(pattern.rates)))
    return s.traffic.rps


def judged(s: Scenario, instances: int, conditions: Conditions, duration: float | None = None) -> Scenario:
    """The steady scenario a fleet of `instances` serving ones is judged in (see the module's docstring)."""
    data = s.model_dump(mode="json")
    data["fleet"]["instances"] = instances
    data["fleet"]["zones"] = 1
    data.update(release=None, staging=None, failures=[f for f in data["failures"] if f["kind"] == "instance_crash"])
    if duration is not None:
        data["duration"] = duration
        data["traffic"]["spikes"] = [sp for sp in data["traffic"]["spikes"] if sp["at"] < duration]
    if conditions.at_peak:
        data["traffic"]["rps"] = peak_rate(s)
        data["traffic"]["pattern"] = "constant"
    return validate_scenario(data, source=f"{s.name} at {instances} serving instances")
