"""Two runs' timelines on one time axis relative to their releases: predicted dashed, observed solid."""
from __future__ import annotations

import pandas as pd

from simlab.report.figures_run import fault_handles, fault_windows, shade_faults
from simlab.report.plotting import BASELINE_COLOR, NEW_COLOR, OLD_COLOR, new_figure, png, style

SMOOTH_S = 5  # rolling median on p99: one slow second should not hide the shape, staging runs are short
PREDICTED, OBSERVED = "--", "-"
# event kind -> (label, colour) of the vertical lines, drawn in the run's own line style
MARKERS = {"detected": ("detected", "#ff7f0e"), "rollback_started": ("rollback start", "#9467bd"),
           "rollback_finished": ("rollback done", "#2ca02c"), "promoted": ("promoted", "#1f77b4")}
# Detection and rollback start often share a second: each also has a marker in a row of its own above the top
# panel (observed filled, predicted hollow), and rollback start's line is drawn over detection's, narrower.
FLAGS = {"detected": ("v", 110.0), "rollback_started": ("D", 118.0)}
LINE_STYLE = {"detected": (2.0, 2), "rollback_started": (1.0, 3)}  # (width, zorder); others (1.1, 1)


def _relative(timeline: pd.DataFrame, release_at: float) -> pd.DataFrame:
    return timeline.assign(rel=timeline["t"] - release_at)


def overlay_figure(predicted: pd.DataFrame, predicted_events: pd.DataFrame, predicted_release: float,
                   observed: pd.DataFrame, observed_events: pd.DataFrame, observed_release: float) -> bytes:
    """Four panels: new version's traffic share, failed per second, p99, ready instances by version (PNG)."""
    return png(draw_overlay(predicted, predicted_events, predicted_release, observed, observed_events,
                            observed_release))


def draw_overlay(predicted: pd.DataFrame, predicted_events: pd.DataFrame, predicted_release: float,
                 observed: pd.DataFrame, observed_events: pd.DataFrame, observed_release: float):
    """The matplotlib Figure of `overlay_figure`. Fault windows are shaded (observed filled, predicted hatched);
    artists carry gids: `fault:<kind>[:hatched]`, `vline:<kind>:<run>`, `flag:<kind>:<run>` (run: predicted or
    observed)."""
    from matplotlib.lines import Line2D

    runs = [(_relative(predicted, predicted_release), predicted_events, predicted_release, PREDICTED),
            (_relative(observed, observed_release), observed_events, observed_release, OBSERVED)]
    span = max(float(tl["rel"].max()) - float(tl["rel"].min()) for tl, *_ in runs)
    scale, unit = (60.0, "minutes") if span > 900 else (1.0, "seconds")

    fig = new_figure(10, 8.2)
    axes = fig.subplots(4, 1, sharex=True)
    a_w, a_f, a_l, a_i = axes
    top_failed, top_p99, top_ready = 1.0, 1.0, 1.0
    windows: list = []
    for tl, events, release_at, ls in runs:
        x = tl["rel"] / scale
        width = 1.3 if ls == OBSERVED else 1.6
        a_w.step(x, tl["new_weight"], where="post", color=NEW_COLOR, linestyle=ls, linewidth=width)
        a_f.step(x, tl["failed"], where="post", color="#d62728", linestyle=ls, linewidth=width)
        top_failed = max(top_failed, float(tl["failed"].max()))
        p99 = tl["latency_p99_ms"].rolling(SMOOTH_S, min_periods=1).median()
        a_l.plot(x, p99, color="#2b5d8a", linestyle=ls, linewidth=width)
        if p99.notna().any():
            top_p99 = max(top_p99, float(p99.max()))
        a_i.step(x, tl["old_ready"], where="post", color=OLD_COLOR, linestyle=ls, linewidth=width + 0.4)
        a_i.step(x, tl["new_ready"], where="post", color=NEW_COLOR, linestyle=ls, linewidth=width)
        ready = ["old_ready", "new_ready"]
        if "baseline_ready" in tl:  # a canary's baseline (strategy.baseline), old version apart from the stable fleet
            a_i.step(x, tl["baseline_ready"], where="post", color=BASELINE_COLOR, linestyle=ls, linewidth=width,
                     gid=f"ready:baseline:{'observed' if ls == OBSERVED else 'predicted'}")
            ready.append("baseline_ready")
        top_ready = max(top_ready, float(tl[ready].max().max()))
        run = "observed" if ls == OBSERVED else "predicted"
        for kind, (_, color) in MARKERS.items():
            lw, order = LINE_STYLE.get(kind, (1.1, 1))
            at = [(float(t) - release_at) / scale for t in events.loc[events["kind"] == kind, "time"]]
            for x0 in at:
                for ax in axes:
                    ax.axvline(x0, color=color, linestyle=ls, linewidth=lw, alpha=0.85, zorder=order,
                               gid=f"vline:{kind}:{run}")
            if kind in FLAGS and at:
                marker, y = FLAGS[kind]
                a_w.plot(at, [y - (0 if ls == OBSERVED else 3.5)] * len(at), marker, linestyle="", color=color,
                         markerfacecolor=color if ls == OBSERVED else "none", markersize=6, markeredgewidth=1.4,
                         clip_on=False, zorder=4, gid=f"flag:{kind}:{run}")
        end = float(tl["t"].max()) + 1 if len(tl) else 0.0
        faults = [(a - release_at, b - release_at, k, label) for a, b, k, label in fault_windows(events, end)]
        shade_faults(axes, faults, scale, hatch="//" if ls == PREDICTED else None)
        windows += faults

    a_w.set_ylim(0, 124)
    a_w.set_yticks([0, 25, 50, 75, 100])
    a_w.set_ylabel("new version\ntraffic (%)", fontsize=9)
    a_f.set_ylim(0, top_failed * 1.25)
    a_f.set_ylabel("failed requests\nper second", fontsize=9)
    a_l.set_ylim(0, top_p99 * 1.25)
    a_l.set_ylabel(f"p99 latency (ms)\n{SMOOTH_S}s median", fontsize=9)
    a_i.set_ylim(0, top_ready * 1.3)
    a_i.set_ylabel("ready instances", fontsize=9)
    a_i.set_xlabel(f"{unit} since the release started", fontsize=9)
    versions = [Line2D([], [], color=OLD_COLOR, linewidth=2, label="old version"),
                Line2D([], [], color=NEW_COLOR, linewidth=2, label="new version")]
    if any("baseline_ready" in tl for tl, *_ in runs):
        versions.append(Line2D([], [], color=BASELINE_COLOR, linewidth=2, label="baseline (old version)"))
    a_i.legend(handles=versions, loc="upper right", fontsize=8, frameon=False, ncol=len(versions))
    for ax in axes:
        ax.axvline(0, color="#222222", linewidth=0.8, zorder=1)
        style(ax)
    handles = [Line2D([], [], color="#333333", linestyle=PREDICTED, label="predicted (simulation)"),
               Line2D([], [], color="#333333", linestyle=OBSERVED, label="observed (staging)")]
    handles += [Line2D([], [], color=color, marker=FLAGS.get(kind, (None,))[0], markersize=5, label=label)
                for kind, (label, color) in MARKERS.items() if any((ev["kind"] == kind).any() for _, ev, _, _ in runs)]
    handles += fault_handles(windows)
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    return fig
