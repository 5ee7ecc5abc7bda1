"""Per-variant distributions over replicated runs: bad requests, time to detect, time to recover."""
from __future__ import annotations

import numpy as np
import pandas as pd

from simlab.report.plotting import new_figure, png, style


def bad_release_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose release was bad (all runs when the frame does not say)."""
    if "bad_release" not in runs.columns:
        return runs
    return runs[runs["bad_release"].fillna(False).astype(bool)]


def bad_requests_figure(runs: pd.DataFrame, variants: list[str], colors: dict[str, str]) -> bytes:
    """Box per variant with every bad-release run as a dot: bad requests per deploy, and (when the runs have
    their no-release twins) what the release added, the same runs minus the same seeds with no release."""
    bad = {v: bad_release_runs(runs[runs["variant"] == v]) for v in variants}
    panels = [("bad", "bad requests per deploy\n(failed + slow)", "bad releases only")]
    if "added_bad" in runs.columns and runs["added_bad"].notna().any():
        panels.append(("added_bad", "added by the release\n(minus the same seed with no release)", "the same runs"))
    width = max(5.5, 1.3 * len(variants) + 2.5)
    fig = new_figure(width * len(panels) if len(panels) > 1 else width, 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (column, label, title) in zip(axes, panels):
        data = [bad[v][column].dropna().to_numpy(float) for v in variants]
        _boxes(ax, data, variants, colors)
        ax.set_ylabel(label, fontsize=9)
        ax.set_title(f"{title}; box 25–75% with 5–95% whiskers, \u25c7 mean", fontsize=9, loc="left", color="#5b6673")
        style(ax)
    return png(fig)


def _boxes(ax, data: list[np.ndarray], variants: list[str], colors: dict[str, str]) -> None:
    """One box per variant with its runs as jittered dots and its mean; log scale across orders of magnitude."""
    positions = np.arange(1, len(variants) + 1)
    ax.boxplot([d if len(d) else [np.nan] for d in data], positions=positions, widths=0.55, showfliers=False,
               medianprops={"color": "#222222"}, whis=(5, 95))
    rng = np.random.default_rng(0)  # jitter only; fixed so the same results draw the same picture
    for pos, v, d in zip(positions, variants, data):
        ax.scatter(pos + rng.uniform(-0.18, 0.18, len(d)), d, s=9, alpha=0.45, color=colors[v], linewidths=0)
        if len(d):
            ax.scatter([pos], [d.mean()], marker="D", s=34, color="white", edgecolors="#222222", zorder=3)
    ax.set_xticks(positions, variants)
    values = np.concatenate(data) if data else np.array([])
    positive = values[values > 0]
    if (values < 0).any():  # added requests can fall below zero by noise: symmetric log around 0
        if len(positive) and np.abs(values).max() > 50 * max(1.0, np.median(np.abs(values))):
            ax.set_yscale("symlog", linthresh=10.0)
            ax.set_ylim(min(values.min() * 1.5, -10.0), values.max() * 1.5)
        ax.axhline(0, color="#999999", linewidth=0.8)
    elif len(positive) and positive.max() / positive.min() > 50:  # orders of magnitude apart: log scale
        if (values == 0).any():
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_ylim(bottom=0)
        else:
            ax.set_yscale("log")
            ax.set_ylim(bottom=positive.min() / 1.5)
    else:
        ax.set_ylim(bottom=0)


def ecdf(values: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Step points of the fraction of `total` runs with a value <= x; runs without a value never arrive."""
    x = np.sort(values[~np.isnan(values)])
    y = np.arange(1, len(x) + 1) / total if total else np.array([])
    return x, y


def detect_recover_figure(runs: pd.DataFrame, variants: list[str], colors: dict[str, str]) -> bytes:
    """Two ECDF panels over bad releases: share detected by time t, share recovered (rolled back) by time t."""
    fig = new_figure(11, 3.9)
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("detected_at_s", "detected"), ("rollback_done_at_s", "recovered (rollback done)"))
    longest = 0.0
    # earlier variants drawn wider, so curves that coincide (same detection second) still show every colour
    widths = {v: 1.5 + 2.0 * (len(variants) - 1 - i) / max(1, len(variants) - 1) for i, v in enumerate(variants)}
    for ax, (column, what) in zip(axes, panels):
        for v in variants:
            bad = bad_release_runs(runs[runs["variant"] == v])
            if column not in bad.columns or not len(bad):
                continue
            x, y = ecdf(bad[column].to_numpy(float) / 60.0, len(bad))
            if not len(x):
                ax.plot([], [], color=colors[v], linewidth=widths[v], label=v)
                continue
            longest = max(longest, float(x[-1]))
            ax.step(np.r_[0.0, x], np.r_[0.0, y] * 100, where="post", color=colors[v], linewidth=widths[v], alpha=0.9,
                    label=v)
        ax.set_title(f"bad releases {what} within t", fontsize=10, loc="left")
        ax.set_xlabel("minutes since the release started", fontsize=9)
        style(ax)
    for ax in axes:
        ax.set_xlim(0, longest * 1.05 if longest else 1)
    axes[0].set_ylim(0, 102)
    axes[0].set_ylabel("% of bad releases", fontsize=9)
    axes[1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return png(fig)
