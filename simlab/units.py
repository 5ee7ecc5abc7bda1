"""Durations as the field writes them: 250ms, 30s, 5m, 2h, 1d, or plain seconds."""
from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Return seconds for a number or a string like '1m30s'; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or a number of seconds, found {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found {value!r}"
                ) from None
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or a number of seconds, found {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, found {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a non-negative duration, found {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Short human form of a duration, for tables and narratives."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.3g}d"
