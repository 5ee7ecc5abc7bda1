"""Measurements on a running local staging: overhead, service-time latencies, stepped load, start-up.

Each drives the real fleet with the open-loop generator (openloop.py) or
starts real instances, and returns what it saw; deciding what it means is
fitting.py's and fragment.py's business.

- overhead: `/healthz` does no work, so its latency straight at an instance
  is the HTTP round trip and the server's own handling, and through HAProxy
  that plus the balancer's share;
- service time: `/` straight at every instance at a low utilisation (15% of
  its workers by default), where a request almost never waits for a worker;
- stepped load: a few rates straight at one instance, from half its modelled
  capacity to beyond it, each held a couple of seconds;
- start-up: instances started through a rollout's health checks at weight 0 (no traffic), timed to
  ready (`/readyz` answers 200) and to HAProxy's rotation.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from simlab.calibration.openloop import Shots, open_loop, open_loops
from simlab.errors import StagingError
from simlab.staging import procs
from simlab.staging.supervisor import Staging


@dataclass(frozen=True)
class Overhead:
    """`/healthz` latencies (seconds): straight at the instances, and through HAProxy."""

    direct: np.ndarray
    via_balancer: np.ndarray

    def summary(self) -> dict:
        d, v = self.direct, self.via_balancer
        return {"client_p50_ms": _ms(np.median(d)), "client_p99_ms": _ms(np.percentile(d, 99)),
                "balancer_p50_ms": _ms(np.median(v) - np.median(d)),
                "balancer_p99_ms": _ms(np.percentile(v, 99) - np.percentile(d, 99)),
                "samples": int(len(d) + len(v))}


@dataclass(frozen=True)
class Level:
    """One step of stepped load on one instance."""

    offered_rps: float
    ok_rps: float
    failed_share: float
    p50_s: float
    p99_s: float
    lag_p99_s: float

    def row(self) -> dict:
        return {"offered_rps": round(self.offered_rps, 1), "ok_rps": round(self.ok_rps, 1),
                "failed": round(self.failed_share, 4), "p50_ms": _ms(self.p50_s), "p99_ms": _ms(self.p99_s)}


@dataclass(frozen=True)
class Startup:
    """Seconds from asking for an instance to its being ready, and to its being in HAProxy's rotation."""

    ready: tuple[float, ...]
    rotation: tuple[float, ...]


def _ms(seconds: float) -> float | None:
    return round(float(seconds) * 1e3, 3) if math.isfinite(seconds) else None


def serving_ports(st: Staging) -> list[int]:
    """Ports of the instances in rotation; StagingError if none serves."""
    names = st.in_rotation()
    if not names:
        raise StagingError(f"no instance of the staging in {st.dir} is in rotation: nothing to measure")
    return [st.members[n].record.port for n in names]


def _ok_latencies(shots: list[Shots]) -> np.ndarray:
    return np.concatenate([s.latency[s.ok] for s in shots]) if shots else np.array([])


def measure_overhead(st: Staging, rate: float = 100.0, seconds: float = 1.5, rounds: int = 3) -> Overhead:
    """`/healthz` at `rate` spread over the instances and through HAProxy, in alternating rounds (after a short
    warm-up), so a change in what else the machine runs weighs on both alike."""
    ports = serving_ports(st)
    balancer = int(st.url.rsplit(":", 1)[1])
    direct = [(p, rate / len(ports)) for p in ports]
    open_loops(direct, 0.3, "/healthz")  # connections, caches
    d, v = [], []
    for _ in range(rounds):
        d.append(_ok_latencies(open_loops(direct, seconds / rounds, "/healthz")))
        v.append(_ok_latencies([open_loop(balancer, rate, seconds / rounds, "/healthz")]))
    d, v = np.concatenate(d), np.concatenate(v)
    if len(d) < 10 or len(v) < 10:
        raise StagingError(f"the staging in {st.dir} answered {len(d)} of {rate * seconds:.0f} health requests "
                           f"straight and {len(v)} through HAProxy: it is not serving")
    return Overhead(d, v)


def sample_latencies(st: Staging, samples: int, mean_service: float, workers: int,
                     utilization: float = 0.15, max_seconds: float = 60.0) -> np.ndarray:
    """About `samples` latencies of `/` (seconds), each instance loaded to `utilization` of its workers."""
    ports = serving_ports(st)
    per_instance = max(1.0, utilization * workers / mean_service)
    seconds = min(max_seconds, max(1.0, samples / (per_instance * len(ports))))
    shots = open_loops([(p, per_instance) for p in ports], seconds, "/")
    return _ok_latencies(shots)


def step_load(port: int, rates: list[float], seconds: float, stop_failed: float = 0.05) -> list[Level]:
    """Each rate at one instance for `seconds`; stop after the first rate that fails over `stop_failed`."""
    levels = []
    for rate in rates:
        shots = open_loop(port, rate, seconds, "/", drain=2.0)
        levels.append(Level(rate, float(shots.ok.sum()) / seconds, shots.failed_share, shots.percentile(50),
                            shots.percentile(99), shots.lag_p99))
        if shots.failed_share > stop_failed:
            break
        time.sleep(0.3)  # the queue left by one step must not count against the next
    return levels


def breaking_point(levels: list[Level], threshold: float, max_failed: float = 0.01) -> tuple[float | None, str]:
    """The offered rate at which p99 passes `threshold` (or more than `max_failed` fail), and how it was found.

    Interpolated linearly between the last rate that held and the first that did not; None when every
    rate held (the instance held at least the highest rate).
    """
    previous = None
    for level in levels:
        broke = level.failed_share > max_failed or not (level.p99_s <= threshold)
        if broke:
            if previous is None:
                return level.offered_rps, "already at the lowest rate tried"
            if level.failed_share <= max_failed and math.isfinite(level.p99_s):
                share = (threshold - previous.p99_s) / (level.p99_s - previous.p99_s)
                how = "p99 crossed the threshold"
            else:
                share, how = 0.5, "requests failed (queue full or timed out): midway"
            return previous.offered_rps + share * (level.offered_rps - previous.offered_rps), how
        previous = level
    return None, "held at every rate tried"


def time_startup(st: Staging, count: int = 2, timeout: float | None = None) -> Startup:
    """Start `count` instances at weight 0 (through a rollout's health checks, taking no traffic), time them to
    ready and to rotation, stop them."""
    timeout = st.startup_limit() if timeout is None else timeout
    t0 = time.monotonic()
    names = [st.start_instance("old", weight=0) for _ in range(count)]
    ready: dict[str, float] = {}
    rotation: dict[str, float] = {}
    try:
        while len(rotation) < count:
            now = time.monotonic() - t0
            if now > timeout:
                raise StagingError(f"instances {', '.join(n for n in names if n not in rotation)} were not in "
                                   f"rotation {timeout:g}s after they were started")
            for name in names:
                if name not in ready and procs.http_get(
                        f"http://127.0.0.1:{st.members[name].record.port}/readyz", timeout=0.5)[0] == 200:
                    ready[name] = time.monotonic() - t0
            servers = st.api.servers()
            for name in names:
                if name not in rotation and name in servers and servers[name].in_rotation:
                    rotation[name] = time.monotonic() - t0
                    ready.setdefault(name, rotation[name])  # ready between two polls of /readyz
            time.sleep(0.02)
    finally:
        st.stop_instances(names, grace=st.scenario.traffic.timeout + 5.0)
    return Startup(tuple(ready[n] for n in names), tuple(rotation[n] for n in names))
