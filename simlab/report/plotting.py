"""matplotlib on the Agg canvas without pyplot: no global figure state, no GUI backend, imported lazily."""
from __future__ import annotations

import io
from typing import Any

DPI = 110
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
OLD_COLOR, NEW_COLOR = "#8fa3b8", "#e4572e"
BASELINE_COLOR = "#3f5f7f"  # the canary's baseline: old version, apart from the stable fleet


def new_figure(width: float, height: float) -> Any:
    """A Figure drawn by the Agg canvas, constrained layout, house style applied."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e6e9ee", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def colors_for(names: list[str]) -> dict[str, str]:
    """The same colour for the same variant in every figure of a report."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
