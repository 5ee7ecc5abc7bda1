"""Small scenarios for engine tests: a few instances, ~100 rps, minutes of simulated time."""
from __future__ import annotations

import copy
from typing import Any

from simlab.scenario import Scenario, validate_scenario

BASE: dict[str, Any] = {
    "name": "small",
    "duration": "20m",
    "fleet": {
        "instances": 6,
        "zones": 3,
        "workers": 4,
        "queue_limit": 20,
        "service_time": {"dist": "lognormal", "mean": "40ms", "p99": "200ms"},
        "startup": "10s",
        "health_check": {"interval": "2s", "unhealthy_after": 2, "healthy_after": 1},
    },
    "traffic": {"rps": 150, "timeout": "2s"},
    "release": {"at": "2m"},
    "strategy": {"kind": "canary", "steps": [{"weight": 10, "bake": "2m"}, {"weight": 50, "bake": "2m"}, {"weight": 100}]},
    "analysis": {
        "interval": "30s",
        "failure_limit": 2,
        "min_requests": 30,
        "metrics": [{"metric": "error_rate", "max": 0.02}, {"metric": "latency_p99", "max": "1s"}],
    },
    "rollback": {"automatic": True, "duration": "20s", "on_call": {"ack": "2m"}},
    "monitoring": {"scrape_interval": "5s", "window": "30s", "delay": "10s"},
    "slo": {"availability": 99.9, "latency_threshold": "500ms"},
}

STRATEGIES: dict[str, dict] = {
    "canary": BASE["strategy"],
    "rolling": {"kind": "rolling", "batch": 2, "max_surge": 1, "max_unavailable": 0, "bake": "1m"},
    "blue_green": {"kind": "blue_green", "warmup": "30s", "keep_old": "5m"},
    "big_bang": {"kind": "big_bang"},
}


def scenario(strategy: str = "canary", **overrides: Any) -> Scenario:
    """BASE with a strategy and dotted-key overrides, e.g. scenario("rolling", **{"release.defects": [...]})."""
    data = copy.deepcopy(BASE)
    data["strategy"] = copy.deepcopy(STRATEGIES[strategy])
    for dotted, value in overrides.items():
        cursor = data
        *parents, last = dotted.split(".")
        for key in parents:
            cursor = cursor.setdefault(key, {})
        if value is None:
            cursor.pop(last, None)
        else:
            cursor[last] = value
    return validate_scenario(data)
