"""Locust load shaped like a simlab scenario's traffic: its per-second rates, its retries, every request recordable.

Two ways this file runs, never imported by simlab (Locust patches the process
with gevent):

- simlab's own (`simlab staging load`, `deploy --load`): `locust -f THIS_FILE
  --headless ...` with SIMLAB_SHAPE naming a JSON file (rates per second, an
  absolute wall-clock start shared with the deploy's clock, timeout, retries)
  and SIMLAB_RECORDS a folder for the records;
- a Locust user's: `simlab locustfile SCENARIO -o FILE` writes a copy of this
  file with the shape in `SHAPE` below, relative to the test's start, and
  plain `locust -f FILE -H URL` runs it (headless or in the web UI; with
  `--run-time` the shape stops there). `--records DIR` (or SIMLAB_RECORDS)
  records every request.

Records: one JSON line per attempt in DIR/requests-PID.jsonl: `t` start
(epoch s), `ms` latency, `status` (0: no response), `error`, `u` the user
request, `k` the attempt (1 first, then retries), `v` the X-Version header
when the service sends one.

Retries follow `traffic.retries` as the simulator applies them: a failed
attempt (5xx, timeout, reset) is retried while fewer than `max` retries were
made and the process's retry budget holds a token (each user request adds
`budget`, capped), after `backoff * 2**(retry-1)`, times U(0,1) with jitter.
"""
import json
import math
import os
import random
import sys
import time

from locust import FastHttpUser, LoadTestShape, events, task

SHAPE = None  # simlab locustfile puts the scenario's shape here; simlab's own runs give SIMLAB_SHAPE instead


def _shape() -> dict:
    if SHAPE is not None:
        return SHAPE
    path = os.environ.get("SIMLAB_SHAPE")
    if not path:
        sys.exit("this locustfile is driven by simlab (it needs SIMLAB_SHAPE); for a file plain `locust` runs, "
                 "write one with `simlab locustfile SCENARIO -o locustfile.py`")
    with open(path) as f:
        return json.load(f)


_SHAPE = _shape()
# simlab's runs give the rate of every second; a written file gives runs of equal rates: [[rate, seconds], ...]
RATES = _SHAPE.get("rates") or [rate for rate, seconds in _SHAPE["rate_runs"] for _ in range(int(seconds))]
PER_USER = _SHAPE.get("per_user_rps", 2.0)
RETRIES = _SHAPE.get("retries") or {"max": 0, "backoff": 0.1, "budget": 0.0, "jitter": True, "token_cap": 0.0}
# simlab's runs start at an absolute time shared with the deploy's clock; a user's run starts when its test does.
_clock = {"start": _SHAPE.get("start") or None, "relative": not _SHAPE.get("start")}
_budget = {"tokens": RETRIES["token_cap"], "seq": 0}


@events.init_command_line_parser.add_listener
def _options(parser, **kwargs):
    parser.add_argument("--records", default="", help="write every request as a JSON line to DIR/requests-PID.jsonl")


@events.test_start.add_listener
def _started(environment, **kwargs):
    if _clock["relative"]:
        _clock["start"] = time.time()


def current_rate() -> float:
    i = int(time.time() - (_clock["start"] or time.time()))
    return RATES[i] if 0 <= i < len(RATES) else 0.0


class _Recorder:
    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.file = open(os.path.join(folder, f"requests-{os.getpid()}.jsonl"), "a", buffering=1 << 16)
        self.flushed = time.time()

    def write(self, row: dict) -> None:
        self.file.write(json.dumps(row, separators=(",", ":")) + "\n")
        if time.time() - self.flushed > 0.5:  # a SIGTERM'd Locust loses at most half a second
            self.file.flush()
            self.flushed = time.time()


_recorder = {"folder": os.environ.get("SIMLAB_RECORDS") or None, "open": None}


@events.init.add_listener
def _where(environment, **kwargs):
    chosen = getattr(environment.parsed_options, "records", None) if environment.parsed_options else None
    _recorder["folder"] = chosen or _recorder["folder"]


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, exception=None,
            start_time=None, context=None, **kwargs):
    if _recorder["folder"] is None:
        return
    if _recorder["open"] is None:
        _recorder["open"] = _Recorder(_recorder["folder"])
    status = getattr(response, "status_code", 0) or 0
    headers = getattr(response, "headers", None)
    row = {
        "t": round(start_time if start_time is not None else time.time() - response_time / 1000.0, 4),
        "ms": round(response_time, 3), "status": status,
        "error": None if exception is None else type(exception).__name__,
        "u": (context or {}).get("u"), "k": (context or {}).get("k", 1),
    }
    version = headers.get("X-Version") if headers else None
    if version:
        row["v"] = version
    _recorder["open"].write(row)


@events.quitting.add_listener
def _flush(environment, **kwargs):
    if _recorder["open"] is not None:
        _recorder["open"].file.flush()


class ScenarioUser(FastHttpUser):
    """Starts requests at this user's share of the current rate (constant pacing, closed loop)."""

    network_timeout = _SHAPE.get("timeout", 30.0)
    connection_timeout = min(5.0, _SHAPE.get("timeout", 30.0))

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
    """Users follow the rate (PER_USER requests per second each); stop when the rates (or --run-time) run out."""

    def tick(self):
        if _clock["relative"]:
            elapsed = self.get_run_time()  # reset by Locust when a test starts, also the web UI's next one
            options = self.runner.environment.parsed_options if self.runner else None
            limit = getattr(options, "run_time", None) if options else None
            if limit and elapsed >= limit:
                return None
        else:
            elapsed = time.time() - _clock["start"]
        i = int(elapsed)
        if i >= len(RATES):
            return None
        peak = max(RATES[i:i + 3] or [0.0])
        users = max(1, math.ceil(peak / PER_USER))
        return users, max(users, 50)
