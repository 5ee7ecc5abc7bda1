"""Locust load for a staging run: the scenario's per-second rates, every request recorded.

Run by `simlab.staging.load` as `locust -f THIS_FILE --headless ...`, never
imported by simlab (Locust patches the process with gevent). Reads
SIMLAB_SHAPE (a JSON file: rates per second, timeout, users, retries) and
writes one JSON line per attempt to SIMLAB_RECORDS/requests-PID.jsonl: `u`
names the user request, `k` the attempt (1 first, then retries).

Retries follow `traffic.retries` as the simulator applies them: a failed
attempt (5xx, timeout, reset) is retried while fewer than `max` retries were
made and the process's retry budget holds a token (each user request adds
`budget`, capped), after `backoff * 2**(retry-1)`, times U(0,1) with jitter.
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
RETRIES = SHAPE.get("retries") or {"max": 0, "backoff": 0.1, "budget": 0.0, "jitter": True, "token_cap": 0.0}
_budget = {"tokens": RETRIES["token_cap"], "seq": 0}


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
            start_time=None, context=None, **kwargs):
    global _recorder
    if _recorder is None:
        _recorder = _Recorder()
    status = getattr(response, "status_code", 0) or 0
    _recorder.write({
        "t": round(start_time if start_time is not None else time.time() - response_time / 1000.0, 4),
        "ms": round(response_time, 3), "status": status,
        "error": None if exception is None else type(exception).__name__,
        "u": (context or {}).get("u"), "k": (context or {}).get("k", 1),
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
        _budget["seq"] += 1
        user_request = f"{os.getpid()}-{_budget['seq']}"
        _budget["tokens"] = min(RETRIES["token_cap"], _budget["tokens"] + RETRIES["budget"])
        retries = 0
        while True:
            response = self.client.get("/", name="/", context={"u": user_request, "k": retries + 1})
            if 200 <= (response.status_code or 0) < 400:
                return
            if retries >= RETRIES["max"] or _budget["tokens"] < 1.0:
                return
            _budget["tokens"] -= 1.0
            retries += 1
            backoff = RETRIES["backoff"] * 2 ** (retries - 1)
            time.sleep(backoff * random.random() if RETRIES["jitter"] else backoff)  # gevent-patched: yields


class ScenarioShape(LoadTestShape):
    """Users follow the rate (PER_USER requests per second each); stop when the rates run out."""

    def tick(self):
        i = int(time.time() - START)
        if i >= len(RATES):
            return None
        peak = max(RATES[i:i + 3] or [0.0])
        users = max(1, math.ceil(peak / PER_USER))
        return users, max(users, 50)
