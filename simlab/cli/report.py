"""`simlab report RESULTS_DIR`: parsing and printing only."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app


@app.command("report")
def report(
    results_dir: Path = typer.Argument(..., help="directory written by simlab run/compare/sweep/deploy --out"),
    predicted: Optional[Path] = typer.Option(None, "--predicted", help="a simulated run's directory: put "
                                             "RESULTS_DIR (observed, e.g. a deploy) next to it key by key "
                                             "(default: a report of RESULTS_DIR alone)"),
    name: Optional[str] = typer.Option(None, help="report name (default: the results directory's name)"),
    out_root: Path = typer.Option(Path("reports"), "--out-root", help="reports are written under OUT_ROOT/NAME/"),
) -> None:
    """Write a self-contained HTML report and a Markdown report (with PNG figures) of a results directory.

    \b
    Examples:
      simlab report reports/demo
      simlab report reports/canary-bad --predicted reports/canary-bad/predicted
    """
    from simlab.report import detect_kind, write_pair_report, write_report

    if predicted is None:
        kind = detect_kind(results_dir)
        out = write_report(results_dir, out_root=out_root, name=name)
        typer.echo(f"{kind} report of {results_dir}:")
    else:
        out = write_pair_report(predicted, results_dir, out_root=out_root, name=name)
        typer.echo(f"pair report of {results_dir} (observed) next to {predicted} (predicted):")
    figures = sorted(p.name for p in out.glob("*.png"))
    typer.echo(f"  {out / 'report.html'}  (self-contained)")
    typer.echo(f"  {out / 'report.md'}" + (f"  (+ {', '.join(figures)})" if figures else ""))


def report_beside(out: Path) -> Path:
    """`--report` of run, compare and sweep: report.html, report.md and figures into the results directory itself."""
    from simlab.report import write_report

    where = out.resolve()
    write_report(out, out_root=where.parent, name=where.name)
    return out / "report.html"
