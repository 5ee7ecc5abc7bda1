"""Field types shared by the scenario model: durations, rates, counts-or-percentages."""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from simlab.units import parse_duration


class Frozen(BaseModel):
    """Base of every scenario model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _duration(value: object) -> float:
    return parse_duration(value)


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a duration greater than 0, found {value:g}s")
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(json_schema_extra={"examples": ["30s", "5m", 2.5]})]
"""Seconds; accepts 250ms, 30s, 5m, 2h, 1d or a plain number of seconds."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _count_or_percent(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a count (e.g. 2) or a percentage (e.g. '25%'), found {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a count of 0 or more, found {value}")
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
