"""A calibration as a scenario fragment: the fitted values where the scenario reads them, the evidence beside them.

The fragment is YAML with scenario keys (merged into a scenario key by key by
`overlay`, as a `staging:` block is) and one `calibration:` mapping that
`overlay` leaves out: where the numbers came from, every candidate
distribution's fit quality, and what was measured but has no scenario key
(the balancer's per-request overhead, the load at which p99 breaks).

Where each value goes:
- `service_time` and `workers` describe the service: under `fleet:`, or under
  `staging.fleet:` when the scenario's staging block sets them itself (its
  value is what the staging ran);
- `startup` describes the staging (process start included): always under
  `staging.fleet:`. It is the measured time to rotation less the health
  checks' delay as the simulator draws it (the first passing check uniform
  within an interval, then `healthy_after - 1` more), so a simulated instance
  enters rotation when a measured one did on average;
- `service_time` is written as users see it (fitting.py): the service time
  plus the overhead of their requests' way to the instance, which the
  simulator cannot hold apart, so a simulated worker is held for it too;
- `workers` when the measured capacity is under 85% of `workers / mean
  service time` (the instance, not its workers, is the limit: CPU on a busy
  machine): the workers that give the measured capacity with the written
  mean; else `workers` x written mean / service mean, rounded, when that
  differs from `workers` (so `workers / written mean` stays near the
  measured service's capacity, which the overhead does not take).
"""
from __future__ import annotations

import math
from pathlib import Path

from simlab.errors import ScenarioError
from simlab.scenario import Scenario

CAPACITY_SHORTFALL = 0.85


def _home(raw: Scenario, key: str) -> tuple[str, ...]:
    """Where a fleet key goes so that the staging form of `raw` reads it (see the module docstring)."""
    block = raw.staging.fleet if raw.staging is not None and raw.staging.fleet else {}
    return ("staging", "fleet") if key in block else ("fleet",)


def _put(data: dict, path: tuple[str, ...], key: str, value) -> None:
    for part in path:
        data = data.setdefault(part, {})
    data[key] = value


def modelled_health_check_delay(s: Scenario) -> float:
    """Mean seconds from ready to rotation in the simulator: U(0, interval) then healthy_after - 1 intervals."""
    hc = s.fleet.health_check
    return (hc.healthy_after - 0.5) * hc.interval


def startup_record(staged: Scenario, rotation: list[float], ready: list[float] | None = None) -> dict:
    """The start-up figures, and the `fleet.startup` that makes the simulator's mean time to rotation match."""
    mean_rotation = sum(rotation) / len(rotation)
    modelled = modelled_health_check_delay(staged)
    out = {"instances_timed": len(rotation), "to_rotation_s": round(mean_rotation, 3),
           "to_rotation_each_s": [round(v, 3) for v in rotation],
           "modelled_health_check_delay_s": round(modelled, 3), "configured_startup_s": staged.fleet.startup,
           "startup_s": round(max(0.0, mean_rotation - modelled), 3)}
    if ready:
        mean_ready = sum(ready) / len(ready)
        out.update(to_ready_s=round(mean_ready, 3), health_check_delay_s=round(mean_rotation - mean_ready, 3))
    return out


def capacity_record(staged: Scenario, mean_service: float, levels: list[dict], per_instance: float,
                    saturated: bool, breaks_at: float | None, how: str, written_mean: float | None = None) -> dict:
    """Measured and modelled capacity of one instance, the load at which p99 passes the SLO threshold, and the
    `workers` to write if any (see the module docstring)."""
    workers = staged.fleet.workers
    modelled = workers / mean_service
    written = written_mean if written_mean is not None and math.isfinite(written_mean) else mean_service
    out = {"modelled_rps": round(modelled, 1), "per_instance_rps": round(per_instance, 1),
           "saturated": saturated, "p99_threshold_ms": round(staged.slo.latency_threshold * 1e3, 3),
           "p99_breaks_at_rps": None if breaks_at is None else round(breaks_at, 1), "p99_breaks_how": how,
           "configured_workers": workers, "levels": levels}
    if saturated and per_instance < CAPACITY_SHORTFALL * modelled:
        out["workers"] = max(1, round(per_instance * written))
        out["workers_why"] = "the measured capacity is under 85% of the modelled"
    elif round(workers * written / mean_service) != workers:
        out["workers"] = round(workers * written / mean_service)
        out["workers_why"] = "the written service time carries the overhead of a request's way to the instance"
    return out


def build(raw: Scenario, staged: Scenario, service, evidence: dict, capacity: dict | None = None,
          startup: dict | None = None) -> dict:
    """The fragment: scenario keys for what the simulator can take, `calibration:` for the evidence."""
    out: dict = {}
    _put(out, _home(raw, "service_time"), "service_time", service.spec)
    if capacity is not None and "workers" in capacity:
        _put(out, _home(raw, "workers"), "workers", capacity["workers"])
    if startup is not None:
        _put(out, ("staging", "fleet"), "startup", f"{startup['startup_s']:.3f}s")
    best = service.best
    out["calibration"] = {
        "scenario": raw.name,
        **evidence,
        "service_time": {
            "chosen": service.chosen, "why": service.why, "latencies": service.n,
            "overhead_ms": round(service.overhead_mean * 1e3, 4),
            "fitted_mean_ms": round(best.mean * 1e3, 4), "fitted_p99_ms": round(best.p99 * 1e3, 4),
            "path_overhead_ms": round(service.path_mean * 1e3, 4),
            "written_mean_ms": round(service.seen_mean * 1e3, 4), "written_p99_ms": round(service.seen_p99 * 1e3, 4),
            "configured": staged.fleet.service_time.model_dump(mode="json", exclude_none=True),
            "candidates": [c.row() for c in service.candidates],
        },
        **({"capacity": capacity} if capacity is not None else {}),
        **({"startup": startup} if startup is not None else {}),
    }
    return out


def dump(fragment: dict, header: str) -> str:
    """YAML text of a fragment, the header as comments above it."""
    import yaml

    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + yaml.safe_dump(_plain(fragment), sort_keys=False, width=120, allow_unicode=True)


def _plain(value):
    """Numbers and containers as YAML writes them plainly (no numpy scalars, no NaN)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def read(path: str | Path) -> tuple[dict, dict, dict]:
    """A fragment file: (scenario keys, the `calibration:` mapping, line of each key path); ScenarioError if unreadable."""
    from simlab.scenario.files import read_scenario_text
    from simlab.scenario.loading import _parse_yaml

    path = Path(path)
    data, lines = _parse_yaml(read_scenario_text(path, "calibration fragment"), str(path))
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping of scenario keys (a calibration fragment), "
                            f"found {type(data).__name__}")
    evidence = data.pop("calibration", None) or {}
    if not isinstance(evidence, dict):
        raise ScenarioError(f"{path}:{lines.get(('calibration',), 1)}: calibration: expected a mapping, "
                            f"found {type(evidence).__name__}")
    return data, evidence, lines


def merge(base, over):
    """`over` merged into `base` key by key; a distribution or anything with a `kind` is replaced whole."""
    if isinstance(base, dict) and isinstance(over, dict) and not ({"dist", "kind"} & set(over)):
        return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}
    return over


def overlay(scenario: Scenario, path: str | Path) -> Scenario:
    """`scenario` with the fragment in `path` merged in key by key; ScenarioError naming the fragment's line if invalid."""
    from simlab.scenario.loading import validate_scenario

    keys, _, lines = read(path)
    data = merge(scenario.model_dump(mode="json"), keys)
    return validate_scenario(data, source=str(path), base_dir=Path(path).parent, lines=lines)
