"""The request engine's load balancer: which instance an attempt goes to.

A mixin of RequestEngine. The controller's split (`weight`, the new version's
share, None: by instance) picks a version's pool, the scenario's policy picks an
instance in it, and a refused connection gets one more try on another up
instance when the balancer redispatches. The pools are kept by the fleet's
rotation (simlab.engines.request.fleet); the engine calls `_choose` (or the
least-outstanding index) directly when there is no split.

Least-outstanding picks, among the pool's instances with the fewest attempts
outstanding, the first in rotation order (what `min` over the pool gives). It
reads that from an `OutstandingIndex` in constant time per attempt, not from a
scan of the pool, so a request costs the same at any fleet size.
"""
from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Callable

from simlab.engines.instance import READY, Instance
from simlab.engines.versions import NEW, OLD

if TYPE_CHECKING:  # pragma: no cover
    from simlab.engines.draws import Draws

_OUTSTANDING = attrgetter("outstanding")


class OutstandingIndex:
    """In-rotation instances by version and outstanding count: bucket k of a version is a bitmask of the
    rotation positions (`Instance.seq`) of its instances with k outstanding.

    The lowest set bit of the lowest non-empty bucket is the instance `min(pool, key=outstanding)` returns,
    since a pool lists its instances in rotation order. Positions are handed out in the order instances
    rotate in and renumbered (order kept) when the retired ones outnumber the live ones, so masks stay
    about as wide as the fleet.
    """

    def __init__(self) -> None:
        self.buckets: tuple[list[int], list[int]] = ([0], [0])
        self.low = [0, 0]  # no instance of the version has fewer outstanding than this
        self.count = [0, 0]  # instances in rotation, by version
        self.by_seq: list[Instance | None] = []

    def add(self, inst: Instance, pool_all: list[Instance]) -> None:
        """`inst` has just rotated in (it is last in `pool_all`)."""
        if len(self.by_seq) >= 2 * len(pool_all) + 64:
            self._renumber(pool_all)
            return
        inst.seq, inst.lo_bit = len(self.by_seq), 1 << len(self.by_seq)
        self.by_seq.append(inst)
        self.count[inst.version] += 1
        self._set(inst, inst.outstanding)

    def remove(self, inst: Instance) -> None:
        """`inst` has just rotated out."""
        self.buckets[inst.version][inst.outstanding] ^= inst.lo_bit
        self.by_seq[inst.seq] = None
        self.count[inst.version] -= 1
        inst.lo_bit = 0

    def up(self, inst: Instance, k: int) -> None:
        """An in-rotation instance went from k outstanding to k + 1 (`moved`, for the dispatch path)."""
        buckets, bit = self.buckets[inst.version], inst.lo_bit
        buckets[k] ^= bit
        if k + 1 == len(buckets):
            buckets.append(bit)
        else:
            buckets[k + 1] |= bit

    def down(self, inst: Instance, k: int) -> None:
        """An in-rotation instance went from k outstanding to k - 1 (`moved`, for the completion path)."""
        v, bit = inst.version, inst.lo_bit
        buckets = self.buckets[v]
        buckets[k] ^= bit
        buckets[k - 1] |= bit
        if k - 1 < self.low[v]:
            self.low[v] = k - 1

    def moved(self, inst: Instance, old: int, new: int) -> None:
        """An in-rotation instance's outstanding count went from `old` to `new` (one up, one down, or to 0)."""
        buckets, bit = self.buckets[inst.version], inst.lo_bit
        buckets[old] ^= bit
        if new == len(buckets):
            buckets.append(bit)
        else:
            buckets[new] |= bit
        if new < self.low[inst.version]:
            self.low[inst.version] = new

    def _set(self, inst: Instance, k: int) -> None:
        buckets = self.buckets[inst.version]
        while len(buckets) <= k:
            buckets.append(0)
        buckets[k] |= inst.lo_bit
        if k < self.low[inst.version]:
            self.low[inst.version] = k

    def _renumber(self, pool_all: list[Instance]) -> None:
        self.buckets, self.low, self.by_seq = ([0], [0]), [0, 0], list(pool_all)
        self.count = [sum(1 for i in pool_all if i.version == v) for v in (OLD, NEW)]
        for i, inst in enumerate(pool_all):
            inst.seq, inst.lo_bit = i, 1 << i
            self._set(inst, inst.outstanding)
        self.low = [min((i.outstanding for i in pool_all if i.version == v), default=0) for v in (OLD, NEW)]

    def _lowest(self, version: int) -> int:
        """The fewest outstanding in the version's (non-empty) pool."""
        buckets, k = self.buckets[version], self.low[version]
        while not buckets[k]:
            k += 1
        self.low[version] = k
        return k

    def least(self, version: int) -> Instance:
        """The version's first instance in rotation order among those with the fewest outstanding."""
        buckets, k = self.buckets[version], self.low[version]  # _lowest, inline: this runs once per request
        while not buckets[k]:
            k += 1
        self.low[version] = k
        mask = buckets[k]
        return self.by_seq[(mask & -mask).bit_length() - 1]

    def least_in_rotation(self) -> Instance | None:
        """The first instance in rotation order among those with the fewest outstanding, of either version."""
        if self.count[NEW]:
            return self.least_of_both() if self.count[OLD] else self.least(NEW)
        return self.least(OLD) if self.count[OLD] else None

    def least_of_both(self) -> Instance:
        """The same over both versions' (non-empty) pools: pool_all, in the same rotation order."""
        k_old, k_new = self._lowest(OLD), self._lowest(NEW)
        if k_old != k_new:
            return self.least(OLD) if k_old < k_new else self.least(NEW)
        mask = self.buckets[OLD][k_old] | self.buckets[NEW][k_new]
        return self.by_seq[(mask & -mask).bit_length() - 1]


class Balancing:
    weight: float | None  # share of traffic for the new version, None: by instance
    pools: tuple[list[Instance], list[Instance]]  # instances in rotation, by version
    pool_all: list[Instance]  # every instance in rotation
    rr: list[int]  # round robin's position in the old pool, the new pool and pool_all
    u_lb: "Draws"  # the balancer's uniform draws
    lo: OutstandingIndex | None  # least-outstanding's index (None under the other policies)
    _choose: Callable[[list[Instance]], Instance]  # the policy, bound by `_policy`

    def _policy(self, name: str) -> None:
        self.lo = OutstandingIndex() if name == "least_outstanding" else None
        self._choose = {
            "round_robin": self._round_robin, "random": self._random,
            "least_outstanding": self._least, "power_of_two": self._two_choices,
        }[name]

    def _pick(self) -> Instance | None:
        w = self.weight
        if w is None:
            pool = self.pool_all
        else:
            use_new = w >= 1.0 or (w > 0.0 and self.u_lb.next() < w)
            pool = self.pools[NEW] if use_new else self.pools[OLD]
            if not pool:
                pool = self.pools[OLD] if use_new else self.pools[NEW]
        if not pool:
            return None
        return self._choose(pool)

    def _round_robin(self, pool):
        key = 2 if pool is self.pool_all else pool[0].version
        self.rr[key] += 1
        return pool[self.rr[key] % len(pool)]

    def _random(self, pool):
        return pool[int(self.u_lb.next() * len(pool))]

    def _least(self, pool):
        pools = self.pools
        if pool is self.pool_all:
            return self.lo.least_in_rotation()
        if pool is pools[OLD] or pool is pools[NEW]:
            return self.lo.least(pool[0].version)
        return min(pool, key=_OUTSTANDING)  # a redispatch's list of up instances

    def _two_choices(self, pool):
        n = len(pool)
        a = pool[int(self.u_lb.next() * n)]
        b = pool[int(self.u_lb.next() * n)]
        return a if a.outstanding <= b.outstanding else b

    def _redispatch(self, refused: Instance) -> Instance | None:
        """The load balancer's one retry of a refused connection, on another up instance of the same pool."""
        pool = self.pool_all if self.weight is None else self.pools[refused.version]
        up = [i for i in pool if i.state == READY]
        if not up:
            up = [i for i in self.pool_all if i.state == READY]
        return self._choose(up) if up else None

    def _set_outstanding(self, inst: Instance, k: int) -> None:
        """Change an instance's outstanding count off the hot paths (the index follows)."""
        if self.lo is not None and inst.in_rotation:
            self.lo.moved(inst, inst.outstanding, k)
        inst.outstanding = k
