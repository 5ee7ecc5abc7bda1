"""The fluid engine's fidelity grid: every regime of simlab.experiment.fidelity, truth vs request vs fluid engine.

    .venv/bin/python benchmarks/fidelity.py [--seeds N] [--only SUBSTRING] [--markdown]

Prints one row per figure: regime, truth (exact or the request engine over the
seeds), the request engine, the fluid engine, the relative error (absolute
seconds for detection times), PASS/FAIL against the tolerance once the 95%
interval of the difference is allowed for, and the per-run speed ratio
(request engine time / fluid engine time) of the case. Exits 1 if a row fails.
"""
from __future__ import annotations

import argparse
import sys
import time

from simlab.experiment.fidelity import cases, run_case


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=None, help="seeds per case (default: the case's)")
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table (docs/fluid-engine.md)")
    args = ap.parse_args(argv)
    header = ("case", "regime", "figure", "truth", "source", "request", "fluid", "error", "tolerance", "verdict", "speed")
    rows_out, failed = [], 0
    t0 = time.perf_counter()
    for case in cases():
        if args.only and args.only not in case.name:
            continue
        for r in run_case(case, seeds=args.seeds, with_request=True):
            err = f"{r.error:+.1f}s" if r.absolute else f"{100 * r.error:+.1f}%"
            tol = f"±{r.tolerance:g}s" if r.absolute else f"±{100 * r.tolerance:g}%"
            verdict = "PASS" if r.passed else "FAIL"
            failed += not r.passed
            speed = f"{r.speedup:.2g}x" if r.speedup else "-"
            rows_out.append((r.case, r.regime, r.figure, _fmt(r.truth), r.truth_source, _fmt(r.request),
                             _fmt(r.fluid), err, tol, verdict, speed))
            if not args.markdown:
                print("  ".join(rows_out[-1]), flush=True)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows_out:
            print("| " + " | ".join(row) + " |")
    print(f"{len(rows_out) - failed} passed, {failed} failed ({time.perf_counter() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
