"""Open-loop HTTP load: request i leaves at start + i/rate whatever the earlier responses did.

A closed-loop client (Locust, wrk) sends less when the server slows, so it
never sees the queue it would have built; calibration needs the latency a
request meets at a given *offered* rate. Latency is counted from each
request's scheduled send time, so a late send is not hidden (no coordinated
omission), and the generator's own lag is kept to say when it fell behind.
Raw keep-alive HTTP/1.1 on asyncio with select(2): microsecond timers, about
0.1 ms of CPU per request.
"""
from __future__ import annotations

import asyncio
import re
import selectors
import time
from dataclasses import dataclass

import numpy as np

_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


@dataclass(frozen=True)
class Shots:
    """What one open-loop run saw, one entry per request answered (in answer order).

    `due`: scheduled send (loop seconds), `latency`: seconds from due to the full response,
    `status`: HTTP status. `unanswered`: requests with no response (refused, reset, cut off at the end).
    """

    rate: float
    seconds: float
    due: np.ndarray
    latency: np.ndarray
    status: np.ndarray
    unanswered: int
    lag_p99: float
    cpu_seconds: float

    @property
    def sent(self) -> int:
        return len(self.latency) + self.unanswered

    @property
    def ok(self) -> np.ndarray:
        return (self.status >= 200) & (self.status < 400)

    @property
    def failed_share(self) -> float:
        return 1.0 - float(self.ok.sum()) / self.sent if self.sent else 0.0

    def percentile(self, q: float, ok_only: bool = True) -> float:
        values = self.latency[self.ok] if ok_only else self.latency
        return float(np.percentile(values, q)) if len(values) else float("nan")


class _Conn(asyncio.Protocol):
    """One keep-alive client connection carrying one request at a time."""

    def __init__(self, gen: "OpenLoop"):
        self.gen, self.buf, self.transport, self.due = gen, b"", None, None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, due: float) -> None:
        self.due = due
        self.gen.lags.append(self.gen.loop.time() - due)
        self.transport.write(self.gen.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buf[:head_end]
        found = _LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        if len(self.buf) < head_end + 4 + length:
            return
        self.buf = self.buf[head_end + 4 + length:]
        due, self.due = self.due, None
        if due is not None:  # not HAProxy's 408 on a connection idle past `timeout http-request`
            self.gen.done(self, due, int(head[9:12]))

    def connection_lost(self, exc) -> None:
        self.gen.lost(self)


class OpenLoop:
    """Constant-rate GETs of `path` at 127.0.0.1:`port` for `seconds`; `run()` returns the Shots."""

    def __init__(self, port: int, rate: float, seconds: float, path: str = "/", drain: float = 5.0):
        self.port, self.rate, self.seconds, self.drain = port, rate, seconds, drain
        self.request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        self.due: list[float] = []
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.lags: list[float] = []
        self.failed = 0
        self.outstanding = 0
        self.idle: list[_Conn] = []

    async def _connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
        return conn

    async def _send_on_new(self, due: float) -> None:
        try:
            (await self._connect()).send(due)
        except OSError:
            self.failed += 1
            self.outstanding -= 1

    def done(self, conn: _Conn, due: float, status: int) -> None:
        self.due.append(due)
        self.latencies.append(self.loop.time() - due)
        self.statuses.append(status)
        self.outstanding -= 1
        self.idle.append(conn)

    def lost(self, conn: _Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        elif conn.due is not None:  # closed with a request outstanding
            self.failed += 1
            self.outstanding -= 1

    async def run(self) -> Shots:
        self.loop = asyncio.get_running_loop()
        # Enough open connections for 50 ms of requests; more are opened if responses lag.
        self.idle = [await self._connect() for _ in range(max(2, int(self.rate * 0.05)))]
        start = self.loop.time() + 0.02
        total = max(1, int(round(self.rate * self.seconds)))
        cpu0 = time.process_time()
        i = 0
        while i < total:
            now = self.loop.time()
            while i < total and start + i / self.rate <= now:
                due = start + i / self.rate
                self.outstanding += 1
                if self.idle:
                    self.idle.pop().send(due)
                else:
                    self.loop.create_task(self._send_on_new(due))
                i += 1
            if i < total:
                await asyncio.sleep(max(0.0, start + i / self.rate - self.loop.time()))
        deadline = self.loop.time() + self.drain
        while self.outstanding > 0 and self.loop.time() < deadline:
            await asyncio.sleep(0.005)
        cpu = time.process_time() - cpu0
        for conn in list(self.idle):
            conn.transport.close()
        lags = np.asarray(self.lags, dtype=float)
        return Shots(self.rate, self.seconds, np.asarray(self.due, dtype=float) - start,
                     np.asarray(self.latencies, dtype=float), np.asarray(self.statuses, dtype=int),
                     self.failed + max(0, self.outstanding),
                     float(np.percentile(lags, 99)) if len(lags) else 0.0, cpu)


def open_loops(targets: list[tuple[int, float]], seconds: float, path: str = "/", drain: float = 5.0) -> list[Shots]:
    """Constant-rate generators at once, one per (port, rate), in a fresh event loop; their Shots in order."""

    async def run_all() -> list[Shots]:
        return list(await asyncio.gather(*(OpenLoop(port, rate, seconds, path, drain).run() for port, rate in targets)))

    # select(2) wakes the generator on time to the microsecond; epoll's millisecond timeouts would send
    # requests up to 1 ms late, counted as latency (latency is from the scheduled send).
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())) as runner:
        return runner.run(run_all())


def open_loop(port: int, rate: float, seconds: float, path: str = "/", drain: float = 5.0) -> Shots:
    """The constant-rate generator against 127.0.0.1:`port`."""
    return open_loops([(port, rate)], seconds, path, drain)[0]
