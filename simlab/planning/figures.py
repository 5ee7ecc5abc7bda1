"""The capacity figure: p99 latency and utilisation against fleet size, with 95% intervals."""
from __future__ import annotations

import numpy as np
import pandas as pd

from simlab.report.plotting import NEW_COLOR, PALETTE, new_figure, style


def capacity_figure(table: pd.DataFrame, target: dict, answer: int, conditions: str):
    """Two panels over the sizes judged: mean p99 (ms) with its interval and the target; mean utilisation."""
    fig = new_figure(9.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    rows = table.sort_values("instances")
    x = rows["instances"].to_numpy(float)
    for ax, name, scale, label in ((ax1, "latency_p99_ms", 1.0, "p99 latency (ms)"),
                                   (ax2, "utilization", 100.0, "utilisation (%)")):
        y = rows[name].to_numpy(float) * scale
        err = np.vstack([y - rows[f"{name}_lo"].to_numpy(float) * scale, rows[f"{name}_hi"].to_numpy(float) * scale - y])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o-", color=PALETTE[0], capsize=3, label="mean, 95% interval")
        held = rows["holds"].to_numpy(bool)
        ax.scatter(x[~held], y[~held], color=NEW_COLOR, zorder=3, label="SLO not held")
        ax.axvline(answer, color="#2ca02c", linestyle="--", linewidth=1, label=f"answer: {answer}")
        ax.set_xlabel("instances")
        ax.set_ylabel(label)
        style(ax)
    ax1.axhline(target["latency_p99_ms"], color="#d62728", linestyle=":", label=f"target {target['latency_p99_ms']:g} ms")
    ax1.set_ylim(bottom=0)
    ax1.legend(frameon=False, fontsize=8)
    ax2.set_ylim(0, max(105.0, float(np.nanmax(rows["utilization"].to_numpy(float))) * 100.0 + 5.0))
    fig.suptitle(conditions, fontsize=10)
    return fig
