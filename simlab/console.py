"""Terminal rendering of results (rich); used by the CLI only."""
from __future__ import annotations

from typing import Any

from simlab.dry_run import dry_run_seen
from simlab.results import Result
from simlab.units import format_duration


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def _percent(share: float) -> str:
    """A share as a percent with the digits small values need (0.0018%, 2.49%)."""
    value = share * 100
    if value == 0 or value >= 0.1:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


def summary_lines(result: Result) -> list[tuple[str, str]]:
    """(label, value) pairs in the words an SRE uses."""
    s = result.summary.to_dict()
    budget = s["error_budget_used"]
    return [
        ("outcome", f"{s['outcome']} ({s['strategy'] or 'no release'}, engine {s['engine']}, seed {s['seed']})"),
        ("user requests", _num(s["requests"]) + f"  ({_num(s['attempts'])} attempts with retries)"),
        ("bad requests", f"{_num(s['bad'])}  = {_num(s['failed'])} failed + {_num(s['slow'])} slow"
                         f"  ({_percent(s['bad_fraction'])})"),
        ("failed by cause", ", ".join(f"{c} {_num(s.get('failed_' + c))}" for c in ("error", "rejected", "timeout", "reset"))),
        ("latency (ok)", f"mean {_num(s['latency_mean_ms'], 1)} ms, p50 {_num(s['latency_p50_ms'], 1)} ms, "
                         f"p99 {_num(s['latency_p99_ms'], 1)} ms"),
        ("time to detect", format_duration(s["detected_at_s"]) + " after the release started"),
        ("rolled back at", format_duration(s["rollback_done_at_s"])),
        ("deploy duration", format_duration(s["deploy_duration_s"])),
        ("error budget used", "-" if budget is None else f"{_percent(budget)} of the {format_duration(result.extras.get('slo_window', 30 * 86400))} budget"),
        ("min capacity", "-" if s["min_capacity"] is None else f"{s['min_capacity'] * 100:.0f}% of the fleet ready"),
        ("peak utilization", "-" if s["peak_utilization"] is None else f"{s['peak_utilization'] * 100:.0f}%"),
        ("instance-seconds", _num(s["instance_seconds"])),
    ] + ([("engine auto", s["engine_reason"])] if s.get("engine_reason") else []) + _dry_run_line(s, result.events)


def _dry_run_line(summary: dict[str, Any], events) -> list[tuple[str, str]]:
    seen = dry_run_seen(summary, events) if len(events) else None
    return [("dry-run (never acting)", seen.text())] if seen is not None else []


def print_summary(result: Result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"simlab run: {result.summary['scenario']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in summary_lines(result):
        table.add_row(label, value)
    Console().print(table)
