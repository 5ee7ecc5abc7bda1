"""Sweep figures: every grid point's deploy time against its objective (the decision's trade-off), a heatmap."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simlab.report.formatting import count, duration, pct, short_param
from simlab.report.plotting import new_figure, png, style

X, Y = "deploy_duration_good_mean_s", "bad_mean"


def point_label(row: pd.Series, params: list[str]) -> str:
    return ", ".join(f"{short_param(p).split('.')[-1]}={row[p]}" for p in params)


@dataclass(frozen=True)
class Point:
    """One grid point as the trade-off figure draws it: numbered as in the report's tables."""

    number: int
    x: float  # seconds
    y: float
    y_lo: float
    y_hi: float
    state: str  # recommended | tied | within | out | point (no decision)
    note: str = ""  # why it is out, short: '100% false rollbacks'

    @property
    def label(self) -> str:
        return f"{self.number}" + (f": {self.note}" if self.note else "")


STYLES = {  # state: marker, size, face, edge, legend
    "recommended": ("*", 230, "#d62728", "#7a1414", "recommended"),
    "tied": ("D", 60, "#ff7f0e", "#8a4500", "indistinguishable leaders"),
    "within": ("o", 44, "#1f77b4", "#12456b", "within the limits"),
    "out": ("o", 44, "white", "#7f8b97", "out (why, beside it)"),
    "point": ("o", 44, "#1f77b4", "#12456b", "grid point"),
}


def short_reason(fail: dict, counts: dict) -> str:
    """A failed limit in a few words, as a label beside its point."""
    value = (fail.get("value") or [None])[0]
    if "text" in fail:
        return str(fail.get("short") or fail["text"])
    if fail["metric"] == "false_rollback":
        return f"{pct(value)} false rollbacks"
    if fail["metric"] == "deploy_duration_mean":
        return f"deploys in {duration(value)} > {duration(fail['bound'])}"
    if fail["metric"] == "detection":
        return f"catches {fail['severity']} {pct(value)}"
    if fail["metric"] == "bad_promoted":
        return f"{pct(value)} bad promoted"
    return f"{fail['metric']} {value:g}" if value is not None else fail["metric"]


def points_from_decision(decision: dict) -> list[Point]:
    """Every grid point of a decision (simlab.experiment.decision): mean deploy time of a good release (one not
    deployed counts as the rest of the run, so no point lacks one) against the objective with its interval."""
    out = []
    tied = set(decision.get("tied") or [])
    scale = 1 / 60.0 if decision.get("unit") == "seconds" else 1.0
    for i, v in enumerate(decision["variants"]):
        x = v["metrics"].get("deploy_duration_mean", [None])[0]
        y, lo, hi = [None if z is None else z * scale for z in (list(v["metrics"][decision["objective"]]) + [None] * 3)[:3]]
        if v["fails"]:
            state = "out"
        elif i == decision.get("recommended"):
            state = "recommended"
        else:
            state = "tied" if i in tied else "within"
        note = "; ".join(short_reason(f, v.get("counts", {})) for f in v["fails"])
        out.append(Point(i + 1, _f(x), _f(y), _f(lo, y), _f(hi, y), state, note))
    return out


def points_from_table(table: pd.DataFrame) -> list[Point]:
    """Every grid point of a sweep table written without a decision: mean deploy time of the good releases that
    were promoted against bad requests added (or, in older tables, per deploy); a point that never promoted a
    good release is drawn at the right edge, labelled so."""
    y = "added_mean" if "added_mean" in table.columns and table["added_mean"].notna().any() else Y
    xs = pd.to_numeric(table.get(X, pd.Series(math.nan, index=table.index)), errors="coerce")
    edge = float(xs.max()) * 1.08 if xs.notna().any() else 60.0
    out = []
    for n, (_, row) in enumerate(table.iterrows(), start=1):
        never = math.isnan(_f(row.get(X)))
        value = _f(row.get(y))
        out.append(Point(n, edge if never else _f(row.get(X)), value, _f(row.get(f"{y}_lo"), value),
                         _f(row.get(f"{y}_hi"), value), "point", "no good release deployed" if never else ""))
    return out


def _f(value, default=math.nan) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float(default) if default is not None else math.nan
    return float(default) if math.isnan(out) and default is not None else out


def front(points: list[Point]) -> list[Point]:
    """The points within the limits that no other such point beats on both axes (lower is better)."""
    inside = sorted((p for p in points if p.state != "out" and not math.isnan(p.x) and not math.isnan(p.y)),
                    key=lambda p: (p.x, p.y))
    keep, best = [], math.inf
    for p in inside:
        if p.y < best:
            keep.append(p)
            best = p.y
    return keep


def _fitted(low: float, high: float, pad: float = 0.08) -> tuple[float, float]:
    """Axis limits around the data with a margin, not anchored at 0."""
    span = high - low
    margin = pad * span if span > 0 else max(abs(high) * pad, 1.0)
    return low - margin, high + margin


def tradeoff_figure(points: list[Point], y_label: str, x_label: str = "", limit_x: float | None = None) -> bytes:
    return png(draw_tradeoff(points, y_label, x_label, limit_x))


def draw_tradeoff(points: list[Point], y_label: str, x_label: str = "", limit_x: float | None = None):
    """Every point, numbered; out ones hollow with their reason; the front of those within the limits joined;
    95% intervals of the objective as bars; axes fitted to the data; labels placed clear of points and bars."""
    from simlab.report.placement import place_labels

    fig = new_figure(8.8, 5.4)
    ax = fig.add_subplot()
    drawn = [p for p in points if not math.isnan(p.x) and not math.isnan(p.y)]
    xs = np.array([p.x / 60.0 for p in drawn])
    for state, (marker, size, face, edge, name) in STYLES.items():
        group = [p for p in drawn if p.state == state]
        if not group:
            continue
        gx, gy = np.array([p.x / 60.0 for p in group]), np.array([p.y for p in group])
        err = np.array([[p.y - p.y_lo for p in group], [p.y_hi - p.y for p in group]])
        ax.errorbar(gx, gy, yerr=np.clip(err, 0, None), fmt="none", ecolor="#c3cad3", elinewidth=1.0, capsize=2,
                    zorder=2)
        ax.scatter(gx, gy, marker=marker, s=size, facecolors=face, edgecolors=edge, linewidths=1.2, label=name,
                   zorder=4 if state != "out" else 3)
    line = front(drawn)
    if len(line) > 1:
        ax.plot([p.x / 60.0 for p in line], [p.y for p in line], "--", color="#9aa6b2", linewidth=1.0, zorder=1,
                label="front of those within the limits")
    if len(drawn):
        ax.set_xlim(*_fitted(float(xs.min()), float(xs.max())))
        ax.set_ylim(*_fitted(min(p.y_lo for p in drawn), max(p.y_hi for p in drawn)))
    if limit_x is not None and len(drawn) and ax.get_xlim()[0] <= limit_x / 60.0 <= ax.get_xlim()[1]:
        ax.axvline(limit_x / 60.0, color="#b03a2e", linestyle=":", linewidth=1.2, label="deploy-time limit")
    ax.set_xlabel(x_label or "deploy time of a good release, mean (minutes)", fontsize=9)
    ax.set_ylabel(y_label, fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    style(ax)
    if len(drawn):
        fig.canvas.draw()
        bars = ax.transData.transform(np.array([[p.x / 60.0, p.y_lo] for p in drawn] +
                                               [[p.x / 60.0, p.y_hi] for p in drawn]))
        half = len(drawn)
        obstacles = [(bars[k][0] - 1.5, min(bars[k][1], bars[k + half][1]), bars[k][0] + 1.5,
                      max(bars[k][1], bars[k + half][1])) for k in range(half)]
        place_labels(fig, ax, np.column_stack([xs, [p.y for p in drawn]]), [p.label for p in drawn], obstacles,
                     fontsize=8, color="#26303b")
    return fig


def pareto_figure(table: pd.DataFrame, pareto: pd.DataFrame | None = None, params: list[str] | None = None,
                  decision: dict | None = None) -> bytes:
    """The trade-off figure of a sweep: from its decision when it has one, else from its table."""
    if decision:
        spec = decision.get("spec") or {}
        return tradeoff_figure(points_from_decision(decision), objective_label(decision), "",
                               spec.get("max_deploy_duration"))
    y = "bad requests added per deploy, mean" if "added_mean" in table.columns else "bad requests per deploy, mean"
    return tradeoff_figure(points_from_table(table), y,
                           "deploy time of a good release, mean over those promoted (minutes)")


def objective_label(decision: dict) -> str:
    from simlab.report.decision import phrase

    return phrase(decision["objective"]) + (" (minutes)" if decision.get("unit") == "seconds" else "")


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
