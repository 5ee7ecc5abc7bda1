"""Reports: a results directory (one run, a compare, a sweep) to a self-contained HTML file and a Markdown file.

`write_report(results_dir)` reads the directory, builds the report as data
(`build.build_report`), renders it (`document`) and writes
reports/<name>/report.html, report.md and one PNG per figure beside the
Markdown. `write_pair_report(predicted_dir, observed_dir)` does the same for
two runs of one scenario side by side (a simulation and a staging deploy).
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from pathlib import Path

from simlab.errors import ScenarioError
from simlab.report.document import Report, render_html, render_markdown
from simlab.report.sources import KINDS, detect_kind, load_pair, load_results

__all__ = ["write_report", "write_pair_report", "detect_kind", "load_results", "build_report", "KINDS", "Report"]


def build_report(results_dir: str | Path, predicted: str | Path | None = None) -> Report:
    """The report of a results directory as data (sections, tables, PNG figures), nothing written.

    With `predicted` (another run's directory) it is a pair report: `results_dir` observed next to it.
    """
    from simlab.report.build import build_report as _build

    results = load_results(results_dir) if predicted is None else load_pair(predicted, results_dir)
    return _build(results)


def write_report(results_dir: str | Path, out_root: str | Path = "reports", name: str | None = None) -> Path:
    """Write <out_root>/<name>/report.html (figures embedded) and report.md (+ PNGs); return that directory.

    `name` defaults to the results directory's own name.
    """
    source = Path(results_dir)
    return _write(build_report(source), out_root, name or source.resolve().name)


def write_pair_report(predicted_dir: str | Path, observed_dir: str | Path, out_root: str | Path = "reports",
                      name: str | None = None) -> Path:
    """Write the prediction-next-to-observation report of two runs under <out_root>/<name>/; return that directory.

    `name` defaults to the observed directory's own name.
    """
    observed = Path(observed_dir)
    return _write(build_report(observed, predicted=predicted_dir), out_root, name or observed.resolve().name)


def _write(report: Report, out_root: str | Path, name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise ScenarioError(f"report name: expected a plain directory name, found {name!r}")
    out = Path(out_root) / name
    out.mkdir(parents=True, exist_ok=True)
    for fig in report.figures:
        (out / f"{fig.name}.png").write_bytes(fig.png)
    (out / "report.html").write_text(render_html(report), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return out
