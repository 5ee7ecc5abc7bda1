"""Blast radius: interrupt the experiment when users get too many errors or too slow answers; the rollbacks run.

```json
"controls": [{"name": "blast-radius", "provider": {"type": "python",
              "module": "simlab.chaos.controls.blast_radius", "arguments": {"max_error_rate": 0.05}}}]
```

During the method a thread sends its own sequential GETs through HAProxy
(`rate` a second) and keeps those of the last `window`. Once it holds
`min_requests`, it checks the share that failed against `max_error_rate` and
the p99 latency of the successful ones against `max_p99_ms`; each limit
defaults to the staging scenario's SLO × `factor` (error budget
`1 − availability` × factor; `latency_threshold` × factor). Its own requests
are what a user gets now, with or without load, and answer within a second
of a fault (Prometheus' windows would lag by a scrape and its window).

Past a limit it calls `chaoslib.exit.exit_gracefully()`: chaos's SIGUSR1
handler raises SystemExit in the main thread wherever it is (an action, a
pause), the journal's status becomes `interrupted`, and the rollbacks run
(with `runtime.rollbacks.strategy: always`, which `simlab validate` and the
suite pass). chaoslib (1.44) sleeps an activity's `pauses.after` in a
`finally`, so a SystemExit raised inside the action itself waits out that
whole pause first; while chaos's main thread sleeps there, the signal is sent
again, which ends the sleep. An activity that starts after the breach is
refused with `InterruptExecution`. The limit, what passed it and by how much
are written to the journal under `extensions` (`simlab-blast-radius`) and
chaos's log.
"""
from __future__ import annotations

import datetime
import linecache
import logging
import math
import sys
import threading
import time
from collections import deque

from simlab.chaos import open_staging
from simlab.errors import ScenarioError

logger = logging.getLogger("chaostoolkit")

NAME = "simlab-blast-radius"
REPEAT = 1.0
"""Seconds after the interrupt before it is sent again, if chaos still sleeps in an activity's pause."""
_watch: "Watch | None" = None


class Watch:
    """The sampling thread and what it saw; `breach` says which limit was passed and by how much."""

    def __init__(self, url: str, timeout: float, max_error_rate: float, max_p99_ms: float, window: float,
                 rate: float, min_requests: int):
        self.url, self.timeout = url + "/", timeout
        self.max_error_rate, self.max_p99_ms = max_error_rate, max_p99_ms
        self.window, self.rate, self.min_requests = window, rate, min_requests
        self.samples: deque[tuple[float, bool, float]] = deque()  # (time, succeeded, seconds)
        self.breach: str | None = None
        self.worst = {"error_rate": 0.0, "p99_ms": 0.0, "requests": 0}
        self.in_method = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.in_method = True
        self._thread = threading.Thread(target=self._run, name="blast-radius", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self.in_method = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 2.0)

    def _run(self) -> None:
        from simlab.staging import procs

        period = 1.0 / self.rate
        while not self._stop.is_set():
            t0 = time.monotonic()
            status, _ = procs.http_get(self.url, timeout=self.timeout)
            now = time.monotonic()
            self.samples.append((now, 200 <= status < 300, now - t0))
            while self.samples and self.samples[0][0] < now - self.window:
                self.samples.popleft()
            self._judge()
            if self.breach:
                self._interrupt()
                return
            self._stop.wait(max(0.0, period - (time.monotonic() - t0)))

    def _judge(self) -> None:
        import numpy as np

        n = len(self.samples)
        if n < self.min_requests:
            return
        ok = [s for _, good, s in self.samples if good]
        rate = 1.0 - len(ok) / n
        p99 = float(np.percentile(ok, 99)) * 1000.0 if ok else math.inf
        self.worst = {"error_rate": max(self.worst["error_rate"], rate),
                      "p99_ms": max(self.worst["p99_ms"], p99 if ok else 0.0), "requests": n}
        seen = f"{n} requests over the last {self.window:g}s"
        if rate > self.max_error_rate:
            self.breach = (f"error rate {rate:.3f} of {seen} passed the limit {self.max_error_rate:.3f} "
                           f"by {rate - self.max_error_rate:.3f}")
        elif p99 > self.max_p99_ms:
            said = "no request succeeded" if not ok else f"p99 latency {p99:.0f} ms"
            self.breach = (f"{said} of {seen} passed the limit {self.max_p99_ms:.0f} ms"
                           + (f" by {p99 - self.max_p99_ms:.0f} ms" if ok else ""))

    def _interrupt(self) -> None:
        from chaoslib.exit import exit_gracefully

        logger.critical(f"blast radius: {self.breach}; interrupting the experiment, rollbacks follow")
        with self._lock:
            if not self.in_method:  # after the method, the hypothesis and rollbacks are left to run
                return
            exit_gracefully()
        while not self._stop.wait(REPEAT):  # stop(): the method is over, the interrupt reached the run
            with self._lock:
                left = pause_left()
                if self.in_method and left > REPEAT / 2:  # never near the pause's end, where chaos moves on
                    logger.warning(f"blast radius: chaos waits out an activity's pause ({left:.0f}s left) before "
                                   f"it stops; interrupting it again")
                    exit_gracefully()


def pause_left() -> float:
    """Seconds left of the `pauses.after` sleep chaos's main thread is in, or 0 when it is in none.

    Read from that thread's frame: chaoslib.activity.execute_activity sleeping on its `time.sleep(pause_after)`
    line (any other chaoslib reads as 0, and the interrupt is then never repeated).
    """
    from chaoslib import activity

    frame = sys._current_frames().get(threading.main_thread().ident)
    if frame is None or frame.f_code is not activity.execute_activity.__code__:
        return 0.0
    if "time.sleep(pause_after)" not in linecache.getline(frame.f_code.co_filename, frame.f_lineno):
        return 0.0
    values = frame.f_locals  # the main thread sleeps in C without the GIL: its locals stand still
    try:
        ended = datetime.datetime.fromisoformat(values["run"]["end"]).timestamp()
        return ended + float(values["pause_after"]) - time.time()
    except (KeyError, TypeError, ValueError):
        return 0.0


def configure_control(configuration: dict | None = None, max_error_rate: float | None = None,
                      max_p99_ms: float | None = None, factor: float = 5.0, window="5s", rate: float = 10.0,
                      min_requests: int = 20, state_dir: str | None = None, **kwargs) -> None:
    """Limits from the arguments, or the staging scenario's SLO × `factor`; the thread starts with the method."""
    from simlab.units import parse_duration

    global _watch
    for name, value, low in (("factor", factor, 0.0), ("rate", rate, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
            raise ScenarioError(f"blast_radius {name}: expected a number > {low:g}, found {value!r}")
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise ScenarioError(f"blast_radius min_requests: expected a whole number >= 1, found {min_requests!r}")
    try:
        seconds = parse_duration(window)
    except ValueError as exc:
        raise ScenarioError(f"blast_radius window: {exc}") from None
    st = open_staging(configuration, state_dir)
    slo = st.scenario.slo
    error_limit = max_error_rate if max_error_rate is not None else (1.0 - slo.availability / 100.0) * factor
    p99_limit = max_p99_ms if max_p99_ms is not None else slo.latency_threshold * 1000.0 * factor
    _watch = Watch(st.url, st.scenario.traffic.timeout, float(error_limit), float(p99_limit), seconds, float(rate),
                   min_requests)


def before_method_control(context: dict, **kwargs) -> None:
    if _watch is not None:
        _watch.start()


def after_method_control(context: dict, **kwargs) -> None:
    if _watch is not None:
        _watch.stop()


def before_activity_control(context: dict, **kwargs) -> None:
    """An activity of the method that would start after a breach is not run."""
    if _watch is not None and _watch.breach and _watch.in_method:
        from chaoslib.exceptions import InterruptExecution

        raise InterruptExecution(f"blast radius: {_watch.breach}")


def before_rollback_control(context: dict, **kwargs) -> None:
    if _watch is not None:
        _watch.stop()


def after_experiment_control(context: dict, state: dict | None = None, **kwargs) -> None:
    """The limits, the worst seen and the breach (if any) into the journal, for `simlab validate` and the suite."""
    if _watch is None or not isinstance(state, dict):
        return
    _watch.stop()
    state.setdefault("extensions", []).append({
        "name": NAME, "interrupted": _watch.breach is not None, "reason": _watch.breach,
        "limits": {"error_rate": _watch.max_error_rate, "p99_ms": _watch.max_p99_ms, "window_s": _watch.window},
        "worst": {k: round(v, 4) for k, v in _watch.worst.items()},
    })


def cleanup_control(**kwargs) -> None:
    global _watch
    if _watch is not None:
        _watch.stop()
    _watch = None
