"""Pure metric functions: what monitoring can see, percentiles, burn rates, error budget."""
from __future__ import annotations

import math

import numpy as np


def visible_until(now: float, scrape_interval: float, delay: float) -> float:
    """Latest sample time monitoring shows at `now`: the last scrape at or before now - delay."""
    return math.floor(max(now - delay, 0.0) / scrape_interval + 1e-9) * scrape_interval


def percentile(values: np.ndarray, q: float) -> float | None:
    """The q-th percentile (0-100) of values, or None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def burn_rate(bad: int, total: int, availability_percent: float) -> float | None:
    """How many times faster than allowed the error budget burns over a window."""
    if total <= 0:
        return None
    return (bad / total) / (1.0 - availability_percent / 100.0)


def error_budget_used(bad: int, mean_rps: float, availability_percent: float, slo_window_s: float) -> float:
    """Bad requests as a fraction of the SLO window's error budget at this traffic."""
    budget = mean_rps * slo_window_s * (1.0 - availability_percent / 100.0)
    return bad / budget if budget > 0 else math.inf if bad else 0.0
