"""The station kinds a process meets: their stationary-law tables (station.py), kept and stacked for lookups.

A pool's queue is a station kind (workers, places, service rate and law,
arrivals, dispatch); its table over the arrival rate costs milliseconds to a
second, so tables are kept across a process's runs, and the kinds a run
meets are rows of stacked arrays, one gather per lookup. The stacks are
shared by the runs of a process too (a run's kinds are mostly the last run's):
`Stations.shared()`.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from simlab.dists import Exponential

from simlab.engines.fluid import table_store
from simlab.engines.fluid.station import FIELDS, GRID, RHO_MAX, stationary

NEAREST = ("theta", "trunc", "shape")  # fields read at the nearer grid point (they may stand for unbounded)
SETTLED = 1e-3  # a pool's mean number in system this close (relative) to its stationary mean is at equilibrium
FEW = 8  # up to this many stations a step is solved in Python floats (a single run), else in arrays


def _grown(table: np.ndarray, rows: int, capacity: int) -> np.ndarray:  # zeros past the rows: untouched until used
    out = np.zeros((capacity,) + table.shape[1:])
    out[:rows] = table[:rows]
    return out


TABLES_KEPT = 256
"""Station tables kept across runs in a process (about 130 kB each): Monte Carlo runs of one scenario meet
the same kinds again, and a table costs milliseconds (least-outstanding's dispatch chain up to a second, round
robin's simulated E_n/G/c law for lognormal service 0.2–0.8 s per instance count of its grid)."""
_TABLES: dict[tuple, dict] = {}


def _table(key: tuple, service) -> dict:
    row = _TABLES.pop(key, None)
    if row is None:
        row = table_store.load(key, FIELDS)  # built by an earlier process (table_store.py)
    if row is None:
        row = stationary(*key[:8], survival=None if service is None else service[1],
                         mgf=None if service is None else service[2], dispatch=key[9],
                         shape=None if service is None or len(service) < 4 else service[3])
        table_store.save(key, FIELDS, row)
    if len(_TABLES) >= TABLES_KEPT:
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key] = row  # most recently used last
    return row


SHARED_KINDS = 128
"""Kinds stacked in a thread's shared Stations (about 260 kB each in its two stacks); a fresh one starts past
that (the runs holding the full one keep it)."""
_LOCAL = threading.local()  # a thread's shared Stations: a run's kinds are rows its thread's next runs read too


class Stations:
    """Tables of station kinds, and the vectorised step and lookup over (R, pools) arrays of kinds."""

    @classmethod
    def shared(cls) -> "Stations":
        """The Stations of this thread's runs: the kinds earlier runs met are stacked rows already (ids only
        name rows, so a run's numbers do not depend on which were there before it)."""
        stations = getattr(_LOCAL, "stations", None)
        if stations is None or len(stations._ids) >= SHARED_KINDS:
            stations = _LOCAL.stations = cls()
        return stations

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}  # kind key -> id, a row of the tables (of `_capacity` rows)
        self._capacity = 0
        self._stack: dict[str, np.ndarray] = {}
        self._all = np.zeros((0, GRID, len(FIELDS)))  # every field's table again, stacked on a last axis (FIELDS order)

    def kind(self, c: float, K: float, mu: float, ca2: float, cs2: float, deadline: float, m3: float = 6.0,
             service=None, instances: int = 1, dispatch: str = "least_outstanding") -> int:
        """Id of the station kind; `service` is (a hashable name of the service law that determines it, its
        survival function, its moment generating function or None[, (a name of the law up to scale, the survival
        and mean of one fixed scale)]), or None for an exponential law of rate mu;
        `instances` and `dispatch` as in `stationary`."""
        key = (float(c), float(K), round(float(mu), 9), round(float(ca2), 3), round(float(cs2), 4), float(deadline),
               round(float(m3), 3), int(instances), None if service is None else service[0],
               dispatch if instances > 1 else None)
        i = self._ids.get(key)
        if i is None:
            i = self._ids[key] = len(self._ids)
            row = _table(key, service)
            if i >= self._capacity:
                self._capacity = max(64, 2 * self._capacity)
                self._stack = {f: _grown(self._stack.get(f, np.zeros((0, GRID))), i, self._capacity) for f in FIELDS}
                self._all = _grown(self._all, i, self._capacity)
            for j, f in enumerate(FIELDS):
                self._stack[f][i] = self._all[i, :, j] = row[f]
        return i

    def _read(self, fields, ids: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
        pos = np.minimum(np.maximum(u, 0.0), 1.0) * (GRID - 1)  # np.clip's values, without its slow wrapper
        i0 = np.minimum(pos.astype(np.int64), GRID - 2)
        f = pos - i0
        g, near = 1.0 - f, f < 0.5
        if fields is FIELDS:  # the whole law: one gather of every field, the same operations on each element
            lo, hi = self._all[ids, i0], self._all[ids, i0 + 1]
            mix, pick = lo * g[..., None] + hi * f[..., None], np.where(near[..., None], lo, hi)
            return {field: (pick if field in NEAREST else mix)[..., j] for j, field in enumerate(FIELDS)}
        out = {}
        for field in fields:
            t = self._stack[field]
            lo, hi = t[ids, i0], t[ids, i0 + 1]
            # theta, trunc and shape may stand for unbounded (BIG): take the nearer grid point
            out[field] = np.where(near, lo, hi) if field in NEAREST else lo * g + hi * f
        return out

    @staticmethod
    def u_of(rho: np.ndarray) -> np.ndarray:
        return np.sqrt(np.minimum(np.maximum(rho, 0.0), RHO_MAX) / RHO_MAX)

    def level(self, ids: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The stationary mean number in system at grid position u."""
        return self._read(("L",), ids, u)["L"]

    def law(self, ids: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
        """The stationary law at grid position u (u_of(ρ)) of each element's kind."""
        return self._read(FIELDS, ids, u)

    def step(self, ids: np.ndarray, L0: np.ndarray, lam: np.ndarray, cmu: np.ndarray, h: float = 1.0,
             iterations: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Implicit Euler: find λₑ with L(λₑ) = L0 + h·(λ − λₑ)·(1 − B(λₑ)); returns (L1, u of λₑ).

        Per station: L0 its mean number in system, lam its arrival rate, cmu its full service rate. The left
        side grows with λₑ and the right side shrinks, so bisection on the grid position converges.
        """
        if np.size(ids) <= FEW:
            return self._step_few(ids, L0, lam, cmu, h, iterations)
        lo, hi = np.zeros_like(L0), np.ones_like(L0)
        flat = np.ravel(ids)
        t_l, t_b = self._stack["L"][flat], self._stack["B"][flat]  # each element's rows, gathered once
        rows = np.arange(flat.size).reshape(np.shape(ids))
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            pos = mid * (GRID - 1)
            i0 = np.minimum(pos.astype(np.int64), GRID - 2)
            f = pos - i0
            level = t_l[rows, i0] * (1.0 - f) + t_l[rows, i0 + 1] * f
            block = t_b[rows, i0] * (1.0 - f) + t_b[rows, i0 + 1] * f
            gap = level - L0 - h * (lam - RHO_MAX * mid * mid * cmu) * (1.0 - block)
            above = gap > 0
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        u = 0.5 * (lo + hi)
        return self.level(ids, u), u

    def _step_few(self, ids, L0, lam, cmu, h, iterations):
        """`step` for a handful of stations (a single run's pools), in floats: the same operations in the same
        order as the array version, so the same numbers, without numpy's cost per call on two elements."""
        ids, L0, lam, cmu = np.broadcast_arrays(ids, L0, lam, cmu)
        u = np.empty(np.shape(L0))
        for idx in np.ndindex(u.shape):
            u[idx] = self.bisect(int(ids[idx]), float(L0[idx]), float(lam[idx]), float(cmu[idx]), h, iterations)
        return self.level(ids, u), u

    def bisect(self, i: int, l0: float, la: float, cm: float, h: float = 1.0, iterations: int = 32) -> float:
        """One station's `step` in floats: u of λₑ, by the same operations in the same order as the array
        version (the rows' memoryviews give Python floats, not numpy scalars)."""
        t_l, t_b = memoryview(self._stack["L"][i]), memoryview(self._stack["B"][i])
        top, last, rho_max = GRID - 1, GRID - 2, RHO_MAX
        lo, hi, at = 0.0, 1.0, -1
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            pos = mid * top
            i0 = int(pos)
            if i0 > last:
                i0 = last
            if i0 != at:  # a grid cell's values, read once while the bisection stays in it
                at, l_0, l_1, b_0, b_1 = i0, t_l[i0], t_l[i0 + 1], t_b[i0], t_b[i0 + 1]
            f = pos - i0
            g = 1.0 - f  # as (1.0 - f) in the array version
            if (l_0 * g + l_1 * f) - l0 - h * (la - rho_max * mid * mid * cm) * (1.0 - (b_0 * g + b_1 * f)) > 0:
                hi = mid
            else:
                lo = mid
        return 0.5 * (lo + hi)

    def law_one(self, ids: list[int], u: list[float]) -> dict[str, list[float]]:
        """`law` of a few stations in floats, each field a list (the same operations as `_read`)."""
        rows = []
        for i, x in zip(ids, u):
            pos = (0.0 if x < 0.0 else (1.0 if x > 1.0 else x)) * (GRID - 1)
            i0 = min(int(pos), GRID - 2)
            f = pos - i0
            g, near = 1.0 - f, f < 0.5
            lo, hi = self._all[i, i0].tolist(), self._all[i, i0 + 1].tolist()
            rows.append([(a if near else b) if field in NEAREST else a * g + b * f
                         for field, a, b in zip(FIELDS, lo, hi)])
        return {field: [row[j] for row in rows] for j, field in enumerate(FIELDS)}

    def level_one(self, i: int, u: float) -> float:
        """`level` of one station in floats (the same operations as `_read`)."""
        pos = (0.0 if u < 0.0 else (1.0 if u > 1.0 else u)) * (GRID - 1)
        i0 = min(int(pos), GRID - 2)
        f = pos - i0
        t = self._stack["L"]
        return t.item(i, i0) * (1.0 - f) + t.item(i, i0 + 1) * f


def pool_kinds(plane, keys, leak, n_live):
    """Kind (Stations id), station count and full service rate of each of a Plane's pools: one pooled station
    of n·c workers and n·K places under least-outstanding and power-of-two balancing, n stations of c and K
    otherwise (round robin's arrivals to one of n stations have SCV 1/n)."""
    out = np.zeros(keys.shape, dtype=np.int64), np.ones(keys.shape), np.ones(keys.shape)
    for idx in np.ndindex(keys.shape):
        key, f, n = int(keys[idx]), float(leak[idx]), float(n_live[idx])
        comps, mean, scv, cdf = plane.model.service(plane._table[key][4], f)
        mu = 1.0 / max(mean, 1e-9)
        instances = 1
        if plane.pooled:  # the table of a nearby worker count (2% apart above 64); ρ from the true capacity
            capacity, per, ca2 = max(n * plane.workers, 1e-9), 1.0, 1.0
            c = _table_workers(capacity)
            places = round(c * plane.queue_limit / plane.workers)
            if plane.balancer in ("least_outstanding", "power_of_two"):  # on instances, each with its own queue
                instances = max(round(c / plane.workers), 1)
        else:
            per = max(round(n), 1)
            capacity, c, places = plane.workers, plane.workers, plane.queue_limit
            ca2 = 1.0 / per if plane.balancer == "round_robin" else 1.0
        exponential = isinstance(plane.model.dist, Exponential) and len(comps) == 1 and comps[0][2] == 0.0
        name = (plane.model.dist, float(plane.model.grid[-1]), len(plane.model.grid), plane._table[key][4],
                round(f, 3))  # the same across runs
        _, mean1, _, cdf1 = plane.model.service(plane._table[key][4], 1.0)  # the law up to a leak's scale
        service = None if exponential else (name, _survival(plane.model.grid, cdf), plane.model.mgf(comps),
                                            (name[:-1], _survival(plane.model.grid, cdf1), mean1))
        m3 = plane.model.third_moment(comps) * mu**3
        out[0][idx] = plane.stations.kind(c, places, mu, ca2, scv, plane.timeout, m3, service, instances,
                                          plane.balancer)
        out[1][idx], out[2][idx] = per, capacity * mu
    return out


def _survival(grid, cdf):
    return lambda x: 1.0 - np.interp(x, grid, cdf)


def _table_workers(workers: float) -> int:
    """The worker count whose table stands for a pooled station of this many: exact up to 64, then 2% apart."""
    if workers <= 64:
        return max(1, round(workers))
    return round(64 * 1.02 ** round(math.log(workers / 64) / math.log(1.02)))
