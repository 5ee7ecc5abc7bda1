"""Field types shared by the scenario model: durations, rates, counts-or-percentages, and their bounds.

Every number with a physical meaning is bounded, generously for real fleets
(tens of thousands of instances, millions of requests per second, a year of
simulated time) and tightly enough that no value reaches an overflow, a
runaway allocation or a loop that never ends. Numbers are strict: a YAML
boolean (`yes`) or a quoted string is not a number, a float is not a count.
Whether a run of that size fits this machine is another question, answered
by simlab.scenario.footprint.
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from simlab.units import format_duration, parse_duration

MAX_DURATION = 365 * 86400.0
"""Any duration: a run, a bake, a timeout, an MTBF, an SLO window."""
MIN_DURATION = 1e-6
"""The shortest duration other than 0 (squared, a shorter one can vanish in floating point)."""
MAX_INSTANCES = 100_000
MAX_RPS = 1e7
MAX_MULTIPLIER = 1000.0
"""Spikes, latency defects, diurnal peak-to-trough, memory-leak slowdown."""
MAX_LIST = 100
"""Spikes, defects, failures."""


class Frozen(BaseModel):
    """Base of every scenario model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def bounded_duration(value: object) -> float:
    """Seconds of a duration as written, 0 or from MIN_DURATION to MAX_DURATION; ValueError saying what was expected."""
    seconds = parse_duration(value)
    if seconds > MAX_DURATION:
        raise ValueError(f"expected a duration of at most {format_duration(MAX_DURATION)}, found {value!r}")
    if 0 < seconds < MIN_DURATION:
        raise ValueError(f"expected 0 or a duration of at least 1µs (0.000001), found {value!r}")
    return seconds


def _duration(value: object) -> float:
    return bounded_duration(value)


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a duration greater than 0, found {value:g}s")
    return value


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None):
    """A float field: finite, within bounds, and strict (`yes` or `"5"` is not a number; an int is)."""
    return Annotated[float, Strict(), Field(ge=ge, gt=gt, le=le, lt=lt, allow_inf_nan=False)]


def whole(*, ge: int | None = None, le: int | None = None):
    """An int field within bounds; strict (`4.0`, `1e9` and `yes` are not whole numbers here)."""
    return Annotated[int, Strict(), Field(ge=ge, le=le)]


Duration = Annotated[float, Field(le=MAX_DURATION), BeforeValidator(_duration),
                     Field(json_schema_extra={"examples": ["30s", "5m", 2.5]})]
"""Seconds; accepts 250ms, 30s, 5m, 2h, 1d or a plain number of seconds, up to MAX_DURATION."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Probability = number(ge=0.0, le=1.0)
Rate = number(ge=0.0, le=MAX_RPS)
Multiplier = number(ge=0.0, le=MAX_MULTIPLIER)

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _count_or_percent(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a count (e.g. 2) or a percentage (e.g. '25%'), found {value!r}")
    if isinstance(value, int):
        if value < 0 or value > MAX_INSTANCES:
            raise ValueError(f"expected a count from 0 to {MAX_INSTANCES}, found {value}")
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match and 0 <= float(match.group(1)) <= 100:
            return f"{float(match.group(1)):g}%"
    raise ValueError(f"expected a count (e.g. 2) or a percentage between 0% and 100% (e.g. '25%'), found {value!r}")


CountOrPercent = Annotated[int | str, BeforeValidator(_count_or_percent)]


def resolve_count(value: int | str, total: int, *, round_up: bool) -> int:
    """A count-or-percentage of `total` instances, as Kubernetes rounds it (surge up, unavailable down)."""
    if isinstance(value, int):
        return value
    share = float(value.rstrip("%")) / 100.0 * total
    return int(math.ceil(share - 1e-9)) if round_up else int(math.floor(share + 1e-9))
