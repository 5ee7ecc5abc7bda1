"""The service under test: one instance of the simulator's instance model, as a real aiohttp server.

At most `fleet.workers` requests in service, at most `fleet.queue_limit`
waiting, beyond that a 503 at once. Service time is awaited, not burned, so
one small machine hosts a fleet. The new version carries the release's
defects. Run as `python -m simlab.staging.instance_main --scenario FILE ...`.
"""
from __future__ import annotations

import asyncio
import math
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

from simlab.rng import stream
from simlab.scenario import Scenario
from simlab.staging.behaviour import EXIT_CRASH, Behaviour
from simlab.staging.haproxy import IDENTITY_ENV, IDENTITY_HEADER


def latency_buckets(threshold: float) -> tuple[float, ...]:
    """Geometric buckets from 1 ms to 60 s, plus the SLO latency threshold so `slow` is exact."""
    edges = {round(0.001 * 1.5**i, 6) for i in range(int(math.log(60000) / math.log(1.5)) + 2)}
    edges.add(float(threshold))
    return tuple(sorted(edges))


class Instance:
    """State and metrics of one running instance."""

    def __init__(self, scenario: Scenario, *, version: str, name: str, seed: int, release_epoch: float,
                 state_dir: Path | None = None):
        self.scenario = scenario
        self.version = version
        self.name = name
        self.started = time.time()
        self.ready_at = self.started + scenario.fleet.startup
        self.draining = False
        self.state_dir = state_dir
        identity = os.environ.get(IDENTITY_ENV)
        self._identity = {IDENTITY_HEADER: identity} if identity else None
        self.behaviour = Behaviour(scenario, version, stream(seed, f"staging/{name}"), release_epoch)
        self.workers = asyncio.Semaphore(scenario.fleet.workers)
        self.busy = 0
        self.waiting = 0
        self.registry = CollectorRegistry()
        labels = ("version", "instance")
        self.requests = Counter("simlab_requests", "Requests answered, by status class",
                                labels + ("code_class",), registry=self.registry)
        self.latency = Histogram("simlab_request_duration_seconds", "Time from arrival to response",
                                 labels + ("code_class",), registry=self.registry,
                                 buckets=latency_buckets(scenario.slo.latency_threshold))
        self.in_flight = Gauge("simlab_in_flight", "Requests in service", labels, registry=self.registry)
        self.queued = Gauge("simlab_queued", "Requests waiting for a worker", labels, registry=self.registry)
        self.waited = Counter("simlab_waited", "Requests that had to wait for a worker", labels,
                              registry=self.registry)
        self.memory = Gauge("simlab_leak_bytes", "Memory held by a leak defect", labels, registry=self.registry)
        # Label children bound once: a `.labels()` lookup per request is most of the metrics' cost.
        self._answered = {code: (self.requests.labels(version, name, code), self.latency.labels(version, name, code))
                          for code in ("2xx", "5xx")}  # present from the first scrape so increase() sees all
        self._in_flight = self.in_flight.labels(version, name)
        self._queued = self.queued.labels(version, name)
        self._waited = self.waited.labels(version, name)
        self.memory.labels(version, name)

    @property
    def leak_bytes(self) -> int:
        return self.behaviour.leak_held

    def release_leak(self) -> None:
        self.behaviour.release_leak()

    @property
    def ready(self) -> bool:
        return not self.draining and time.time() >= self.ready_at

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        limit = self.scenario.fleet
        if self.busy >= limit.workers and self.waiting >= limit.queue_limit:
            return self._answer(503, arrived, "queue full")
        if self.busy >= limit.workers or self.waiting:
            if self.busy >= limit.workers:
                self._waited.inc()
            self.waiting += 1
            self._queued.set(self.waiting)
            try:
                await self.workers.acquire()
            finally:
                self.waiting -= 1
                self._queued.set(self.waiting)
        else:
            await self.workers.acquire()  # a worker is free: returns at once
        self.busy += 1
        self._in_flight.set(self.busy)
        try:
            plan = self.behaviour.plan(time.time(), self.ready_at)
            await asyncio.sleep(plan.service_time)
        finally:
            self.busy -= 1
            self._in_flight.set(self.busy)
            self.workers.release()
        return self._answer(500 if plan.error else 200, arrived, "defect" if plan.error else "ok")

    def _answer(self, status: int, arrived: float, text: str) -> web.Response:
        count, latency = self._answered["2xx" if status < 300 else "5xx"]
        count.inc()
        latency.observe(time.time() - arrived)
        return web.Response(status=status, text=text, headers={"X-Instance": self.name, "X-Version": self.version})

    async def drain(self) -> None:
        """Fail readiness so the load balancer stops sending; finish what is in flight (up to traffic.timeout)."""
        self.draining = True
        deadline = time.time() + self.scenario.traffic.timeout
        while (self.busy or self.waiting) and time.time() < deadline:
            await asyncio.sleep(0.05)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="alive")

    async def readyz(self, request: web.Request) -> web.Response:
        """200 with the staging's identity once started up and not draining (HAProxy checks both)."""
        if not self.ready:
            return web.Response(status=503, text="not ready")
        return web.Response(text="ready", headers=self._identity)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def housekeeping(self) -> None:
        """Once a second: read the offered load and any dependency fault from the state dir; grow a leak."""
        from simlab.staging.faults import dependency_fault

        offered = self.state_dir / "offered_rps" if self.state_dir else None
        while True:
            if offered is not None:
                try:
                    self.behaviour.offered_rps = float(offered.read_text() or 0)
                except (OSError, ValueError):
                    pass
                self.behaviour.dependency = dependency_fault(self.state_dir)
            self.memory.labels(self.version, self.name).set(self.behaviour.grow_leak(time.time(), self.ready_at))
            await asyncio.sleep(1.0)


def build_app(instance: Instance) -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", instance.healthz)
    app.router.add_get("/readyz", instance.readyz)
    app.router.add_get("/metrics", instance.metrics)
    app.router.add_route("*", "/{tail:.*}", instance.handle)
    return app


def site(runner: web.AppRunner, port: int, listen: socket.socket | None) -> web.BaseSite:
    """Where an instance listens: the socket the supervisor claimed for it (see procs.claim_port), else `port`."""
    if listen is not None:
        return web.SockSite(runner, listen, backlog=1024)
    return web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True)


async def serve(instance: Instance, port: int, listen: socket.socket | None = None) -> int:
    """Serve until SIGTERM/SIGINT (then drain) or until a crash defect fires; return the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_app(instance), access_log=None, handle_signals=False)
    await runner.setup()
    await site(runner, port, listen).start()
    tasks = [asyncio.create_task(instance.housekeeping())]
    crash_in = instance.behaviour.crash_after(time.time())
    crashed = asyncio.create_task(asyncio.sleep(crash_in)) if crash_in is not None else None
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([t for t in (stopped, crashed) if t], return_when=asyncio.FIRST_COMPLETED)
    if crashed is not None and crashed in done:
        print(f"{instance.name}: crash defect fired after {crash_in:.1f}s", file=sys.stderr, flush=True)
        os._exit(EXIT_CRASH)
    await instance.drain()
    for t in tasks:
        t.cancel()
    await runner.cleanup()
    return 0


# select(2) takes fds below FD_SETSIZE only; keep a margin for the listener, health checks and scrapes.
SELECT_FD_LIMIT = 1024
SELECT_FD_MARGIN = 128


def precise_loop(max_connections: int) -> asyncio.AbstractEventLoop:
    """An event loop whose timers fire within microseconds, not up to a millisecond late.

    asyncio's default selector waits in epoll_wait(2), whose timeout is whole
    milliseconds rounded up: every awaited service time would run 0-1 ms long
    (0.5 ms on average, 5% of a 10 ms service time), and a timer due in 0.3 ms
    would wait 1 ms. select(2) takes microseconds. It also takes only fds below
    FD_SETSIZE, so an instance that may hold more connections than that keeps
    epoll and its millisecond timers.
    """
    if max_connections + SELECT_FD_MARGIN < SELECT_FD_LIMIT:
        return asyncio.SelectorEventLoop(selectors.SelectSelector())
    return asyncio.SelectorEventLoop()
