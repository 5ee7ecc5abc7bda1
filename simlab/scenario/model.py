"""The scenario: one validated, frozen description of fleet, traffic, release and policy."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator

from simlab.scenario.decide import Decide
from simlab.scenario.distributions import DistributionSpec
from simlab.scenario.release import Failure, Release, ZoneOutage
from simlab.scenario.staging import Staging
from simlab.scenario.strategy import Analysis, Canary, Strategy
from simlab.scenario.files import read_data_text
from simlab.scenario.validation import Validation
from simlab.scenario.types import (
    MAX_INSTANCES, MAX_LIST, MAX_MULTIPLIER, MAX_RPS, Duration, Frozen, Multiplier, PositiveDuration, Probability, Rate,
    number, whole,
)

LOAD_BALANCERS = ("round_robin", "random", "least_outstanding", "power_of_two")


class HealthCheck(Frozen):
    interval: PositiveDuration = 5.0
    unhealthy_after: whole(ge=1, le=1000) = 3
    healthy_after: whole(ge=1, le=1000) = 2


class Warmup(Frozen):
    """A fresh process is slower at first (cold caches, JIT, connection pools): its service time is multiplied by
    `slowdown` when it comes up, falling linearly to 1 over `duration`. The fleet running when a run starts is warm."""

    duration: PositiveDuration
    slowdown: number(ge=1.0, le=MAX_MULTIPLIER) = Field(
        default=2.0, description="service-time multiplier of an instance that has just come up")


class Fleet(Frozen):
    instances: whole(ge=1, le=MAX_INSTANCES)
    zones: whole(ge=1, le=1000) = 1
    workers: whole(ge=1, le=10_000) = Field(default=8, description="concurrent requests one instance serves")
    queue_limit: whole(ge=0, le=1_000_000) = Field(default=64, description="requests waiting per instance; beyond it: 503")
    service_time: DistributionSpec
    startup: Duration = 20.0
    load_balancer: Literal["round_robin", "random", "least_outstanding", "power_of_two"] = "least_outstanding"
    redispatch: bool = Field(
        default=True,
        description="a refused connection (crashed instance still in rotation) is retried once on another "
        "instance by the load balancer (HAProxy `option redispatch`, Envoy connect-failure retry)",
    )
    health_check: HealthCheck = HealthCheck()
    warmup: Warmup | None = Field(default=None, description="instances that come up during the run start slow "
                                  "(a canary's against a warm fleet: what a canary baseline corrects)")


class Constant(Frozen):
    kind: Literal["constant"]


class Diurnal(Frozen):
    kind: Literal["diurnal"]
    peak_to_trough: number(ge=1.0, le=MAX_MULTIPLIER) = 3.0
    peak_at: Duration = 14 * 3600.0
    period: PositiveDuration = 86400.0


class Replay(Frozen):
    """Per-second rates from a CSV (`rps` column, or the last column); `rps` scales them to that mean."""

    kind: Literal["replay"]
    file: str
    rates: tuple[number(ge=0.0, le=MAX_RPS), ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _load(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict) or not isinstance(data.get("file"), str) or not data["file"] or data.get("rates"):
            return data  # the fields' own validation says what is wrong
        base = Path((info.context or {}).get("base_dir", "."))
        path = Path(data["file"])
        path = path if path.is_absolute() else base / path
        lines = read_data_text(path, data["file"], "file of per-second rates").splitlines()
        rates = []
        for line_no, line in enumerate(lines, 1):
            cell = line.split(",")[-1].strip()
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                if line_no == 1:
                    continue
                raise ValueError(f"{path.name}:{line_no}: expected a rate, found {cell!r}") from None
            if not 0 <= value <= MAX_RPS:
                raise ValueError(f"{path.name}:{line_no}: expected a rate from 0 to {MAX_RPS:g}, found {cell}")
            rates.append(value)
        if not rates:
            raise ValueError(f"expected at least one rate in {data['file']!r}, found none")
        return {**data, "rates": tuple(rates)}


def _pattern_tag(value: object) -> object:
    return {"kind": value} if isinstance(value, str) else value


Pattern = Annotated[Union[Constant, Diurnal, Replay], BeforeValidator(_pattern_tag), Field(discriminator="kind")]


class Spike(Frozen):
    at: Duration
    duration: PositiveDuration
    multiplier: Multiplier


class Retries(Frozen):
    max: whole(ge=0, le=10) = 0
    backoff: Duration = 0.1
    budget: Probability = Field(default=0.1, description="retries as a fraction of requests")
    jitter: bool = True


class Traffic(Frozen):
    rps: Rate
    pattern: Pattern = Constant(kind="constant")
    spikes: tuple[Spike, ...] = Field(default=(), max_length=MAX_LIST)
    timeout: PositiveDuration = 30.0
    retries: Retries = Retries()


class OnCall(Frozen):
    ack: Duration = 300.0


class Rollback(Frozen):
    automatic: bool = True
    duration: Duration = 60.0
    on_call: OnCall = OnCall()


class Monitoring(Frozen):
    scrape_interval: PositiveDuration = 15.0
    window: PositiveDuration = 60.0
    delay: Duration = 30.0

    @model_validator(mode="after")
    def _window_covers_scrapes(self) -> "Monitoring":
        if self.window < self.scrape_interval:
            raise ValueError(
                f"window: expected at least one scrape_interval ({self.scrape_interval:g}s), found {self.window:g}s"
            )
        return self


class BurnRateAlert(Frozen):
    """Multi-window burn-rate page (Google SRE workbook): both windows above `burn_rate`."""

    burn_rate: number(gt=0, le=1e6) = 14.4
    long_window: PositiveDuration = 300.0
    short_window: PositiveDuration = 60.0


class Slo(Frozen):
    availability: number(gt=0, lt=100) = Field(default=99.9, description="percent of requests good")
    latency_threshold: PositiveDuration = 1.0
    window: PositiveDuration = 30 * 86400.0
    alert: BurnRateAlert = BurnRateAlert()


class Scenario(Frozen):
    # `validate` is a method pydantic's BaseModel has: the field is `validation`, written and dumped as `validate`.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, serialize_by_alias=True)

    name: str = Field(min_length=1)
    description: str = ""
    duration: PositiveDuration
    seed: whole(ge=0, le=2**64 - 1) = 0
    fleet: Fleet
    traffic: Traffic
    release: Release | None = None
    strategy: Strategy = Canary(kind="canary")
    analysis: Analysis | None = Analysis()
    rollback: Rollback = Rollback()
    monitoring: Monitoring = Monitoring()
    slo: Slo = Slo()
    failures: tuple[Failure, ...] = Field(default=(), max_length=MAX_LIST)
    staging: Staging | None = None
    decide: Decide | None = Field(default=None, description="what compare, sweep and optimize reports recommend by "
                                  "(defaults when absent)")
    validation: Validation | None = Field(default=None, alias="validate",
                                          description="how closely `simlab validate` wants staging to match the "
                                          "prediction")

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.release is not None and self.release.at >= self.duration:
            raise ValueError(
                f"release.at: expected a time before the end of the run (duration {self.duration:g}s), "
                f"found {self.release.at:g}s"
            )
        for i, failure in enumerate(self.failures):
            if isinstance(failure, ZoneOutage) and failure.zone >= self.fleet.zones:
                raise ValueError(
                    f"failures[{i}].zone: expected a zone from 0 to {self.fleet.zones - 1} "
                    f"(fleet.zones is {self.fleet.zones}), found {failure.zone}"
                )
        return self

    def fingerprint(self) -> str:
        """A stable hash of everything that affects results (name and description excluded). Values at their
        defaults are left out, so a field added later with a default that keeps today's behaviour leaves every
        existing scenario's fingerprint (its stored runs, its experiments' extensions) as it was."""
        data = self.model_dump(mode="json", exclude={"name", "description", "validation", "decide"},
                               exclude_defaults=True)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def with_strategy(self, kind: str) -> "Scenario":
        """This scenario with another strategy kind (its defaults) unless it already is that kind."""
        from simlab.scenario.strategy import default_strategy

        if self.strategy.kind == kind:
            return self
        return self.model_copy(update={"strategy": default_strategy(kind)})
