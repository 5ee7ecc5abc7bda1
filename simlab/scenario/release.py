"""What is being shipped and what is wrong with it; failures independent of the release.

A release may be bad only sometimes (`bad_probability`) and its defects'
numbers may be distributions; `draw_release` turns such a scenario and a
replication's seed into the concrete scenario that replication simulates.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag, model_validator

from simlab.scenario.distributions import LogNormal
from simlab.scenario.types import (
    MAX_LIST, MAX_MULTIPLIER, Duration, Frozen, Multiplier, PositiveDuration, Probability, Rate, number, whole,
)


class Uniform(Frozen):
    """A defect parameter drawn uniformly between `low` and `high`."""

    dist: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if self.high < self.low:
            raise ValueError(f"high: expected a value at least low ({self.low:g}), found {self.high:g}")
        return self


class Choice(Frozen):
    """A defect parameter drawn from `values`, with `weights` (default: equal)."""

    dist: Literal["choice"]
    values: tuple[Duration, ...] = Field(min_length=1, max_length=10_000)
    weights: tuple[number(ge=0, le=1e12), ...] | None = None

    @model_validator(mode="after")
    def _one_weight_per_value(self) -> "Choice":
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights: expected one weight per value ({len(self.values)}), found {len(self.weights)}"
                )
            if sum(self.weights) <= 0:
                raise ValueError("weights: expected at least one weight above 0, found none")
        return self


ParamDist = Annotated[Union[LogNormal, Uniform, Choice], Field(discriminator="dist")]
"""A distribution a defect parameter may be instead of a number (drawn once per replication)."""


class Bounds:
    """Marker on an uncertain field: where its draws are clipped (a log-normal rate may exceed 1)."""

    def __init__(self, low: float, high: float | None, positive: bool):
        self.low, self.high, self.positive = low, high, positive

    def clip(self, value: float) -> float:
        value = max(value, self.low)
        if self.positive:
            value = max(value, 1e-9)
        return value if self.high is None else min(value, self.high)

    def check(self, value: object) -> object:
        """A uniform or choice must stay inside the field's range; a log-normal is clipped when drawn."""
        points = {Uniform: lambda d: (d.low, d.high), Choice: lambda d: d.values}.get(type(value), lambda d: ())(value)
        for point in points:
            if point < self.low or (self.high is not None and point > self.high) or (self.positive and point <= 0):
                upper = f" and at most {self.high:g}" if self.high is not None else ""
                lower = f"above {self.low:g}" if self.positive else f"at least {self.low:g}"
                raise ValueError(f"expected values {lower}{upper}, found {point:g}")
        return value


def _number_or_dist(value: object) -> str:
    return "distribution[lognormal|uniform|choice]" if isinstance(value, (dict, BaseModel)) else "float"


def Uncertain(number: object, low: float = 0.0, high: float | None = None, positive: bool = False) -> object:
    """A numeric defect field that may be a number (validated as `number`) or a ParamDist.

    The tag "float" and the bracketed tag are names the loader's error paths skip,
    so a problem inside a distribution is reported at the field itself.
    """
    bounds = Bounds(low, high, positive)
    return Annotated[
        Union[Annotated[number, Tag("float")], Annotated[ParamDist, Tag("distribution[lognormal|uniform|choice]")]],
        Discriminator(_number_or_dist),
        AfterValidator(bounds.check),
        bounds,
    ]


class Onset(Frozen):
    after: Uncertain(Duration) = Field(description="the defect shows this long after release.at")


class DefectBase(Frozen):
    onset: Onset | None = None
    only_above_rps: Uncertain(Rate) | None = Field(
        default=None, description="active only while offered load exceeds this"
    )
    fraction: Uncertain(Probability, high=1.0) = Field(
        default=1.0, description="share of requests (one route) the defect touches"
    )


class ErrorRate(DefectBase):
    kind: Literal["error_rate"]
    rate: Uncertain(Probability, high=1.0)


class Latency(DefectBase):
    kind: Literal["latency"]
    multiplier: Uncertain(Multiplier, high=MAX_MULTIPLIER) = 1.0
    add: Uncertain(Duration) = 0.0

    @model_validator(mode="after")
    def _does_something(self) -> "Latency":
        if self.multiplier == 1.0 and self.add == 0.0:
            raise ValueError("expected `multiplier` (e.g. 1.8) or `add` (e.g. 80ms), found neither")
        return self


class CrashLoop(DefectBase):
    kind: Literal["crash_loop"]


class Crash(DefectBase):
    kind: Literal["crash"]
    mtbf: Uncertain(PositiveDuration, positive=True)


class MemoryLeak(DefectBase):
    kind: Literal["memory_leak"]
    oom_after: Uncertain(PositiveDuration, positive=True)
    max_slowdown: Uncertain(number(ge=1.0, le=MAX_MULTIPLIER), low=1.0, high=MAX_MULTIPLIER) = Field(
        default=3.0, description="latency multiplier reached just before the OOM kill"
    )


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
    defects: tuple[Defect, ...] = Field(default=(), max_length=MAX_LIST)
    migration: Migration | None = None
    bad_probability: Probability | None = Field(
        default=None, description="chance a replication's release is bad (default 1 when defects are given)"
    )

    @model_validator(mode="after")
    def _something_can_go_wrong(self) -> "Release":
        if self.bad_probability is not None and not self.bad:
            raise ValueError(
                "bad_probability: expected `defects` or an incompatible `migration` to say what a bad release does, "
                "found neither"
            )
        return self

    @property
    def bad(self) -> bool:
        """Whether this release has anything wrong with it (before any per-replication draw)."""
        return bool(self.defects) or bool(self.migration and not self.migration.backward_compatible)


class InstanceCrash(Frozen):
    kind: Literal["instance_crash"]
    mtbf: PositiveDuration
    restart: Duration = 60.0


class ZoneOutage(Frozen):
    kind: Literal["zone_outage"]
    zone: whole(ge=0, le=999)
    at: Duration
    duration: PositiveDuration


class Dependency(Frozen):
    kind: Literal["dependency"]
    at: Duration
    duration: PositiveDuration
    add_latency: Duration = 0.0
    error_rate: Probability = 0.0


Failure = Annotated[Union[InstanceCrash, ZoneOutage, Dependency], Field(discriminator="kind")]


_DISTS = (LogNormal, Uniform, Choice)


def _bounds(info) -> Bounds:
    import typing

    stack = [*info.metadata, info.annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, Bounds):
            return item
        stack.extend(typing.get_args(item))
        stack.extend(getattr(item, "__metadata__", ()))
    return Bounds(0.0, None, False)


def _draw(spec: LogNormal | Uniform | Choice, bounds: Bounds, rng) -> float:
    if isinstance(spec, LogNormal):
        mu, sigma = spec.mu_sigma()
        return bounds.clip(float(rng.lognormal(mu, sigma)))
    if isinstance(spec, Uniform):
        return bounds.clip(float(rng.uniform(spec.low, spec.high)))
    weights = None if spec.weights is None else [w / sum(spec.weights) for w in spec.weights]
    return bounds.clip(float(spec.values[int(rng.choice(len(spec.values), p=weights))]))


def _realize(model: BaseModel, prefix: str, rng, drawn: dict[str, float | None]) -> BaseModel:
    """`model` with every distribution replaced by a draw (or, without rng, just listed as None)."""
    update = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, _DISTS):
            key = f"{prefix}.{name}"
            drawn[key] = None if rng is None else _draw(value, _bounds(info), rng)
            update[name] = drawn[key]
        elif isinstance(value, BaseModel) and not isinstance(value, _DISTS):
            update[name] = _realize(value, f"{prefix}.{name}", rng, drawn)
    return model.model_copy(update=update) if update else model


def _defect_names(defects: tuple) -> list[str]:
    """`param.<kind>` for each defect; a kind given twice gets `#2`, `#3` from its second occurrence."""
    seen: dict[str, int] = {}
    names = []
    for d in defects:
        seen[d.kind] = seen.get(d.kind, 0) + 1
        names.append(f"param.{d.kind}" + ("" if seen[d.kind] == 1 else f"#{seen[d.kind]}"))
    return names


def draw_release(scenario, seed: int):
    """(the concrete scenario replication `seed` simulates, the drawn parameters as a flat dict).

    Draws come from the "release" stream only, so every strategy and variant sees
    the same release in run i. A good draw removes the defects and makes any
    migration backward compatible; a bad one replaces each distribution by a draw.
    Parameter keys are `param.<defect kind>.<field>`; they are None on good draws.
    """
    from simlab.rng import stream

    release = scenario.release
    if release is None:
        return scenario, {}
    rng = stream(seed, "release")
    p = release.bad_probability if release.bad_probability is not None else (1.0 if release.bad else 0.0)
    bad = bool(rng.random() < p)
    drawn: dict[str, float | None] = {}
    defects = tuple(
        _realize(d, name, rng if bad else None, drawn) for d, name in zip(release.defects, _defect_names(release.defects))
    )
    if bad:
        concrete = release.model_copy(update={"defects": defects, "bad_probability": None})
    else:
        migration = release.migration and release.migration.model_copy(update={"backward_compatible": True})
        concrete = release.model_copy(update={"defects": (), "migration": migration, "bad_probability": None})
    return scenario.model_copy(update={"release": concrete}), drawn
