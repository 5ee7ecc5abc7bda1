"""Locust load for a staging run: the scenario's per-second rates, every request recorded.

Run by `simlab.staging.load` as `locust -f THIS_FILE --headless ...`, never
imported by simlab (Locust patches the process with gevent). Reads
SIMLAB_SHAPE (a JSON file: rates per second, timeout, users) and writes one
JSON line per request to SIMLAB_RECORDS/requests-PID.jsonl.
"""
import json
import math
import os
import random
import time

from locust import FastHttpUser, LoadTestShape, events, task

with open(os.environ["SIMLAB_SHAPE"]) as _f:
    SHAPE = json.load(_f)
RATES = SHAPE["rates"]
START = SHAPE.get("start") or time.time()
PER_USER = SHAPE.get("per_user_rps", 2.0)


def current_rate() -> float:
    i = int(time.time() - START)
    return RATES[i] if 0 <= i < len(RATES) else 0.0


class _Recorder:
    def __init__(self):
        folder = os.environ["SIMLAB_RECORDS"]
        os.makedirs(folder, exist_ok=True)
        self.file = open(os.path.join(folder, f"requests-{os.getpid()}.jsonl"), "a", buffering=1 << 16)
        self.flushed = time.time()

    def write(self, row: dict) -> None:
        self.file.write(json.dumps(row, separators=(",", ":")) + "\n")
        if time.time() - self.flushed > 0.5:  # a SIGTERM'd Locust loses at most half a second
            self.file.flush()
            self.flushed = time.time()


_recorder = None


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, exception=None,
            start_time=None, **kwargs):
    global _recorder
    if _recorder is None:
        _recorder = _Recorder()
    status = getattr(response, "status_code", 0) or 0
    _recorder.write({
        "t": round(start_time if start_time is not None else time.time() - response_time / 1000.0, 4),
        "ms": round(response_time, 3), "status": status,
        "error": None if exception is None else type(exception).__name__,
    })


@events.quitting.add_listener
def _flush(environment, **kwargs):
    if _recorder is not None:
        _recorder.file.flush()


class ScenarioUser(FastHttpUser):
    """Starts requests at this user's share of the current rate (constant pacing, closed loop)."""

    network_timeout = SHAPE.get("timeout", 30.0)
    connection_timeout = min(5.0, SHAPE.get("timeout", 30.0))

    _next = None

    def wait_time(self):
        users = max(1, self.environment.runner.user_count)
        rate = current_rate()
        pacing = users / rate if rate > 0 else 1.0
        now = time.time()
        if self._next is None:
            self._next = now + random.uniform(0, pacing)  # stagger users across the pacing interval
        else:
            self._next = max(now, self._next + pacing)  # behind schedule: go at once (closed loop)
        return self._next - now

    @task
    def get(self):
        self.client.get("/", name="/")


class ScenarioShape(LoadTestShape):
    """Users follow the rate (PER_USER requests per second each); stop when the rates run out."""

    def tick(self):
        i = int(time.time() - START)
        if i >= len(RATES):
            return None
        peak = max(RATES[i:i + 3] or [0.0])
        users = max(1, math.ceil(peak / PER_USER))
        return users, max(users, 50)
