"""The answer of a capacity search: the fleet size, every size judged with its intervals, and its figure."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from simlab.planning.conditions import Conditions

COLUMNS = ("instances", "serving", "runs", "latency_p99_ms", "latency_p99_ms_lo", "latency_p99_ms_hi",
           "availability", "availability_lo", "availability_hi", "utilization", "utilization_lo", "utilization_hi",
           "peak_utilization", "holds", "stage")
"""One row per fleet size judged: instances asked for and serving under the conditions, runs pooled, the mean
p99 latency (ms), availability (% good) and utilisation (offered work over the serving workers' time) with their
Student-t 95% intervals, the busiest second's utilisation, whether the SLO holds, and how the search got there
(doubling, bisection, confirmation, profile)."""


def _plain(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return x.item() if hasattr(x, "item") else x


@dataclass
class Capacity:
    """`.instances` the answer; `.table` every size judged (COLUMNS); `.to_dict()` for JSON; `.plot()`."""

    instances: int
    table: pd.DataFrame
    target: dict[str, float]
    conditions: Conditions
    meta: dict[str, Any] = field(default_factory=dict)

    def at(self, n: int) -> dict[str, Any] | None:
        """The row of fleet size n (None if it was not judged)."""
        rows = self.table[self.table["instances"] == n]
        return None if rows.empty else {k: _plain(v) for k, v in rows.iloc[0].items()}

    @property
    def marginal(self) -> bool:
        """Whether an interval at the answer or one below straddles a target (more runs would firm it up)."""
        out = False
        for row in (self.at(self.instances), self.at(self.instances - 1)):
            if row is None or row["latency_p99_ms_lo"] is None:
                continue
            p99, avail = self.target["latency_p99_ms"], self.target["availability"]
            out |= row["latency_p99_ms_lo"] <= p99 <= row["latency_p99_ms_hi"]
            out |= row["availability_lo"] <= avail <= row["availability_hi"]
        return bool(out)

    def to_dict(self) -> dict[str, Any]:
        def point(row: dict | None) -> dict | None:
            if row is None:
                return None
            out = {"instances": row["instances"], "serving": row["serving"], "runs": row["runs"]}
            for name in ("utilization", "latency_p99_ms", "availability"):
                out[name], out[f"{name}_ci"] = row[name], [row[f"{name}_lo"], row[f"{name}_hi"]]
            out["holds"] = row["holds"]
            return out

        return {"scenario": self.meta.get("scenario"), **point(self.at(self.instances)),
                "below": point(self.at(self.instances - 1)), "target": self.target,
                "conditions": self.conditions.names(), "marginal": self.marginal,
                "engine": self.meta.get("engine"), "seed": self.meta.get("seed"),
                "probes": self.meta.get("probes", [])}

    def sentence(self) -> str:
        a, b = self.at(self.instances), self.at(self.instances - 1)
        head = (f"{self.instances} instances keep p99 at most {self.target['latency_p99_ms']:g} ms and availability "
                f"at least {self.target['availability']:g}% ({self.conditions.describe()}): p99 "
                f"{a['latency_p99_ms']:.0f} ms, utilisation {a['utilization']:.0%}")
        if b is None:
            return head + "."
        why = "no instance serves" if not b["serving"] else (
            f"p99 {b['latency_p99_ms']:.0f} ms, availability {b['availability']:.3f}%"
            if b["latency_p99_ms"] is not None else "no request served in time")
        return head + f"; {self.instances - 1} do not ({why})."

    def __repr__(self) -> str:
        return f"<Capacity {self.sentence()}>"

    def _repr_html_(self) -> str:
        from simlab.report.views import html_table

        pct = "{:.1%}".format
        shown = self.table.drop(columns=["peak_utilization"])
        return html_table(shown, self.sentence(), {
            "latency_p99_ms": "{:.0f}", "latency_p99_ms_lo": "{:.0f}", "latency_p99_ms_hi": "{:.0f}",
            "availability": "{:.3f}", "availability_lo": "{:.3f}", "availability_hi": "{:.3f}",
            "utilization": pct, "utilization_lo": pct, "utilization_hi": pct})

    def plot(self):
        """p99 latency and utilisation against fleet size, 95% intervals, the targets and the answer marked."""
        from simlab.planning.figures import capacity_figure
        from simlab.report.views import Picture

        return Picture.of(capacity_figure(self.table, self.target, self.instances, self.conditions.describe()),
                          "capacity")
