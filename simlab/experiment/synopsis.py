"""A scenario in a few lines, as a report opens with it: the world, the release, the analysis.

Kept in meta.json ("synopsis") by compare, sweep, analysis-quality and optimize, so a report read later says
what was simulated without the scenario file at hand.
"""
from __future__ import annotations

from typing import Any

from simlab.scenario import Scenario
from simlab.units import format_duration

_DURATIONS = {"at", "duration", "mtbf", "restart", "add_latency", "add", "oom_after", "after"}
_SHARES = {"rate", "error_rate", "fraction"}


def synopsis(scenario: Scenario) -> list[str]:
    """Three or four sentences: name and description, fleet and traffic and failures, the release, the analysis."""
    s = scenario
    out = [f"{s.name}: {s.description}." if s.description else f"{s.name}."]
    zones = f"{s.fleet.zones} zone{'s' if s.fleet.zones != 1 else ''}"
    traffic = f"{s.fleet.instances} instances in {zones} at {s.traffic.rps:g} rps"
    pattern = getattr(s.traffic.pattern, "kind", "constant")
    extras = [pattern] if pattern != "constant" else []
    extras += [f"×{p.multiplier:g} for {format_duration(p.duration)} at {format_duration(p.at)}"
               for p in s.traffic.spikes]
    line = traffic + (f" ({', '.join(extras)})" if extras else "") + f" for {format_duration(s.duration)}"
    if s.failures:
        line += "; failures: " + "; ".join(_item(f) for f in s.failures)
    out.append(line + ".")
    release = s.release
    if release is None:
        out.append("No release: every run is the fleet alone.")
    else:
        p = release.bad_probability if release.bad_probability is not None else (1.0 if release.bad else 0.0)
        what = "; ".join(_item(d) for d in release.defects) or "an incompatible migration"
        chance = "every run" if p == 1 else ("no run" if p == 0 else f"{100 * p:g}% of runs")
        out.append(f"A release at {format_duration(release.at)}, bad in {chance}" + (f" ({what})." if p else "."))
    if s.analysis is not None:
        checks = ", ".join(_check(m) for m in s.analysis.metrics)
        out.append(f"Analysis every {format_duration(s.analysis.interval)} ({checks}); {s.analysis.failure_limit} "
                   f"failed measurement{'s' if s.analysis.failure_limit != 1 else ''} roll back"
                   + ("." if s.rollback.automatic else ", by the on-call (no automatic rollback)."))
    return out


def _item(model: Any) -> str:
    """`dependency at 30m for 5m, add_latency 50ms, error_rate 1%`: a defect or failure with its set fields."""
    data = model.model_dump(mode="json", exclude_defaults=True)
    kind = data.pop("kind", type(model).__name__)
    names = {"rate": "", "duration": "for "}
    parts = [f"{names.get(key, key + ' ')}{_value(key, value)}" for key, value in data.items()]
    return kind + (" " + ", ".join(parts) if parts else "")


def _value(key: str, value: Any) -> str:
    if isinstance(value, dict):
        if "dist" in value:
            return f"{value['dist']}"
        return ", ".join(f"{k} {_value(k, v)}" for k, v in value.items())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key in _DURATIONS:
            return format_duration(float(value))
        if key in _SHARES:
            return f"{100 * value:g}%"
        return f"{value:g}"
    return str(value)


def _check(metric: Any) -> str:
    bits = []
    if metric.max is not None:
        bound = metric.max
        if isinstance(bound, (int, float)):
            bound = f"{100 * bound:g}%" if metric.builtin == "error_rate" else format_duration(float(bound))
        bits.append(f"{metric.metric} ≤ {bound}")
    if metric.max_ratio_to_baseline is not None:
        bits.append(f"{metric.metric} ≤ {metric.max_ratio_to_baseline:g}× the old version's")
    return " and ".join(bits) or metric.metric
