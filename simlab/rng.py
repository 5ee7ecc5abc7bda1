"""Seeded random streams, one per component, so strategies are compared on the same draws."""
from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, component: str, *key: int) -> np.random.Generator:
    """The Generator of `component` for run `seed`, and for one `key` of it when given (e.g. a monitoring
    window's version and edges: the same draws whenever, however often and in whatever order it is asked for).

    The spawn key is derived from the component's name, not from creation
    order, so adding a component never shifts another one's draws: the
    traffic of seed 7 is the same whichever strategy or defect is simulated.
    """
    spawn = (zlib.crc32(component.encode()), *(int(k) for k in key))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn)))


class Streams:
    """Lazily created named streams of one run."""

    def __init__(self, seed: int):
        self.seed = seed
        self._cache: dict[str, np.random.Generator] = {}

    def __getitem__(self, component: str) -> np.random.Generator:
        if component not in self._cache:
            self._cache[component] = stream(self.seed, component)
        return self._cache[component]
