"""The analysis-quality figure: detection probability against severity per variant, false rollbacks beside it."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simlab.report.formatting import pct
from simlab.report.plotting import colors_for, new_figure, png, style

MARKERS = ("o", "s", "^", "D", "v", "P")


def quality_figure(table: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    return png(draw_quality(table, meta))


def draw_quality(table: pd.DataFrame, meta: dict[str, Any]) -> Any:
    """The matplotlib Figure: a detection panel per defect kind (a curve per variant, labelled with its name),
    then the false-rollback bars (one per variant, its name on the y axis)."""
    variants = [str(v) for v in dict.fromkeys(table["variant"])]
    colors = colors_for(variants)
    bad = table[table["release"] != "good"]
    kinds = list(dict.fromkeys(bad["defect"])) or ["none"]
    fig = new_figure(4.6 * len(kinds) + 3.6, 3.9)
    axes = fig.subplots(1, len(kinds) + 1, width_ratios=[3] * len(kinds) + [2], squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        rows = bad[bad["defect"] == kind]
        labels = list(dict.fromkeys(rows.sort_values("severity", kind="stable")["release"]))
        x = np.arange(len(labels))
        for i, v in enumerate(variants):
            mine = rows[rows["variant"] == v].set_index("release").reindex(labels)
            p = mine["p_rollback"].to_numpy(float)
            lo, hi = mine["p_rollback_lo"].to_numpy(float), mine["p_rollback_hi"].to_numpy(float)
            dodge = x + 0.06 * (i - (len(variants) - 1) / 2)  # variants that coincide stay visible side by side
            ax.errorbar(dodge, p, yerr=np.clip(np.vstack([p - lo, hi - p]), 0, None), color=colors[v], label=v,
                        marker=MARKERS[i % len(MARKERS)], capsize=2, linewidth=1.4, markersize=5)
        if "min_detection" in meta:
            ax.axhline(meta["min_detection"], color="#555555", linestyle="--", linewidth=0.9)
        ax.set_xticks(x, [label.split("=", 1)[-1] for label in labels])
        ax.set_xlabel(f"{kind} severity", fontsize=9)
        ax.set_ylabel("P(rolled back) for a bad release", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        style(ax)
    axes[0].legend(fontsize=8, frameon=False, loc="lower right")
    ax = axes[-1]
    good = table[table["release"] == "good"].set_index("variant").reindex(variants)
    p = good["p_rollback"].to_numpy(float)
    y = np.arange(len(variants))
    err = np.vstack([p - good["p_rollback_lo"].to_numpy(float), good["p_rollback_hi"].to_numpy(float) - p])
    ax.barh(y, p, color=[colors[v] for v in variants], alpha=0.8)
    ax.errorbar(p, y, xerr=np.clip(err, 0, None), fmt="none", ecolor="#222222", capsize=3, linewidth=0.9)
    for yi, (pi, hi) in enumerate(zip(p, good["p_rollback_hi"].to_numpy(float))):
        if not np.isnan(pi):
            ax.annotate(pct(pi), (hi, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    if "max_false_rollback" in meta:
        ax.axvline(meta["max_false_rollback"], color="#555555", linestyle="--", linewidth=0.9)
    ax.set_yticks(y, variants)
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.1, float(np.nanmax(good["p_rollback_hi"].to_numpy(float))) * 1.25 if len(good) else 1.0))
    ax.set_xlabel("false rollbacks (good releases)", fontsize=9)
    style(ax)
    return fig


def quality_alt(table: pd.DataFrame) -> str:
    """The figure in words, for a reader who cannot see it: per variant its detection at each severity and its
    false rollbacks."""
    parts = []
    for variant, rows in table.groupby("variant", sort=False):
        bad = rows[rows["release"] != "good"]
        good = rows[rows["release"] == "good"]["p_rollback"]
        caught = ", ".join(f"{r['release']} {pct(r['p_rollback'])}" for _, r in bad.iterrows())
        parts.append(f"{variant} rolls back {pct(good.iloc[0]) if len(good) else '-'} of good releases"
                     + (f" and detects {caught}" if caught else ""))
    return ("Detection probability against severity, one curve per variant, and false rollbacks: "
            + "; ".join(parts) + ".")
