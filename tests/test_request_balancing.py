"""Least-outstanding breaks ties as HAProxy's `balance leastconn` does: first in, first out at each count.

HAProxy (src/lb_fwlc.c) re-inserts a server whose connection count changes behind the servers already at
its new count, and picks the first server of the lowest count; simlab.engines.request.balancing says more.
At low load that is round robin over the idle instances, so no instance (a rollout's new ones, which
rotate in last) is starved. About 4 s in all.
"""
from __future__ import annotations

import math
from itertools import count

import numpy as np

from simlab.engines.instance import Instance
from simlab.engines.request.balancing import OutstandingIndex
from simlab.engines.request.engine import RequestEngine
from simlab.engines.versions import NEW, OLD
from tests.helpers.scenarios import scenario


def test_hand_built_sequence_follows_haproxys_first_in_first_out_rule():
    """Each pick written out from the rule; `old rule` notes where first-in-rotation order picked another."""
    a, b, c = (Instance(i, OLD, 0, 0.0) for i in range(3))
    d = Instance(3, NEW, 0, 0.0)
    index = OutstandingIndex()

    def send(inst):  # what the engine does when an attempt starts or queues
        index.up(inst, inst.outstanding)
        inst.outstanding += 1

    def finish(inst):
        index.down(inst, inst.outstanding)
        inst.outstanding -= 1

    for inst in (a, b, c):
        index.add(inst)
    assert index.least_in_rotation() is a  # at 0: a b c
    send(a)
    assert index.least_in_rotation() is b  # at 0: b c
    send(b)
    finish(a)
    assert index.least_in_rotation() is c  # at 0: c a (old rule: a)
    index.add(d)
    send(c)
    assert index.least_in_rotation() is a  # at 0: a d
    send(a)
    assert index.least_in_rotation() is d  # at 0: d, the new version's instance
    finish(b)
    assert index.least_in_rotation() is d  # at 0: d b (old rule: b, first in rotation)
    index.requeue(d)  # d refused the attempt (crashed): behind b at 0
    assert index.least_in_rotation() is b and index.least(NEW) is d
    assert min([d, c, b], key=index.rank) is b  # a redispatch's choice among up instances: b, at 0 before d
    send(b)
    send(d)
    assert index.least_in_rotation() is c  # at 1: c a b d (old rule: a)
    finish(c)
    assert index.least_in_rotation() is c  # c alone at 0
    index.moved(a, 1, 1)  # no change: a keeps its place at 1 (HAProxy skips the reposition)
    index.moved(c, 0, 2)  # off the hot paths (`_set_outstanding`)
    c.outstanding = 2
    assert [index.least(OLD), index.least(NEW)] == [a, d]  # at 1: a b (old), d (new)
    assert index.least_in_rotation() is a
    index.remove(a)
    assert index.least_in_rotation() is b
    index.add(a)  # back in rotation at its count 1: behind b and d
    assert [index.least_in_rotation(), index.least(OLD)] == [b, b]
    send(b)
    assert index.least_in_rotation() is d  # at 1: d a


def test_the_index_picks_by_the_rule_over_random_rotations_and_counts():
    """OutstandingIndex against the rule written plainly: min over the pool by (outstanding, when it got there)."""
    rng = np.random.default_rng(3)
    index, pools, pool_all = OutstandingIndex(), ([], []), []
    fleet = [Instance(i, i % 2, 0, 0.0) for i in range(60)]
    entered, clock = {}, count()

    def key(inst):
        return inst.outstanding, entered[inst]

    checked = 0
    for _ in range(20_000):
        inst = fleet[rng.integers(len(fleet))]
        roll = rng.random()
        if roll < 0.04 and not inst.in_rotation:  # rotate in
            inst.in_rotation = True
            pools[inst.version].append(inst)
            pool_all.append(inst)
            index.add(inst)
            entered[inst] = next(clock)
        elif roll < 0.07 and inst.in_rotation:  # rotate out
            inst.in_rotation = False
            pools[inst.version].remove(inst)
            pool_all.remove(inst)
            index.remove(inst)
        elif roll < 0.09:  # refused or rejected: taken and dropped
            if inst.in_rotation:
                index.requeue(inst)
                entered[inst] = next(clock)
        else:  # one more, one fewer (the engine's paths), or a crash's reset to 0
            k = inst.outstanding
            new = 0 if roll > 0.995 or (roll >= 0.55 and k == 0) else k + 1 if roll < 0.55 else k - 1
            if inst.in_rotation:
                if new == k + 1:
                    index.up(inst, k)
                elif new == k - 1:
                    index.down(inst, k)
                else:
                    index.moved(inst, k, new)
                if new != k:
                    entered[inst] = next(clock)
            inst.outstanding = new
        for version, pool in enumerate(pools):
            if pool:
                assert index.least(version) is min(pool, key=key)
        assert index.least_in_rotation() is (min(pool_all, key=key) if pool_all else None)
        if pool_all:
            assert min(pool_all, key=index.rank) is min(pool_all, key=key)
        checked += bool(pools[0] and pools[1])
    assert checked > 10_000


class TracedEngine(RequestEngine):
    """The request engine, noting which instance each attempt starts on and the rotation at that moment."""

    def __init__(self, *args):
        super().__init__(*args)
        self.trace: list[tuple[int, int, int, int]] = []

    def _start(self, att, inst, now):
        self.trace.append((inst.id, inst.version, len(self.pools[NEW]), len(self.pool_all)))
        super()._start(att, inst, now)


def traced(**overrides) -> TracedEngine:
    engine = TracedEngine(scenario("rolling", **{
        "fleet.instances": 4, "fleet.workers": 1, "fleet.load_balancer": "least_outstanding", "traffic.rps": 4,
        **overrides}), 1)
    engine.run()
    return engine


def binomial_halfwidth(n: float, p: float, z: float = 3.29) -> float:
    """Half the 99.9% interval of a binomial count (normal approximation)."""
    return z * math.sqrt(n * p * (1 - p))


def test_at_low_load_idle_instances_take_turns():
    """4 instances of 1 worker, far apart arrivals: constant service gives exact rotation, lognormal an even spread.

    With first-in-rotation ties instance 0 took about 97% of the requests.
    """
    constant = traced(**{"release": None, "duration": "2m", "fleet.service_time": {"dist": "constant", "value": "5ms"}})
    served = [inst for inst, *_ in constant.trace]
    assert len(served) > 400 and served == [i % 4 for i in range(len(served))]

    spread = traced(**{"release": None, "duration": "5m"})
    n = len(spread.trace)
    per_instance = np.bincount([inst for inst, *_ in spread.trace], minlength=4)
    assert n > 1000 and np.all(np.abs(per_instance - n / 4) <= binomial_halfwidth(n, 0.25)), per_instance


def test_a_rollout_split_by_instance_gives_new_instances_their_share_at_low_load():
    """A rolling update (the split by instance, `weight: None`) at 4 rps on 4 instances: each attempt goes to the
    new version with probability (new instances in rotation) / (instances in rotation) at that moment.

    Canary steps in simlab always carry a weight (a pool per version); a rolling update, a big bang and a
    rollback of one spread traffic by instance. With first-in-rotation ties the new version served 4% of
    the requests while it held 40-50% of the instances, and this rollout ran into its progress deadline.
    """
    engine = traced(**{"duration": "8m", "strategy.batch": 1, "strategy.bake": "1m"})
    mixed = [(version, n_new / n_all) for _, version, n_new, n_all in engine.trace if 0 < n_new < n_all]
    expected = sum(p for _, p in mixed)
    spread = math.sqrt(sum(p * (1 - p) for _, p in mixed))
    observed = sum(version == NEW for version, _ in mixed)
    assert len(mixed) > 500 and 0.2 < expected / len(mixed) < 0.8
    assert abs(observed - expected) <= 3.29 * spread, (observed, expected, spread)
