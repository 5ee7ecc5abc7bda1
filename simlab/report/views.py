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


def sweep_picture(table: pd.DataFrame, pareto: pd.DataFrame, params: list[str], which: str = "pareto",
                  decision: dict | None = None) -> Picture:
    """A sweep's standard figures: `pareto` (every grid point's deploy time against its objective, as the report's
    decision judges them) or `heatmap` (bad requests over the first two parameters)."""
    from simlab.report import figures_sweep

    if which == "pareto":
        return Picture(figures_sweep.pareto_figure(table, pareto, params, decision), title=which)
    if which == "heatmap" and len(params) >= 2:
        return Picture(figures_sweep.heatmap_figure(table, params[0], params[1]), title=which)
    raise ValueError(f"which: expected pareto, or heatmap with two parameters swept, found {which!r}")


def html_table(frame: pd.DataFrame, caption: str, formats: dict[str, Any] | None = None) -> str:
    """A frame as an HTML table with a caption, numbers formatted as the reports write them."""
    styler = frame.style.hide(axis="index").set_caption(caption)
    if formats:
        styler = styler.format({k: v for k, v in formats.items() if k in frame.columns}, na_rep="-")
    return styler.to_html()


def table_html(table, caption: str = "", sentences: list[str] | None = None) -> str:
    """A report Table (simlab.report.document) as HTML, with its caption, findings above and its note below."""
    import html

    esc = html.escape
    out = [f"<p><b>{esc(caption)}</b></p>"] if caption else []
    out += [f"<p>{esc(s)}</p>" for s in sentences or []]
    out.append("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in table.rows]
    out.append("</tbody></table>")
    if table.note:
        out.append(f"<p><small>{esc(table.note)}</small></p>")
    return "\n".join(out)


def compare_html(table: pd.DataFrame, meta: dict) -> str:
    """A compare as its report shows it: the findings in words, then one row per strategy or variant."""
    from simlab.report.formatting import aggregate_table
    from simlab.report.narrative import compare_narrative

    caption = f"simlab compare: {meta.get('scenario', '')}, {meta.get('runs', '?')} runs each"
    decision = meta.get("decision")
    said = _verdict(decision, lambda i: str(decision["variants"][i]["label"])) if decision else []
    return table_html(aggregate_table(table, ["variant"], ["variant"]), caption, said + compare_narrative(table, meta))


def sweep_html(table: pd.DataFrame, pareto: pd.DataFrame, params: list[str], meta: dict) -> str:
    """A sweep as its report shows it: the findings, then one row per grid point."""
    from simlab.report.formatting import aggregate_table
    from simlab.report.narrative import sweep_narrative

    caption = f"simlab sweep: {meta.get('scenario', '')}, {meta.get('runs', '?')} runs per grid point"
    decision = meta.get("decision")
    name = lambda i: f"#{i + 1}"  # noqa: E731 (the grid table's row i + 1)
    said = _verdict(decision, name) if decision else []
    return table_html(aggregate_table(table, params, mixed=True), caption,
                      said + sweep_narrative(table, pareto, params, meta, decision, name))


def _verdict(decision: dict, name) -> list[str]:
    """The decision's sentences, as the report's Decision section opens."""
    from simlab.report.decision import sentences

    return sentences(decision, name)


def compare_pareto(table: pd.DataFrame, front: set[str], y: str = "added_mean") -> Picture:
    """Deploy time of a good release against the bad requests each variant's releases added (over all runs: the
    expectation over good and bad releases), with 95% intervals; the `front` (no other beats them on both) in red."""
    from simlab.report.plotting import new_figure, style

    rows = table.dropna(subset=["deploy_duration_good_mean_s", y])
    fig = new_figure(7.5, 4.4)
    ax = fig.add_subplot()
    for _, r in rows.iterrows():
        best = r["variant"] in front
        ax.errorbar(r["deploy_duration_good_mean_s"] / 60.0, r[y],
                    yerr=[[r[y] - r[f"{y}_lo"]], [r[f"{y}_hi"] - r[y]]] if f"{y}_lo" in r else None,
                    fmt="o", color="#d62728" if best else "#8fa3b8", capsize=3)
        ax.annotate(str(r["variant"]), (r["deploy_duration_good_mean_s"] / 60.0, r[y]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    ax.set_xlabel("deploy time of a good release (minutes)")
    ax.set_ylabel("bad requests added by the release, per deploy")
    ax.set_xlim(left=0)
    style(ax)
    return Picture.of(fig, "pareto")


class Pair:
    """A prediction next to an observation (`simlab deploy --predict --out OUT`: OUT and OUT/predicted): every
    summary key side by side in `.table`, the controller's decisions in `.decisions`, the findings in words in
    `.findings`; shown as tables in a notebook, `.plot()` the two timelines overlaid."""

    def __init__(self, observed: str | Path, predicted: str | Path | None = None):
        from simlab.report.pair import align, decisions
        from simlab.report.sources import load_pair

        observed = Path(observed)
        self.runs = load_pair(observed / "predicted" if predicted is None else Path(predicted), observed)
        self.rows = align(decisions(self.runs.predicted), decisions(self.runs.observed))

    @property
    def summaries(self) -> tuple[dict, dict]:
        return self.runs.predicted.result.summary.to_dict(), self.runs.observed.result.summary.to_dict()

    @property
    def table(self) -> pd.DataFrame:
        from simlab.report.pair import summary_table

        t = summary_table(*self.summaries)
        return pd.DataFrame(t.rows, columns=t.columns)

    @property
    def decisions(self) -> pd.DataFrame:
        from simlab.report.pair import decisions_table

        t = decisions_table(self.rows)
        return pd.DataFrame(t.rows, columns=t.columns)

    @property
    def findings(self) -> list[str]:
        from simlab.report.pair import pair_narrative

        return pair_narrative(*self.summaries, self.rows)

    def _repr_html_(self) -> str:
        from simlab.report.pair import summary_table

        p, o = self.summaries
        return table_html(summary_table(p, o), f"{o.get('scenario')}: predicted ({p.get('engine')} engine) next to "
                                               f"observed ({o.get('engine')})", self.findings)

    def plot(self) -> Picture:
        """Predicted (dashed) and observed (solid) timelines after the release: traffic share of the new version,
        failed requests, p99 latency, ready instances."""
        from simlab.report import figures_pair
        from simlab.report.pair import release_time

        p, o = self.runs.predicted, self.runs.observed
        return Picture(figures_pair.overlay_figure(p.result.timeline, p.result.events, release_time(p),
                                                   o.result.timeline, o.result.events, release_time(o)), title="pair")


def pair(observed: str | Path, predicted: str | Path | None = None) -> Pair:
    """A deploy's observation next to its prediction: `simlab deploy --predict --out OUT` wrote OUT (observed) and
    OUT/predicted; any two run directories will do (`simlab run --out`, `simlab deploy --out`)."""
    return Pair(observed, predicted)
