"""Sweep figures: the Pareto front of deploy duration against bad requests, and a heatmap over two parameters."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simlab.report.formatting import count, duration, short_param
from simlab.report.plotting import new_figure, png, style

X, Y = "deploy_duration_good_mean_s", "bad_mean"


def point_label(row: pd.Series, params: list[str]) -> str:
    return ", ".join(f"{short_param(p).split('.')[-1]}={row[p]}" for p in params)


def pareto_figure(table: pd.DataFrame, pareto: pd.DataFrame | None, params: list[str]) -> bytes:
    """Every grid point in grey, the front in colour and labelled: faster deploys cost more bad requests."""
    fig = new_figure(8.5, 5.2)
    ax = fig.add_subplot()
    pts = table.dropna(subset=[X, Y])
    ax.scatter(pts[X] / 60.0, pts[Y], s=26, color="#b7c0ca", label="grid point", zorder=2)
    front = (pareto if pareto is not None else pareto_front(table)).dropna(subset=[X, Y]).sort_values(X)
    ax.plot(front[X] / 60.0, front[Y], "-o", color="#d62728", markersize=6, linewidth=1.4,
            label="Pareto front", zorder=3)
    for _, row in front.iterrows():
        ax.annotate(point_label(row, params), (row[X] / 60.0, row[Y]), textcoords="offset points", xytext=(6, 5),
                    fontsize=8, color="#333333")
    ax.set_xlabel("deploy duration of a good release, mean (minutes)", fontsize=9)
    ax.set_ylabel("bad requests per deploy, mean", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0, right=float(pts[X].max()) / 60.0 * 1.25 if len(pts) else 1)
    ax.legend(fontsize=8, frameon=False)
    style(ax)
    return png(fig)


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """Points no other point beats on both deploy duration and bad requests (lower is better on both)."""
    pts = table.dropna(subset=[X, Y]).sort_values([X, Y])
    keep, best = [], math.inf
    for idx, y in zip(pts.index, pts[Y]):
        if y < best:
            keep.append(idx)
            best = y
    return pts.loc[keep]


def _levels(values: pd.Series) -> list:
    """Grid values in the order the sweep listed them (first appearance)."""
    return list(dict.fromkeys(values.tolist()))


HEAT_METRICS = (  # column, title, colour map, cell label, colour-bar scale and label
    (Y, "bad requests per deploy, mean", "Reds", count, 1.0, "bad requests"),
    (X, "deploy duration (good), mean", "Blues", duration, 1 / 60.0, "minutes"),
)


def heatmap_figure(table: pd.DataFrame, x_param: str, y_param: str) -> bytes:
    """One heatmap per metric over the grid of two swept parameters, each cell annotated with its value."""
    metrics = [m for m in HEAT_METRICS if m[0] in table.columns]
    xs, ys = _levels(table[x_param]), _levels(table[y_param])
    fig = new_figure(max(6.0, 4.6 * len(metrics)), max(3.2, 0.55 * len(ys) + 2.0))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, (column, title, cmap, fmt, scale, unit) in zip(axes, metrics):
        grid = (table.groupby([y_param, x_param], sort=False)[column].mean()
                .unstack(x_param).reindex(index=ys, columns=xs))
        values = grid.to_numpy(float)
        image = ax.imshow(values * scale, cmap=cmap, aspect="auto")
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if len(finite) else 0
        for i in range(len(ys)):
            for j in range(len(xs)):
                v = values[i, j]
                label = fmt(v) if np.isfinite(v) else "-"
                ax.text(j, i, label, ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(v) and v > mid else "#222222")
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_yticks(range(len(ys)), [str(y) for y in ys])
        ax.set_xlabel(short_param(x_param), fontsize=9)
        ax.set_ylabel(short_param(y_param), fontsize=9)
        ax.set_title(title, fontsize=10, loc="left")
        ax.tick_params(labelsize=8)
        fig.colorbar(image, ax=ax, shrink=0.85).set_label(unit, fontsize=8)
    return png(fig)
