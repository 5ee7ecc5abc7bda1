"""What recorded staging runs tell calibration: latencies of undisturbed requests, and how long instances took to serve.

A run directory is what `simlab deploy --load --out DIR` writes (`load/records/`,
`load/shape.json`, `events.csv`, `timeline.csv`) or what `simlab staging load
--out DIR` writes (`records/`, `shape.json`). Locust's per-request records are
latencies seen by the user: service time plus the round trip through Locust
and HAProxy, which a recording cannot separate (a live calibration measures it).

Kept: successful attempts of the stable version (the `v` field of a record,
or before the release when a record has none), from 2 s after the load
started (connections, Locust's users spawning), outside every fault window
the run's events name (dependency failures and zone outages, and 1 s after
each ends; 2 s either side of an instance crash).

Start-up: each time the rollout started new-version instances (event
`instance_started`), the first second whose timeline row has that many more
new instances in rotation; one-second resolution, so each time is the
midpoint of the second it falls in. Starts whose wait overlaps a fault
window are left out (an instance started into a zone that is down waits for
the zone).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError

WARMUP_S = 2.0
FAULT_MARGIN_S = 1.0
CRASH_MARGIN_S = 2.0
WINDOWS = {"dependency_failure_started": "dependency_failure_ended", "zone_down": "zone_up"}


@dataclass(frozen=True)
class Recorded:
    """Latencies (seconds) of undisturbed stable requests, start-up-to-rotation times, and what was left out."""

    latencies: np.ndarray
    rotation: tuple[float, ...]
    runs: tuple[str, ...]
    left_out: dict = field(default_factory=dict)
    seconds: float = 0.0


def _records_dir(d: Path) -> tuple[Path, Path]:
    for records, shape in ((d / "load" / "records", d / "load" / "shape.json"), (d / "records", d / "shape.json")):
        if records.is_dir():
            return records, shape
    raise ScenarioError(f"--from {d}: expected Locust's request records in {d}/load/records/ (deploy --load --out) "
                        f"or {d}/records/ (staging load --out), found neither")


def read_records(records: Path) -> pd.DataFrame:
    """Every attempt in a records directory: t (epoch s), latency (s), status, version (None if not recorded)."""
    rows = []
    for path in sorted(records.glob("requests-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                rows.append((float(row["t"]), float(row["ms"]) / 1e3, int(row["status"] or 0), row.get("v")))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
    return pd.DataFrame(rows, columns=["t", "latency", "status", "version"])


def _events(d: Path) -> pd.DataFrame:
    path = d / "events.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["time", "kind", "detail"])
    events = pd.read_csv(path)
    events["detail"] = events["detail"].map(lambda text: json.loads(text) if isinstance(text, str) else {})
    return events


def fault_windows(events: pd.DataFrame, end: float) -> list[tuple[float, float]]:
    """(start, end) seconds of every fault the events name, with their margins; an unended one lasts to `end`."""
    out = []
    for start_kind, end_kind in WINDOWS.items():
        ends = sorted(float(t) for t in events.loc[events["kind"] == end_kind, "time"])
        for t in sorted(float(t) for t in events.loc[events["kind"] == start_kind, "time"]):
            stop = next((e for e in ends if e >= t), end)
            if stop in ends:
                ends.remove(stop)
            out.append((t, stop + FAULT_MARGIN_S))
    for t in events.loc[events["kind"].isin(("instance_crash", "instance_crashed")), "time"]:
        out.append((float(t) - CRASH_MARGIN_S, float(t) + CRASH_MARGIN_S))
    return out


def rotation_times(events: pd.DataFrame, timeline: pd.DataFrame | None,
                   faults: list[tuple[float, float]] = ()) -> list[float]:
    """Seconds from each batch of new-version starts to the timeline's first row with them all in rotation.

    A batch whose wait overlaps a fault window is left out: an instance started into a zone that is down
    waits for the zone, not for its start-up.
    """
    if timeline is None or "new_ready" not in timeline:
        return []
    started = events[(events["kind"] == "instance_started")
                     & events["detail"].map(lambda d: d.get("version") == "new")]
    out, wanted = [], 0
    for t, batch in started.groupby("time"):
        before = timeline.loc[timeline["t"] <= float(t), "new_ready"]
        wanted = max(wanted, int(before.iloc[-1]) if len(before) else 0) + len(batch)
        later = timeline[(timeline["t"] > float(t)) & (timeline["new_ready"] >= wanted)]
        if len(later):
            seen = float(later["t"].iloc[0])
            if not any(lo < seen and float(t) < hi for lo, hi in faults):
                out.append(seen - 0.5 - float(t))
    return out


def read_run(d: Path) -> tuple[np.ndarray, list[float], dict, float]:
    """One run directory: kept latencies, start-up-to-rotation times, counts of what was left out, seconds covered."""
    records, shape_file = _records_dir(d)
    rec = read_records(records)
    if rec.empty:
        raise ScenarioError(f"--from {d}: {records} holds no request records")
    start = float(rec["t"].min())
    if shape_file.is_file():
        start = float(json.loads(shape_file.read_text()).get("start") or start)
    rel = rec["t"] - start
    events = _events(d)
    timeline = pd.read_csv(d / "timeline.csv") if (d / "timeline.csv").is_file() else None
    ok = (rec["status"] >= 200) & (rec["status"] < 400)
    warm = rel >= float(rel.min()) + WARMUP_S
    calm = pd.Series(True, index=rec.index)
    faults = fault_windows(events, float(rel.max()) + 1)
    for lo, hi in faults:
        calm &= ~((rel >= lo) & (rel < hi))
    released = events.loc[events["kind"] == "release_started", "time"]
    if rec["version"].notna().any():
        stable = rec["version"] == "old"
    else:
        stable = rel < (float(released.min()) if len(released) else np.inf)
    keep = ok & warm & calm & stable
    left_out = {"failed": int((~ok).sum()), "warm_up": int((ok & ~warm).sum()),
                "fault_windows": int((ok & warm & ~calm).sum()), "new_version": int((ok & warm & calm & ~stable).sum())}
    return (rec.loc[keep, "latency"].to_numpy(), rotation_times(events, timeline, faults), left_out,
            float(rel[keep].max() - rel[keep].min()) if keep.any() else 0.0)


def read_recorded(dirs: list[Path]) -> Recorded:
    """Every run directory's kept latencies and start-up times, together."""
    latencies, rotation, left_out, seconds = [], [], {}, 0.0
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise ScenarioError(f"--from {d}: no such directory")
        lat, rot, out, secs = read_run(d)
        latencies.append(lat)
        rotation += rot
        seconds += secs
        for k, v in out.items():
            left_out[k] = left_out.get(k, 0) + v
    return Recorded(np.concatenate(latencies), tuple(rotation), tuple(str(d) for d in dirs), left_out, seconds)
