"""The optimize figure: every trial on the tuning seeds with its Pareto front, and the policies run again on fresh
seeds (the current one, the candidates, the recommended one) with 95% intervals."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simlab.report.plotting import new_figure, png, style

X = "deploy_duration_mean"


def _y(meta: dict[str, Any]) -> str:
    """The vertical axis: the first objective unless it is the deploy time (then the harm)."""
    first = (meta.get("minimize") or ["bad_requests_added"])[0]
    return first if first != X else "bad_requests_added"


def _label(name: str, unit: str) -> str:
    return name.replace("_", " ") + {"seconds": " (minutes)", "share": " (share)"}.get(unit, "")


def _scale(unit: str) -> float:
    return 1 / 60.0 if unit == "seconds" else 1.0


def pareto_figure(trials: pd.DataFrame, fresh: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    """Left: trials on the tuning seeds, deploy time against the first objective, coloured by false rollbacks,
    infeasible ones as grey crosses, the front circled; right: the fresh-seed comparison with intervals."""
    units = {k: v.get("unit", "count") for k, v in (meta.get("metrics") or {}).items()}
    y = _y(meta)
    sx, sy = _scale(units.get(X, "seconds")), _scale(units.get(y, "count"))
    fig = new_figure(11.5, 4.6)
    left, right = fig.subplots(1, 2)
    done = trials[trials["state"] == "complete"] if len(trials) else trials
    if len(done):
        feasible = done[done["feasible"].astype(bool)]
        infeasible = done[~done["feasible"].astype(bool)]
        left.scatter(infeasible[X] * sx, infeasible[y] * sy, marker="x", color="#b7c0ca", s=26,
                     label="infeasible (tuning seeds)", zorder=2)
        points = left.scatter(feasible[X] * sx, feasible[y] * sy, c=feasible["false_rollback"], cmap="viridis_r",
                              vmin=0, vmax=max(0.05, float(done["false_rollback"].max())), s=30, zorder=3,
                              label="trial")
        fig.colorbar(points, ax=left, shrink=0.85).set_label("false rollbacks", fontsize=8)
        front = done[done["pareto"].astype(bool)].sort_values(X)
        left.scatter(front[X] * sx, front[y] * sy, s=110, facecolors="none", edgecolors="#d62728", linewidths=1.3,
                     label="Pareto front", zorder=4)
        for _, row in front.iterrows():
            left.annotate(f"{int(row['trial'])}", (row[X] * sx, row[y] * sy), textcoords="offset points",
                          xytext=(6, 4), fontsize=7, color="#333333")
    left.set_xlabel(_label("deploy time of a good release, mean", "seconds"), fontsize=9)
    left.set_ylabel(_label(y, units.get(y, "count")), fontsize=9)
    left.set_title(f"{len(done)} trials, {meta.get('runs_per_trial')} runs each (tuning seeds)", fontsize=10,
                   loc="left")
    left.legend(fontsize=7, frameon=False, loc="best")
    style(left)
    _fresh_panel(right, fresh, y, sx, sy, meta)
    return png(fig)


def _fresh_panel(ax: Any, fresh: pd.DataFrame, y: str, sx: float, sy: float, meta: dict[str, Any]) -> None:
    colours = {"current": "#1f77b4", "candidate": "#8c8c8c", "recommended": "#d62728", "current, recommended": "#d62728"}
    for policy, rows in fresh.groupby("policy", sort=False):
        r = rows.set_index("metric")
        if X not in r.index or y not in r.index:
            continue
        xv, yv = r.loc[X], r.loc[y]
        role = str(xv["role"])
        xerr = np.clip([[xv["value"] - xv["lo"]], [xv["hi"] - xv["value"]]], 0, None) * sx
        yerr = np.clip([[yv["value"] - yv["lo"]], [yv["hi"] - yv["value"]]], 0, None) * sy
        ax.errorbar([xv["value"] * sx], [yv["value"] * sy], xerr=xerr, yerr=yerr, fmt="*" if "recommended" in role
                    else "o", color=colours.get(role, "#8c8c8c"), markersize=11 if "recommended" in role else 6,
                    capsize=2, linewidth=1.0, zorder=3)
        ax.annotate(f"{policy} ({role})" if role not in ("candidate", policy) else str(policy),
                    (xv["value"] * sx, yv["value"] * sy),
                    textcoords="offset points", xytext=(7, 5), fontsize=7, color="#333333")
    ax.set_xlabel(_label("deploy time of a good release, mean", "seconds"), fontsize=9)
    ax.set_ylabel(y.replace("_", " "), fontsize=9)
    ax.set_title(f"fresh seeds: {meta.get('fresh_runs')} held-out runs each, 95% intervals", fontsize=10, loc="left")
    style(ax)
