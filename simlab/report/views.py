"""Results as a notebook shows them: figures that display themselves (PNG) and tables in HTML.

`.plot()` of a compare, a sweep or a capacity search returns a `Picture`: Jupyter shows it, `save` writes it, and
`figure` is the matplotlib Figure when there is one to adjust. No pyplot: nothing global is drawn or kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


class Picture:
    """A figure as PNG bytes (and its matplotlib Figure, when drawn here)."""

    def __init__(self, data: bytes, figure: Any = None, title: str = ""):
        self.data, self.figure, self.title = data, figure, title

    @classmethod
    def of(cls, figure: Any, title: str = "") -> "Picture":
        from simlab.report.plotting import png

        return cls(png(figure), figure, title)

    def _repr_png_(self) -> bytes:
        return self.data

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path

    def __repr__(self) -> str:
        return f"<Picture {self.title or 'figure'}: {len(self.data):,} bytes of PNG>"


def compare_picture(runs: pd.DataFrame, variants: list[str], which: str = "bad_requests") -> Picture:
    """A compare's standard figures: `bad_requests` (per deploy of a bad release, and added by it) or
    `detect_recover` (time to detect and to recover)."""
    from simlab.report import figures_compare
    from simlab.report.plotting import colors_for

    draw = {"bad_requests": figures_compare.bad_requests_figure,
            "detect_recover": figures_compare.detect_recover_figure}
    if which not in draw:
        raise ValueError(f"which: expected one of {', '.join(draw)}, found {which!r}")
    return Picture(draw[which](runs, variants, colors_for(variants)), title=which)


def sweep_picture(table: pd.DataFrame, pareto: pd.DataFrame, params: list[str], which: str = "pareto") -> Picture:
    """A sweep's standard figures: `pareto` (deploy time against bad requests, the front marked) or `heatmap`
    (bad requests over the first two parameters)."""
    from simlab.report import figures_sweep

    if which == "pareto":
        return Picture(figures_sweep.pareto_figure(table, pareto, params), title=which)
    if which == "heatmap" and len(params) >= 2:
        return Picture(figures_sweep.heatmap_figure(table, params[0], params[1]), title=which)
    raise ValueError(f"which: expected pareto, or heatmap with two parameters swept, found {which!r}")


def html_table(frame: pd.DataFrame, caption: str, formats: dict[str, Any] | None = None) -> str:
    """A frame as an HTML table with a caption, numbers formatted as the reports write them."""
    styler = frame.style.hide(axis="index").set_caption(caption)
    if formats:
        styler = styler.format({k: v for k, v in formats.items() if k in frame.columns}, na_rep="-")
    return styler.to_html()
