"""A lint finding (rule id, severity, the field it is about, one line with the numbers), a scenario's findings, and
durations and shares as the reasons write them."""
from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


def span(seconds: float) -> str:
    """A duration as a scenario writes it: 1m45s, 30m, 14h, 500ms."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    left, parts = round(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def pct(x: float) -> str:
    """A share as a percentage: 68%, 5.6%, 0.0042%."""
    return f"{x * 100:.0f}%" if x * 100 >= 10 or x == 0 else f"{x * 100:.2g}%"


@dataclass(frozen=True)
class Finding:
    """One problem of a rollout policy: `id` names the rule, `field` the dotted path it is about, `reason` says
    why in one line with the numbers; `data` holds those numbers for tools (`--json`)."""

    id: str
    severity: Severity
    field: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.severity:<7}  {self.id}  {self.field}: {self.reason}"


class Findings(tuple):
    """A scenario's findings, errors first; renders as a table in Jupyter."""

    def __new__(cls, items=()):
        return super().__new__(cls, sorted(items, key=lambda f: f.severity != "error"))

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self if f.severity == "warning")

    def ids(self) -> list[str]:
        return [f.id for f in self]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self]

    def summary(self) -> str:
        """"2 errors, 1 warning" or "clean"."""
        if not self:
            return "clean"
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"

    def __repr__(self) -> str:
        return "\n".join([self.summary(), *(f.line() for f in self)])

    def _repr_html_(self) -> str:
        if not self:
            return "<p>lint: clean, no finding</p>"
        rows = "".join(
            f"<tr><td>{html.escape(f.severity)}</td><td>{html.escape(f.id)}</td><td><code>{html.escape(f.field)}"
            f"</code></td><td style='text-align:left'>{html.escape(f.reason)}</td></tr>" for f in self)
        head = "<tr><th>severity</th><th>rule</th><th>field</th><th>reason</th></tr>"
        return f"<p>{html.escape(self.summary())}</p><table>{head}{rows}</table>"
