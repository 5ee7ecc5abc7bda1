"""The request engine's load balancer: which instance an attempt goes to.

A mixin of RequestEngine. The controller's split (`weight`, the new version's
share, None: by instance) picks a version's pool, the scenario's policy picks an
instance in it, and a refused connection gets one more try on another up
instance when the balancer redispatches. The pools are kept by the fleet's
rotation (simlab.engines.request.fleet); the engine calls `_choose` directly
when there is no split.
"""
from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Callable

from simlab.engines.instance import READY, Instance
from simlab.engines.versions import NEW, OLD

if TYPE_CHECKING:  # pragma: no cover
    from simlab.engines.draws import Draws

_OUTSTANDING = attrgetter("outstanding")


class Balancing:
    weight: float | None  # share of traffic for the new version, None: by instance
    pools: tuple[list[Instance], list[Instance]]  # instances in rotation, by version
    pool_all: list[Instance]  # every instance in rotation
    rr: list[int]  # round robin's position in the old pool, the new pool and pool_all
    u_lb: "Draws"  # the balancer's uniform draws
    _choose: Callable[[list[Instance]], Instance]  # the policy, bound by `_policy`

    def _policy(self, name: str) -> Callable[[list[Instance]], Instance]:
        return {
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
        return min(pool, key=_OUTSTANDING)

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
