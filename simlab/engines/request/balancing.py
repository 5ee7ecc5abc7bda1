"""The request engine's load balancer: which instance an attempt goes to.

A mixin of RequestEngine. The controller's split (`weight`, the new version's
share, None: by instance) picks a version's pool, the scenario's policy picks an
instance in it, and a refused connection gets one more try on another up
instance when the balancer redispatches. The pools are kept by the fleet's
rotation (simlab.engines.request.fleet); the engine calls `_choose` (or the
least-outstanding index) directly when there is no split.

Least-outstanding is HAProxy's `balance leastconn` (src/lb_fwlc.c, the 2.6
branch simlab's staging runs): among the pool's instances with the fewest
attempts outstanding, the one that has had that count the longest. HAProxy
keeps its servers in an ebtree keyed by connections in flight; a server whose
count changes is deleted and re-inserted at its new key behind the servers
already there (duplicates are walked in insertion order), one coming up is
inserted at its key the same way, and the first server of the lowest key is
picked. So ties go first-in first-out: at low load, idle instances take turns
(round robin), and an instance that rotated in last is not starved. An attempt
that leaves its instance's count as it was (refused by a crashed instance,
rejected by a full queue) still sends the instance behind the others at that
count, as HAProxy's take-then-drop of the connection does. `OutstandingIndex`
reads the choice in constant time per attempt, whatever the fleet's size.
"""
from __future__ import annotations

from itertools import count
from typing import TYPE_CHECKING, Callable

from simlab.engines.instance import READY, Instance
from simlab.engines.versions import BASELINE, NEW, OLD

if TYPE_CHECKING:  # pragma: no cover
    from simlab.engines.draws import Draws


class OutstandingIndex:
    """In-rotation instances by version and outstanding count, each count's in the order they entered it.

    The instances of a version at count k form a ring through their `lo_prev` and `lo_next` around a head
    (a bare Instance, so that every link the hot paths follow is of one type): appended at the tail when
    they enter k, unlinked when they leave it, the first after the head is the oldest. Each entry takes a
    stamp (`lo_since`) from one counter over both versions, so the oldest of two versions' firsts at one
    count is the one with the smaller stamp. An OrderedDict per count (C, but hashed and allocating) cost
    140 ns more per request (pick, up and down: 215 ns here), at any fleet size.
    """

    def __init__(self) -> None:
        self.heads: tuple[list[Instance], ...] = ([_head()], [_head()], [_head()])  # OLD, NEW, BASELINE
        self.low = [0, 0, 0]  # no instance of the version has fewer outstanding than this
        self.count = [0, 0, 0]  # instances in rotation, by version
        self.stamps = count()

    def add(self, inst: Instance) -> None:
        """`inst` has just rotated in: it joins its count behind the instances already there."""
        self.count[inst.version] += 1
        self._enter(inst, inst.outstanding)

    def remove(self, inst: Instance) -> None:
        """`inst` has just rotated out."""
        prev, after = inst.lo_prev, inst.lo_next
        prev.lo_next, after.lo_prev = after, prev
        inst.lo_prev = inst.lo_next = None
        self.count[inst.version] -= 1

    def up(self, inst: Instance, k: int) -> None:
        """An in-rotation instance went from k outstanding to k + 1 (`moved`, for the dispatch path)."""
        prev, after = inst.lo_prev, inst.lo_next
        prev.lo_next, after.lo_prev = after, prev
        heads = self.heads[inst.version]
        if k + 1 == len(heads):
            heads.append(_head())
        head = heads[k + 1]
        tail = head.lo_prev
        tail.lo_next, inst.lo_prev, inst.lo_next, head.lo_prev = inst, tail, head, inst
        inst.lo_since = next(self.stamps)

    def down(self, inst: Instance, k: int) -> None:
        """An in-rotation instance went from k outstanding to k - 1 (`moved`, for the completion path)."""
        v = inst.version
        prev, after = inst.lo_prev, inst.lo_next
        prev.lo_next, after.lo_prev = after, prev
        head = self.heads[v][k - 1]
        tail = head.lo_prev
        tail.lo_next, inst.lo_prev, inst.lo_next, head.lo_prev = inst, tail, head, inst
        inst.lo_since = next(self.stamps)
        if k - 1 < self.low[v]:
            self.low[v] = k - 1

    def moved(self, inst: Instance, old: int, new: int) -> None:
        """An in-rotation instance's outstanding count went from `old` to `new` (no change: it keeps its place)."""
        if new != old:
            prev, after = inst.lo_prev, inst.lo_next
            prev.lo_next, after.lo_prev = after, prev
            self._enter(inst, new)

    def requeue(self, inst: Instance) -> None:
        """An in-rotation instance took an attempt and dropped it at once: behind the others at its count."""
        prev, after = inst.lo_prev, inst.lo_next
        prev.lo_next, after.lo_prev = after, prev
        self._enter(inst, inst.outstanding)

    @staticmethod
    def rank(inst: Instance) -> tuple[int, int]:
        """An in-rotation instance's place in the order of choice: its count, then when it entered it."""
        return inst.outstanding, inst.lo_since

    def _enter(self, inst: Instance, k: int) -> None:
        v = inst.version
        heads = self.heads[v]
        while len(heads) <= k:
            heads.append(_head())
        head = heads[k]
        tail = head.lo_prev
        tail.lo_next, inst.lo_prev, inst.lo_next, head.lo_prev = inst, tail, head, inst
        inst.lo_since = next(self.stamps)
        if k < self.low[v]:
            self.low[v] = k

    def _first(self, version: int) -> Instance:
        """The oldest entry of the version's lowest non-empty count (its pool is not empty)."""
        heads, k = self.heads[version], self.low[version]
        head = heads[k]
        while head.lo_next is head:
            k += 1
            head = heads[k]
        self.low[version] = k
        return head.lo_next

    def least(self, version: int) -> Instance:
        """The version's instance that has had the fewest outstanding the longest."""
        heads, k = self.heads[version], self.low[version]  # _first, inline: this runs once per request
        head = heads[k]
        while head.lo_next is head:
            k += 1
            head = heads[k]
        self.low[version] = k
        return head.lo_next

    def least_in_rotation(self) -> Instance | None:
        """The same over every instance in rotation, of any version (None when there is none)."""
        if self.count[BASELINE]:  # a canary's baseline in rotation: the oldest entry of the lowest count of all
            firsts = [self._first(v) for v in (OLD, NEW, BASELINE) if self.count[v]]
            return min(firsts, key=self.rank)
        if self.count[NEW]:
            return self.least_of_both() if self.count[OLD] else self.least(NEW)
        return self.least(OLD) if self.count[OLD] else None

    def least_of_both(self) -> Instance:
        """The same over both versions' (non-empty) pools: one ebtree in HAProxy, two rings here, stamps to merge."""
        a, b = self._first(OLD), self._first(NEW)
        if a.outstanding != b.outstanding:
            return a if a.outstanding < b.outstanding else b
        return a if a.lo_since < b.lo_since else b


def _head() -> Instance:
    """The head of an empty ring."""
    head = Instance(-1, -1, -1, 0.0)
    head.lo_prev = head.lo_next = head
    return head


class Balancing:
    weight: float | None  # share of traffic for the new version, None: by instance
    base_weight: float  # share of traffic for a canary's baseline (with an explicit weight)
    pools: tuple[list[Instance], ...]  # instances in rotation, by version (OLD, NEW, BASELINE)
    pool_all: list[Instance]  # every instance in rotation
    rr: list[int]  # round robin's position in the old, new and baseline pools and pool_all
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
        elif self.base_weight:
            pool = self._with_baseline(w)
        else:
            use_new = w >= 1.0 or (w > 0.0 and self.u_lb.next() < w)
            pool = self.pools[NEW] if use_new else self.pools[OLD]
            if not pool:
                pool = self.pools[OLD] if use_new else self.pools[NEW]
        if not pool:
            return None
        return self._choose(pool)

    def _with_baseline(self, w: float) -> list[Instance]:
        """The pool of a canary with a baseline: one draw splits new (w), baseline (base_weight) and old (the rest);
        an empty pool passes its share to the old one, an empty old pool to the new one, then the baseline."""
        u = self.u_lb.next()
        pools = self.pools
        pool = pools[NEW] if u < w else pools[BASELINE] if u < w + self.base_weight else pools[OLD]
        return pool or pools[OLD] or pools[NEW] or pools[BASELINE]

    def _round_robin(self, pool):
        key = 3 if pool is self.pool_all else pool[0].version
        self.rr[key] += 1
        return pool[self.rr[key] % len(pool)]

    def _random(self, pool):
        return pool[int(self.u_lb.next() * len(pool))]

    def _least(self, pool):
        pools = self.pools
        if pool is self.pool_all:
            return self.lo.least_in_rotation()
        if pool is pools[OLD] or pool is pools[NEW] or pool is pools[BASELINE]:
            return self.lo.least(pool[0].version)
        return min(pool, key=self.lo.rank)  # a redispatch's list of up instances

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
