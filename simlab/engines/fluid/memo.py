"""Caches for the data plane: most ticks change nothing a formula reads."""
from __future__ import annotations

import numpy as np


class ElementMemo:
    """An elementwise function of same-shaped arrays, recomputed only at the elements whose inputs changed."""

    def __init__(self, fn):
        self.fn, self.inputs, self.outputs = fn, None, None
        self.kept: dict = {}  # outputs of earlier inputs, by their bytes (as ArrayMemo keeps them)

    def __call__(self, *inputs):
        if self.inputs is not None and _same_bytes(inputs, self.inputs):
            return self.outputs  # bytewise the same inputs (the common case): no elementwise comparison
        key = _key(inputs)
        if key in self.kept:
            self.outputs, self.inputs = self.kept[key], tuple(np.array(a, copy=True) for a in inputs)
            return self.outputs
        if self.inputs is None or inputs[0].shape != self.inputs[0].shape:
            self.outputs = tuple(np.asarray(o) for o in self.fn(*inputs))
        else:
            changed = inputs[0] != self.inputs[0]
            for a, b in zip(inputs[1:], self.inputs[1:]):
                changed |= a != b
            if not np.count_nonzero(changed):
                return self.outputs
            idx = np.nonzero(changed)
            outputs = tuple(o.copy() for o in self.outputs)
            for o, part in zip(outputs, self.fn(*(a[idx] for a in inputs))):
                o[idx] = part
            self.outputs = outputs
        self.inputs = tuple(np.array(a, copy=True) for a in inputs)
        if len(self.kept) >= ArrayMemo.KEPT:
            self.kept.clear()
        self.kept[key] = self.outputs
        return self.outputs


class ArrayMemo:
    """A function of whole arrays, recomputed only when one of them changed (NaN equals NaN); the outputs of
    earlier inputs are kept too (a pool's counts go back and forth as instances crash and restart), by their
    bytes, so a kept output is the function's own for those very inputs."""

    KEPT = 256

    def __init__(self, fn):
        self.fn, self.inputs, self.output = fn, None, None
        self.kept: dict = {}

    def __call__(self, *inputs):
        if self.inputs is not None and _same_bytes(inputs, self.inputs):
            return self.output
        if self.inputs is None or not _all_equal(inputs, self.inputs):
            inputs = tuple(np.array(a, copy=True) for a in inputs)
            key = _key(inputs)
            output = self.kept.get(key)
            if output is None:
                output = self.fn(*inputs)
                if len(self.kept) >= self.KEPT:
                    self.kept.clear()
                self.kept[key] = output
            self.output, self.inputs = output, inputs
        return self.output


def _same_bytes(inputs, kept) -> bool:
    """The same dtypes, shapes and bytes: equal in every sense the memos ask for (a quick test, then theirs)."""
    for a, b in zip(inputs, kept):
        a = np.asarray(a)
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            return False
    return True


def _all_equal(inputs, kept) -> bool:
    """Every input equal to its kept array (NaN equals NaN); array_equal's test only where the bytes differ."""
    for a, b in zip(inputs, kept):
        a = np.asarray(a)
        if a.dtype != b.dtype or a.shape != b.shape or a.size > 8:
            if not np.array_equal(a, b, equal_nan=True):
                return False
        elif a.tobytes() != b.tobytes() and not all(x == y or (x != x and y != y)
                                                    for x, y in zip(a.ravel().tolist(), b.ravel().tolist())):
            return False  # (a few elements: their test in Python numbers)
    return True


def _key(inputs) -> tuple:
    return tuple((a.dtype.str, a.shape, a.tobytes()) for a in map(np.asarray, inputs))
