"""Locust as a subprocess: start it with the scenario's rates, stop it, read its per-request records.

The records become the users' view per second (`per_second`), the columns a deploy's timeline shares
with the simulator's.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from simlab.errors import StagingError
from simlab.results import CAUSES
from simlab.scenario import Scenario
from simlab.staging import procs
from simlab.staging.files import private_dir, write_private
from simlab.staging.shape import schedule

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _locust_bin() -> str:
    candidate = Path(sys.executable).with_name("locust")
    found = str(candidate) if candidate.exists() else shutil.which("locust")
    if not found:
        raise StagingError("Locust is not installed: pip install 'simlab[staging]'")
    return found


def start_load(scenario: Scenario, url: str, out: Path, duration: float, start: float,
               workers: int = 0, owner: Path | None = None) -> list[procs.ProcRecord]:
    """Start Locust driving `url` with the scenario's rates from wall-clock `start` for `duration` seconds.

    `owner`: the state directory whose `simlab staging down` stops these processes (see sweep.py).
    """
    private_dir(out)
    retries = scenario.traffic.retries
    # The simulator's retry budget, shared out between Locust's processes (each keeps its own bucket).
    cap = max(10.0, retries.budget * scenario.traffic.rps * 10.0) / max(1, workers)
    shape = {"rates": schedule(scenario, duration), "start": start, "timeout": scenario.traffic.timeout,
             "per_user_rps": 2.0, "retries": {**retries.model_dump(mode="json"), "token_cap": cap}}
    write_private(out / "shape.json", json.dumps(shape))
    env = {**os.environ, "SIMLAB_SHAPE": str(out / "shape.json"), "SIMLAB_RECORDS": str(out / "records")}
    base = [_locust_bin(), "-f", str(LOCUSTFILE), "--headless", "-H", url, "--only-summary",
            "--loglevel", "WARNING", "--exit-code-on-error", "0", "--skip-log-setup"]
    if workers <= 0:
        return [procs.spawn("locust", "locust", base, out / "locust.log", env=env, owner=owner)]
    port = procs.free_port()
    master = base + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                     "--expect-workers", str(workers)]
    records = [procs.spawn("locust-master", "locust", master, out / "locust-master.log", port, env=env, owner=owner)]
    for i in range(workers):
        argv = [_locust_bin(), "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
                "--master-port", str(port), "--loglevel", "WARNING", "--skip-log-setup"]
        records.append(procs.spawn(f"locust-worker-{i}", "locust", argv, out / f"locust-worker-{i}.log", env=env,
                                   owner=owner))
    return records


def read_records(out: Path) -> dict[str, np.ndarray]:
    """Every attempt Locust made: start time, latency (s), status (0: no response), error name,
    user request id and attempt number (1: the first), in order of start time."""
    t, lat, status, error, user, attempt = [], [], [], [], [], []
    for path in sorted((out / "records").glob("requests-*.jsonl")):
        for i, line in enumerate(path.read_text().splitlines()):
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            t.append(row["t"])
            lat.append(row["ms"] / 1000.0)
            status.append(row["status"])
            error.append(row["error"] or "")
            user.append(row.get("u") or f"{path.stem}:{i}")  # records without an id: one attempt per request
            attempt.append(row.get("k", 1))
    order = np.argsort(np.asarray(t, dtype=float), kind="stable")
    return {
        "t": np.asarray(t, dtype=float)[order], "latency": np.asarray(lat, dtype=float)[order],
        "status": np.asarray(status, dtype=int)[order], "error": np.asarray(error, dtype=object)[order],
        "user": np.asarray(user, dtype=object)[order], "attempt": np.asarray(attempt, dtype=int)[order],
    }


def user_requests(rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One row per user request: its first attempt's start, its last attempt's outcome, latency over all tries."""
    if len(rec["t"]) == 0 or rec["attempt"].max(initial=1) <= 1:
        return rec
    end = rec["t"] + rec["latency"]
    _, first_index, group = np.unique(rec["user"].astype(str), return_index=True, return_inverse=True)
    # The last attempt of each user request: the one with the highest attempt number.
    order = np.lexsort((rec["attempt"], group))
    last = order[np.r_[np.nonzero(np.diff(group[order]))[0], len(order) - 1]]
    first = first_index[group[last]]
    out = {k: v[last] for k, v in rec.items()}
    out["t"] = rec["t"][first]
    out["attempt_latency"] = rec["latency"][last]  # the last try's own time, to tell a timeout
    out["latency"] = end[last] - rec["t"][first]
    keep = np.argsort(out["t"], kind="stable")
    return {k: v[keep] for k, v in out.items()}


def classify(rec: dict[str, np.ndarray], timeout: float) -> dict[str, np.ndarray]:
    """Boolean masks: ok, error (5xx but 503), rejected (503), timeout, reset (no response)."""
    status, err, lat = rec["status"], rec["error"], rec.get("attempt_latency", rec["latency"])
    no_answer = status == 0
    timed_out = no_answer & ((np.char.find(err.astype(str), "Timeout") >= 0) | (lat >= timeout * 0.999))
    return {
        "ok": (status >= 200) & (status < 400),
        "rejected": status == 503,
        "error": (status >= 400) & (status != 503),
        "timeout": timed_out,
        "reset": no_answer & ~timed_out,
    }


def run_load(scenario: Scenario, url: str, out: Path, duration: float | None = None, workers: int = 0,
             owner: Path | None = None) -> dict:
    """Drive the scenario's traffic for `duration` (default: the scenario's), wait, and summarise."""
    duration = scenario.duration if duration is None else duration
    start = time.time() + 0.5
    running = start_load(scenario, url, out, duration, start, workers, owner=owner)
    try:
        while time.time() < start + duration + scenario.traffic.timeout + 5 and any(
                procs.is_running(r) for r in running):
            time.sleep(0.2)
    finally:
        procs.stop_many(running, grace=5.0)
    attempts = read_records(out)
    rec = user_requests(attempts)
    masks = classify(rec, scenario.traffic.timeout)
    target = float(np.mean(schedule(scenario, duration))) if duration else 0.0
    return {
        "offered": int(len(rec["t"])), "attempts": int(len(attempts["t"])), "failed": int((~masks["ok"]).sum()),
        "achieved_rps": len(rec["t"]) / duration if duration else 0.0, "target_rps": target,
        "duration": duration, "records": rec,
    }


def empty_seconds(n: int) -> pd.DataFrame:
    cols = ("offered", "attempts", "succeeded", "failed", "failed_error", "failed_rejected", "failed_timeout",
            "failed_reset", "slow")
    frame = pd.DataFrame({"t": np.arange(n), **{c: np.zeros(n, dtype=int) for c in cols},
                          "latency_p50_ms": np.nan, "latency_p99_ms": np.nan})
    frame.attrs["ok_latency"] = np.array([])
    return frame


def per_second(attempts: dict, s: Scenario, t0: float, n: int) -> pd.DataFrame:
    """Users' view per second from Locust's records: offered, attempts, outcome by cause, slow, latency.

    As in the simulator, a user request counts in the second it arrived, with the outcome of its last try.
    """
    frame = empty_seconds(n)
    tried = np.floor(attempts["t"] - t0).astype(int)
    tried = tried[(tried >= 0) & (tried < n)]
    rec = user_requests(attempts)
    sec = np.floor(rec["t"] - t0).astype(int)
    keep = (sec >= 0) & (sec < n)
    masks = {k: m[keep] for k, m in classify(rec, s.traffic.timeout).items()}
    sec, lat = sec[keep], rec["latency"][keep]
    frame["offered"] = np.bincount(sec, minlength=n)
    frame["attempts"] = np.bincount(tried, minlength=n)
    frame["succeeded"] = np.bincount(sec[masks["ok"]], minlength=n)
    for cause in CAUSES:
        frame[f"failed_{cause}"] = np.bincount(sec[masks[cause] & ~masks["ok"]], minlength=n)
    frame["failed"] = frame["offered"] - frame["succeeded"]
    slow = masks["ok"] & (lat > s.slo.latency_threshold)
    frame["slow"] = np.bincount(sec[slow], minlength=n)
    ok_sec, ok_lat = sec[masks["ok"]], lat[masks["ok"]]
    p50, p99 = np.full(n, np.nan), np.full(n, np.nan)
    for i in np.unique(ok_sec):
        values = ok_lat[ok_sec == i]
        p50[i], p99[i] = np.percentile(values, 50) * 1000, np.percentile(values, 99) * 1000
    frame["latency_p50_ms"], frame["latency_p99_ms"] = p50, p99
    frame.attrs["ok_latency"] = ok_lat
    return frame
