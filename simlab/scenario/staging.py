"""The `staging:` block's schema: what changes when a scenario runs on a real fleet (minutes, a few instances).

A staging run cannot last an hour or host twenty instances on a laptop, so a
scenario may say how to shrink itself. The shrunk scenario is an ordinary
Scenario: the simulation compared with a staging run uses the same one. It is
made by `loading.staging_scenario`; this module is schema only, so the model
imports it without importing loading.
"""
from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import Field, field_validator

from simlab.scenario.types import MAX_INSTANCES, Duration, Frozen, PositiveDuration, Rate, whole

# Sections a staging block may override by a partial mapping merged into the scenario's own.
SECTIONS = ("fleet", "traffic", "release", "strategy", "analysis", "rollback", "monitoring", "slo")


PLACEHOLDERS = {
    "start_new_version": {"count", "release_epoch"},
    "scale": {"version", "count", "release_epoch"},
    "set_weight": {"percent"},
    "promote": set(),
    "rollback": set(),
    "status": set(),
}


class TargetCommands(Frozen):
    """Command templates run (without a shell) to act on an external target; `{name}` fields are filled in.

    `start_new_version`: have `{count}` new-version instances running. `scale` (optional): have `{count}`
    instances of `{version}` (old or new) running; without it, stopping instances is left to `promote` and
    `rollback`. `set_weight`: send `{percent}` of traffic to the new version (`even`: by instance count).
    `status`: print JSON `{"old": {"alive": N, "ready": N}, "new": {...}}`.
    """

    start_new_version: str
    scale: str | None = None
    set_weight: str
    promote: str
    rollback: str
    status: str

    @field_validator("*")
    @classmethod
    def _known_fields(cls, value, info):
        if value is None:
            return value
        allowed = PLACEHOLDERS[info.field_name]
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"expected a command template, found {value!r} ({exc})") from None
        unknown = used - allowed
        if unknown or not value.strip():
            raise ValueError(f"expected placeholders among {sorted(allowed) or 'none'}, found "
                             f"{sorted(unknown) or 'an empty command'} in {value!r}")
        return value


class Target(Frozen):
    """A deploy target simlab does not run: a team's staging, driven through its own commands."""

    url: str = Field(description="base URL users' traffic goes to (Locust's target)")
    prometheus: str = Field(description="Prometheus base URL answering PromQL with simlab's metric names")
    commands: TargetCommands
    env: tuple[str, ...] = Field(default=(), description="environment variables the commands need (credentials); "
                                                         "checked to be set, their values never written anywhere")
    prometheus_token_env: str | None = Field(default=None, description="env var holding a bearer token for Prometheus")
    total_from: Literal["haproxy", "fleet"] = "fleet"
    command_timeout: PositiveDuration = 60.0

    @field_validator("url", "prometheus")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, found {value!r}")
        return value.rstrip("/")

    @field_validator("env")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v)]
        if bad:
            raise ValueError(f"expected environment variable names, found {bad}")
        return value


class Staging(Frozen):
    """Overrides applied for staging runs; sections are partial mappings merged key by key."""

    duration: PositiveDuration | None = None
    instances: whole(ge=1, le=MAX_INSTANCES) | None = Field(default=None, description="shorthand for fleet.instances")
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
    target: Target | None = Field(default=None, description="an external target for `simlab deploy --target external`")
