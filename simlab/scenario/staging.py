"""The `staging:` block: what changes when a scenario runs on a real fleet (minutes, a few instances).

A staging run cannot last an hour or host twenty instances on a laptop, so a
scenario may say how to shrink itself. The shrunk scenario is an ordinary
Scenario: the simulation compared with a staging run uses the same one.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from simlab.scenario.types import Duration, Frozen, PositiveDuration, Rate

# Sections a staging block may override by a partial mapping merged into the scenario's own.
SECTIONS = ("fleet", "traffic", "release", "strategy", "analysis", "rollback", "monitoring", "slo")


class Staging(Frozen):
    """Overrides applied for staging runs; sections are partial mappings merged key by key."""

    duration: PositiveDuration | None = None
    instances: int | None = Field(default=None, ge=1, description="shorthand for fleet.instances")
    rps: Rate | None = Field(default=None, description="shorthand for traffic.rps")
    release_at: Duration | None = Field(default=None, description="shorthand for release.at")
    fleet: dict[str, Any] = {}
    traffic: dict[str, Any] = {}
    release: dict[str, Any] = {}
    strategy: dict[str, Any] = {}
    analysis: dict[str, Any] = {}
    rollback: dict[str, Any] = {}
    monitoring: dict[str, Any] = {}
    slo: dict[str, Any] = {}
    failures: list[dict[str, Any]] | None = Field(
        default=None, description="replaces the scenario's failures (staging injects faults with Chaos Toolkit)"
    )


def _merge(base: Any, over: Any) -> Any:
    """`over` merged into `base`: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    return over


def staging_scenario(scenario):
    """The scenario as staging runs it (overrides applied, `staging` removed); raise ScenarioError if invalid.

    A strategy override of another kind replaces the strategy instead of merging into it.
    """
    from simlab.scenario.loading import validate_scenario

    block: Staging | None = scenario.staging
    data = scenario.model_dump(mode="json", exclude={"staging"})
    if block is None:
        return validate_scenario(data, source=f"{scenario.name} (staging)")
    for section in SECTIONS:
        over = getattr(block, section)
        if not over:
            continue
        if section == "strategy" and over.get("kind", data["strategy"]["kind"]) != data["strategy"]["kind"]:
            data["strategy"] = dict(over)
        elif data.get(section) is None:
            data[section] = dict(over)
        else:
            data[section] = _merge(data[section], over)
    if block.duration is not None:
        data["duration"] = block.duration
    if block.instances is not None:
        data["fleet"]["instances"] = block.instances
    if block.rps is not None:
        data["traffic"]["rps"] = block.rps
    if block.release_at is not None and data.get("release") is not None:
        data["release"]["at"] = block.release_at
    if block.failures is not None:
        data["failures"] = list(block.failures)
    return validate_scenario(data, source=f"{scenario.name} (staging block)")
