"""Service-time distributions that know their analytic moments (Ciw-style) and sample from a passed Generator."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simlab.scenario import distributions as spec


@dataclass(frozen=True)
class Distribution:
    """Base: `mean`, `variance`, `scv` (squared coefficient of variation) and `sample(rng, n)`."""

    @property
    def mean(self) -> float:
        raise NotImplementedError

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def scv(self) -> float:
        return self.variance / self.mean**2 if self.mean > 0 else 0.0

    def quantile(self, q: float) -> float:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Distribution):
    value: float

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def quantile(self, q: float) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)


@dataclass(frozen=True)
class Exponential(Distribution):
    rate: float

    @property
    def mean(self) -> float:
        return 1.0 / self.rate

    @property
    def variance(self) -> float:
        return 1.0 / self.rate**2

    def quantile(self, q: float) -> float:
        return -math.log1p(-q) / self.rate

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, n)


@dataclass(frozen=True)
class LogNormal(Distribution):
    mu: float
    sigma: float

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    @property
    def variance(self) -> float:
        return (math.exp(self.sigma**2) - 1) * math.exp(2 * self.mu + self.sigma**2)

    def quantile(self, q: float) -> float:
        from scipy.special import ndtri

        return math.exp(self.mu + self.sigma * float(ndtri(q)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, n)


@dataclass(frozen=True)
class Empirical(Distribution):
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.values, q))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values), n)


def from_spec(s: spec.Constant | spec.Exponential | spec.LogNormal | spec.Empirical) -> Distribution:
    """The distribution a scenario's spec describes."""
    if isinstance(s, spec.Constant):
        return Constant(s.value)
    if isinstance(s, spec.Exponential):
        return Exponential(1.0 / s.mean)
    if isinstance(s, spec.LogNormal):
        return LogNormal(*s.mu_sigma())
    if isinstance(s, spec.Empirical):
        return Empirical(tuple(s.samples))
    raise TypeError(f"unknown distribution spec {s!r}")
