"""The timeline of one rollout: what share the new version got, what users saw, what the fleet looked like."""
from __future__ import annotations

import pandas as pd

from simlab.report.plotting import BASELINE_COLOR, NEW_COLOR, OLD_COLOR, new_figure, png, style

# event kind -> (label, colour, line style); drawn as vertical lines across every panel
MARKERS = {
    "release_started": ("release", "#222222", "-"),
    "step_started": ("step", "#9aa4ae", "--"),
    "analysis_failed": ("analysis failed", "#d62728", ":"),
    "detected": ("detected", "#ff7f0e", "-"),
    "rollback_started": ("rollback start", "#9467bd", "-."),
    "rollback_finished": ("rollback done", "#2ca02c", "-"),
    "promoted": ("promoted", "#1f77b4", "-"),
}
# Detection and rollback start often share a second: each also gets its own marker in its own row above the
# top panel (y in % of traffic), and rollback start's line is drawn over detection's, narrower.
FLAGS = {"analysis_failed": ("x", 106.0), "detected": ("v", 114.0), "rollback_started": ("D", 121.0)}
LINE_STYLE = {"detected": (2.4, 2), "rollback_started": (1.3, 3)}  # (width, zorder); others (1.0, 1)
# fault kind -> (the event that ends it, colour): shaded across every panel while in force
FAULTS = {"zone_down": ("zone_up", "#8c564b"), "dependency_failure_started": ("dependency_failure_ended", "#bcbd22")}
SMOOTH_S = 10  # seconds of rolling mean on rates, so single-second noise does not hide the shape


def marker_times(events: pd.DataFrame) -> dict[str, list[float]]:
    """Times of the events the timeline marks, by marker kind (failed analyses become 'analysis_failed')."""
    out: dict[str, list[float]] = {k: [] for k in MARKERS}
    out["instance_crash"] = []
    for time, kind, detail in zip(events["time"], events["kind"], events["detail"]):
        if kind == "analysis":
            if isinstance(detail, dict) and detail.get("status") == "failed":
                out["analysis_failed"].append(float(time))
        elif kind in out:
            out[kind].append(float(time))
    return out


def _fault_label(kind: str, detail) -> str:
    detail = detail if isinstance(detail, dict) else {}
    if kind == "zone_down":
        return f"zone {detail.get('zone', '?')} down"
    bits = []
    if detail.get("add_latency"):
        bits.append(f"+{float(detail['add_latency']) * 1000:.0f}ms")
    if detail.get("error_rate"):
        bits.append(f"{float(detail['error_rate']):.0%} errors")
    return "dependency degraded" + (f" ({', '.join(bits)})" if bits else "")


def fault_windows(events: pd.DataFrame, end: float) -> list[tuple[float, float, str, str]]:
    """(start, end, kind, label) of every fault the events name (zone outages, degraded dependencies).

    A fault is matched with the first ending event after it (for a zone, of the same zone); one that never
    ended lasts until `end`.
    """
    rows = list(zip(events["time"].astype(float), events["kind"], events["detail"]))
    out = []
    for i, (start, kind, detail) in enumerate(rows):
        if kind not in FAULTS:
            continue
        ender = FAULTS[kind][0]
        zone = detail.get("zone") if isinstance(detail, dict) else None
        stop = next((t for t, k, d in rows[i + 1:] if k == ender and t >= start
                     and (zone is None or (isinstance(d, dict) and d.get("zone") == zone))), end)
        out.append((start, max(stop, start), kind, _fault_label(kind, detail)))
    return out


def shade_faults(axes, windows, scale: float, hatch: str | None = None) -> None:
    """Each fault window as a band across every panel, behind the data; `hatch` draws it hatched, unfilled."""
    for start, stop, kind, _ in windows:
        color = FAULTS[kind][1]
        for ax in axes:
            if hatch:
                ax.axvspan(start / scale, stop / scale, facecolor="none", edgecolor=color, hatch=hatch,
                           linewidth=0, alpha=0.5, zorder=0, gid=f"fault:{kind}:hatched")
            else:
                ax.axvspan(start / scale, stop / scale, color=color, alpha=0.14, linewidth=0, zorder=0,
                           gid=f"fault:{kind}")


def fault_handles(windows) -> list:
    from matplotlib.patches import Patch

    seen: dict[str, str] = {}
    for _, _, kind, label in windows:
        seen.setdefault(label, FAULTS[kind][1])
    return [Patch(facecolor=color, alpha=0.3, label=label) for label, color in seen.items()]


ROLLOUT_KINDS = ("release_started", "step_started", "promoted", "rollback_finished", "detected")


def rollout_window(timeline: pd.DataFrame, events: pd.DataFrame, margin: float = 60.0) -> tuple[float, float] | None:
    """The stretch from just before the release to just after it settled, when that is under half the run."""
    times = events.loc[events["kind"].isin(ROLLOUT_KINDS), "time"].astype(float)
    if not len(times) or not len(timeline):
        return None
    start = max(float(timeline["t"].min()), float(times.min()) - margin)
    end = min(float(timeline["t"].max()) + 1, float(times.max()) + 2 * margin)
    run = float(timeline["t"].max()) + 1 - float(timeline["t"].min())
    return (start, end) if end - start < 0.5 * run else None


def timeline_figure(timeline: pd.DataFrame, events: pd.DataFrame, window: tuple[float, float] | None = None) -> bytes:
    """Four panels sharing a time axis in minutes, with the controller's events as vertical markers (PNG).

    `window` (start, end) in seconds draws only that stretch, e.g. the rollout itself.
    """
    return png(draw_timeline(timeline, events, window))


def draw_timeline(timeline: pd.DataFrame, events: pd.DataFrame, window: tuple[float, float] | None = None):
    """The matplotlib Figure of `timeline_figure`: fault windows shaded, the controller's events marked.

    Artists a reader (or a test) can find by gid: `fault:<kind>` bands, `vline:<kind>` event lines,
    `flag:<kind>` the rows of markers above the top panel.
    """
    from matplotlib.lines import Line2D

    end = float(timeline["t"].max()) + 1 if len(timeline) else 0.0
    windows = fault_windows(events, end)
    if window is not None:
        windows = [w for w in windows if w[1] > window[0] and w[0] < window[1]]
        timeline = timeline[(timeline["t"] >= window[0]) & (timeline["t"] < window[1])]
        events = events[(events["time"] >= window[0]) & (events["time"] < window[1])]
    tl = timeline
    t = tl["t"] / 60.0
    offered = tl["offered"].where(tl["offered"] > 0)
    err = (tl["failed"] / offered * 100).fillna(0).rolling(SMOOTH_S, min_periods=1).mean()
    slow = (tl["slow"] / offered * 100).fillna(0).rolling(SMOOTH_S, min_periods=1).mean()

    fig = new_figure(10, 8.2)
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.2, 1.2, 1.2]})
    a_w, a_e, a_l, a_i = axes

    a_w.fill_between(t, tl["new_weight"], step="post", color=NEW_COLOR, alpha=0.35, linewidth=0)
    a_w.step(t, tl["new_weight"], where="post", color=NEW_COLOR, linewidth=1.4)
    based = "baseline_ready" in tl  # a canary with a baseline (strategy.baseline): its weight and instances too
    if based:
        a_w.step(t, tl["baseline_weight"], where="post", color=BASELINE_COLOR, linewidth=1.2, linestyle="--",
                 gid="baseline:weight", label="baseline")
        a_w.legend(handles=[Line2D([], [], color=NEW_COLOR, label="new"),
                            Line2D([], [], color=BASELINE_COLOR, linestyle="--", label="baseline")],
                   loc="upper left", fontsize=8, frameon=False, ncol=2)
    a_w.set_ylim(0, 126)
    a_w.set_yticks([0, 25, 50, 75, 100])
    for time, kind, detail in zip(events["time"], events["kind"], events["detail"]):
        # the weight each step aims for, written on the panel: 1% is invisible at this scale but matters most
        if kind == "weight" and isinstance(detail, dict) and detail.get("new_percent"):
            a_w.annotate(f"{detail['new_percent']:g}%", (time / 60.0, detail["new_percent"]), xytext=(2, 3),
                         textcoords="offset points", fontsize=8, color=NEW_COLOR)
    a_w.set_ylabel("traffic to the new\nversion and baseline (%)" if based else "new version\ntraffic (%)", fontsize=9)

    a_e.plot(t, err, color="#d62728", linewidth=1.2, label="failed")
    a_e.plot(t, slow, color="#ff7f0e", linewidth=1.0, alpha=0.8, label="slow (over SLO threshold)")
    a_e.set_ylabel(f"bad requests (%)\n{SMOOTH_S}s mean", fontsize=9)
    a_e.set_ylim(0, min(105.0, max(0.1, float(max(err.max(), slow.max()))) * 1.3))  # headroom for the legend
    a_e.legend(loc="upper right", fontsize=8, frameon=False)

    p99 = tl["latency_p99_ms"]
    a_l.plot(t, p99, color="#7f8c99", linewidth=0.5, alpha=0.6, label="per second")
    a_l.plot(t, p99.rolling(SMOOTH_S, min_periods=1).median(), color="#2b5d8a", linewidth=1.3,
             label=f"{SMOOTH_S}s median")
    a_l.set_ylabel("p99 latency (ms)", fontsize=9)
    a_l.set_ylim(bottom=0, top=max(1.0, float(p99.quantile(0.995)) * 1.35) if p99.notna().any() else 1.0)
    a_l.legend(loc="upper right", fontsize=8, frameon=False)

    pools = ["old", "baseline", "new"] if based else ["old", "new"]
    colors = {"old": OLD_COLOR, "baseline": BASELINE_COLOR, "new": NEW_COLOR}
    stack = a_i.stackplot(t, *[tl[f"{p}_ready"] for p in pools], colors=[colors[p] for p in pools], alpha=0.85,
                          labels=[f"{p} ready" for p in pools], step="post")
    for p, area in zip(pools, stack):
        area.set_gid(f"ready:{p}")
    starting = sum(tl[f"{p}_starting"] for p in pools)
    down = sum(tl[f"{p}_down"] for p in pools)
    if starting.any():
        a_i.step(t, starting.where(starting > 0), where="post", color="#555555", linewidth=0.9, linestyle="--", label="starting")
    if down.any():
        a_i.step(t, down.where(down > 0), where="post", color="#8c564b", linewidth=0.9, label="down")
    a_i.set_ylabel("instances", fontsize=9)
    a_i.set_xlabel("minutes since start", fontsize=9)
    a_i.set_ylim(0, max(1.0, float(sum(tl[f"{p}_ready"] for p in pools).max())) * 1.35)
    a_i.legend(loc="upper right", fontsize=8, frameon=False, ncol=4)
    a_i.set_xlim(float(t.min()), float(t.max()) + 1 / 60)

    shade_faults(axes, windows, 60.0)
    times = marker_times(events)
    handles = []
    for kind, (label, color, ls) in MARKERS.items():
        if not times[kind]:
            continue
        width, order = LINE_STYLE.get(kind, (1.0, 1))
        for ax in axes:
            for x in times[kind]:
                ax.axvline(x / 60.0, color=color, linestyle=ls, linewidth=width, alpha=0.85, zorder=order,
                           gid=f"vline:{kind}")
        n = len(times[kind])
        handles.append(Line2D([], [], color=color, linestyle=ls, marker=FLAGS.get(kind, (None,))[0], markersize=5,
                              label=f"{label} ({n})" if n > 1 else label))
    for kind, (marker, y) in FLAGS.items():  # a row each above the top panel: never hidden by a neighbour
        if times[kind]:
            a_w.plot([x / 60.0 for x in times[kind]], [y] * len(times[kind]), marker, linestyle="",
                     color=MARKERS[kind][1], markersize=6, markeredgewidth=1.6, clip_on=False, zorder=4,
                     gid=f"flag:{kind}")
    if times["instance_crash"]:
        a_i.plot([x / 60.0 for x in times["instance_crash"]], [0] * len(times["instance_crash"]), "v",
                 color="#8c564b", markersize=5, clip_on=False)
        handles.append(Line2D([], [], color="#8c564b", marker="v", linestyle="", label="instance crash"))
    handles += fault_handles(windows)
    for ax in axes:
        style(ax)
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 7), fontsize=8, frameon=False)
    return fig
