"""What is being shipped and what is wrong with it; failures independent of the release."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from simlab.scenario.types import Duration, PositiveDuration, Frozen, Probability, Rate


class Onset(Frozen):
    after: Duration = Field(description="the defect shows this long after release.at")


class DefectBase(Frozen):
    onset: Onset | None = None
    only_above_rps: Rate | None = Field(default=None, description="active only while offered load exceeds this")
    fraction: Probability = Field(default=1.0, description="share of requests (one route) the defect touches")


class ErrorRate(DefectBase):
    kind: Literal["error_rate"]
    rate: Probability


class Latency(DefectBase):
    kind: Literal["latency"]
    multiplier: float = Field(default=1.0, ge=0)
    add: Duration = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "Latency":
        if self.multiplier == 1.0 and self.add == 0.0:
            raise ValueError("expected `multiplier` (e.g. 1.8) or `add` (e.g. 80ms), found neither")
        return self


class CrashLoop(DefectBase):
    kind: Literal["crash_loop"]


class Crash(DefectBase):
    kind: Literal["crash"]
    mtbf: PositiveDuration


class MemoryLeak(DefectBase):
    kind: Literal["memory_leak"]
    oom_after: PositiveDuration
    max_slowdown: float = Field(default=3.0, ge=1.0, description="latency multiplier reached just before the OOM kill")


Defect = Annotated[Union[ErrorRate, Latency, CrashLoop, Crash, MemoryLeak], Field(discriminator="kind")]


class Migration(Frozen):
    duration: Duration
    lock_error_rate: Probability = 0.0
    backward_compatible: bool = True
    incompatible_error_rate: Probability = Field(
        default=1.0, description="error rate of the old version after a non-backward-compatible migration"
    )


class Release(Frozen):
    at: Duration = 0.0
    version: str = "v2"
    defects: tuple[Defect, ...] = ()
    migration: Migration | None = None

    @property
    def bad(self) -> bool:
        return bool(self.defects) or bool(self.migration and not self.migration.backward_compatible)


class InstanceCrash(Frozen):
    kind: Literal["instance_crash"]
    mtbf: PositiveDuration
    restart: Duration = 60.0


class ZoneOutage(Frozen):
    kind: Literal["zone_outage"]
    zone: int = Field(ge=0)
    at: Duration
    duration: PositiveDuration


class Dependency(Frozen):
    kind: Literal["dependency"]
    at: Duration
    duration: PositiveDuration
    add_latency: Duration = 0.0
    error_rate: Probability = 0.0


Failure = Annotated[Union[InstanceCrash, ZoneOutage, Dependency], Field(discriminator="kind")]
