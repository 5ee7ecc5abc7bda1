"""Random draws pulled in numpy chunks and handed out one at a time (fast per-event sampling), or as a block."""
from __future__ import annotations

from typing import Callable

import numpy as np

CHUNK = 8192


class Draws:
    """A refilling buffer of draws from `sample(rng, n)`; same seed, same sequence, however they are taken."""

    __slots__ = ("_sample", "_rng", "_buf", "_arr", "_i")

    def __init__(self, rng: np.random.Generator, sample: Callable[[np.random.Generator, int], np.ndarray]):
        self._rng, self._sample = rng, sample
        self._buf: list[float] = []
        self._arr = np.empty(0)
        self._i = 0

    def _refill(self) -> None:
        self._arr = self._sample(self._rng, CHUNK)
        self._buf, self._i = self._arr.tolist(), 0

    def next(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._refill()
            i = 0
        self._i = i + 1
        return self._buf[i]

    def ahead(self, most: int) -> np.ndarray:
        """Up to `most` (at least one) of the next draws, not yet taken: `take` says how many were used."""
        if self._i >= len(self._buf):
            self._refill()
        return self._arr[self._i:self._i + most]

    def take(self, n: int) -> None:
        self._i += n


def uniforms(rng: np.random.Generator) -> Draws:
    return Draws(rng, lambda g, n: g.random(n))


def exponentials(rng: np.random.Generator, mean: float = 1.0) -> Draws:
    return Draws(rng, lambda g, n: g.exponential(mean, n))
