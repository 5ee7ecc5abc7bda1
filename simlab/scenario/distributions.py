"""Distribution specs as written in a scenario (service times); behaviour lives in simlab.dists."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from simlab.scenario.files import read_data_text
from simlab.scenario.types import MAX_DURATION, Duration, Frozen, bounded_duration, number
from simlab.units import format_duration, parse_duration

Z99 = 2.3263478740408408  # standard normal quantile at 0.99
Z95 = 1.6448536269514722
MAX_SIGMA = 5.0
"""A p99 up to 10^5 times the median; beyond, variances overflow and no service behaves so."""


class Constant(Frozen):
    dist: Literal["constant"]
    value: Duration


class Exponential(Frozen):
    dist: Literal["exponential"]
    mean: Duration = Field(gt=0)


class LogNormal(Frozen):
    """Log-normal given by `mean` with `p99` or `sigma`, or by `median` with `p95`, `p99` or `sigma`."""

    dist: Literal["lognormal"]
    mean: Duration | None = None
    median: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None
    sigma: number(gt=0, le=MAX_SIGMA) | None = None

    @model_validator(mode="after")
    def _two_parameters(self) -> "LogNormal":
        self.mu_sigma()  # raises ValueError with a clear message when under- or over-determined
        return self

    def mu_sigma(self) -> tuple[float, float]:
        """The (mu, sigma) of the underlying normal."""
        given = {k for k in ("mean", "median", "p95", "p99", "sigma") if getattr(self, k) is not None}
        if self.median is not None and len(given) == 2:
            if self.median <= 0:
                raise ValueError(f"median: expected a median greater than 0, found {self.median:g}s")
            mu = math.log(self.median)
            if self.sigma is not None:
                return mu, self.sigma
            q, z = (self.p95, Z95) if self.p95 is not None else (self.p99, Z99)
            name = "p95" if self.p95 is not None else "p99"
            if q <= self.median:
                raise ValueError(f"{name}: expected a value above the median ({self.median:g}s), found {q:g}s")
            if math.log(q / self.median) / z > MAX_SIGMA:
                raise ValueError(f"{name}: expected at most {self.median * math.exp(MAX_SIGMA * z):.4g}s (a log-normal "
                                 f"of sigma {MAX_SIGMA:g} or less, here median {self.median:g}s), found {q:g}s")
            return mu, math.log(q / self.median) / z
        if self.mean is not None and len(given) == 2 and (self.p99 is not None or self.sigma is not None):
            if self.mean <= 0:
                raise ValueError(f"mean: expected a mean greater than 0, found {self.mean:g}s")
            if self.sigma is not None:
                return math.log(self.mean) - self.sigma**2 / 2, self.sigma
            gap = math.log(self.p99 / self.mean) if self.p99 > 0 else -1.0
            if gap <= 0:
                raise ValueError(f"p99: expected a value greater than the mean ({self.mean:g}s), found {self.p99:g}s")
            disc = Z99**2 - 2 * gap
            if disc < 0:
                limit = self.mean * math.exp(Z99**2 / 2)
                raise ValueError(
                    f"p99: expected at most {limit:.4g}s (no log-normal has a p99 above 15x its mean, "
                    f"here {self.mean:g}s), found {self.p99:g}s"
                )
            sigma = Z99 - math.sqrt(disc)
            return math.log(self.mean) - sigma**2 / 2, sigma
        raise ValueError(
            "expected exactly two of: mean+p99, mean+sigma, median+p95, median+p99, median+sigma; "
            f"found {', '.join(sorted(given)) or 'none'}"
        )


class Empirical(Frozen):
    """Samples of seconds, inline (`samples`) or one per line in `file` (relative to the scenario)."""

    dist: Literal["empirical"]
    file: str | None = None
    samples: tuple[float, ...] = ()

    @field_validator("samples", mode="before")
    @classmethod
    def _parse_samples(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return tuple(bounded_duration(v) for v in value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _load_file(cls, data: object, info: ValidationInfo) -> object:
        if not isinstance(data, dict) or not isinstance(data.get("file"), str) or not data["file"] or data.get("samples"):
            return data  # the fields' own validation says what is wrong
        base = Path((info.context or {}).get("base_dir", "."))
        path = Path(data["file"])
        path = path if path.is_absolute() else base / path
        lines = read_data_text(path, data["file"], "file of samples").splitlines()
        samples = []
        for number, line in enumerate(lines, 1):
            text = line.split("#")[0].strip().split(",")[-1].strip()
            if not text:
                continue
            try:
                samples.append(parse_duration(text))
            except ValueError:
                if number == 1:  # a header line
                    continue
                raise ValueError(f"file: expected a duration on line {number} of {path.name}, found {text!r}") from None
            if samples[-1] > MAX_DURATION:
                raise ValueError(f"file: expected a duration of at most {format_duration(MAX_DURATION)} on line "
                                 f"{number} of {path.name}, found {text!r}")
        return {**data, "samples": tuple(samples)}

    @model_validator(mode="after")
    def _non_empty(self) -> "Empirical":
        if not self.samples:
            raise ValueError("expected `file` or `samples` with at least one value")
        return self


def _tag(value: object) -> object:
    # `service_time: 40ms` is shorthand for a constant.
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


DistributionSpec = Annotated[
    Union[Constant, Exponential, LogNormal, Empirical],
    BeforeValidator(_tag),
    Field(discriminator="dist"),
]
