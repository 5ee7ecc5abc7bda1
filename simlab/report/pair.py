"""Prediction next to observation: one run's summary, decisions and timeline against another's, key by key.

The usual pair is a simulation (predicted) and a staging deploy of the same
staging-sized scenario (observed); any two runs will do. Differences are
observed − predicted, relative ones against the predicted value.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from simlab.report.document import Figure, Report, Section, Table
from simlab.report.formatting import count, missing
from simlab.report.sources import PairResults, RunResults
from simlab.results import SUMMARY_KEYS
from simlab.units import format_duration

# The controller's decisions, in the words of the decision table; analyses count with their status.
DECISION_KINDS = ("release_started", "step_started", "weight", "analysis", "detected", "rollback_started",
                  "rollback_finished", "promoted")
# Extra summary keys both runs usually have, shown below the main table when both do.
EXTRA_KEYS = ("failed_error", "failed_rejected", "failed_timeout", "failed_reset", "rollback_started_at_s",
              "analysis_failures", "target_rps", "achieved_rps")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not missing(value)


def value_text(value: Any) -> str:
    """A summary value as the table shows it: 1,240 / 0.04289 / 44.68 / rolled_back / -."""
    if missing(value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.0f}" if isinstance(value, int) or abs(value) >= 1000 else f"{value:.4g}"


def _round_like(diff: float, scale: float) -> float:
    """`diff` to the 4 significant digits the values are shown with (17 vs 17.0001 differ by 0, not 0.0001)."""
    if diff == 0 or scale == 0 or isinstance(diff, int):
        return diff
    return round(diff, 3 - math.floor(math.log10(scale)))


def relative_text(predicted: float, observed: float) -> str:
    """'+19%', '-27%', '+0.4%'; '0%' when both are zero; '-' when only the prediction is zero."""
    if observed == predicted:
        return "0%"
    if predicted == 0:
        return "-"
    r = 100.0 * (observed - predicted) / abs(predicted)
    return f"{r:+.1f}%" if 0 < abs(r) < 1 else f"{r:+.0f}%"


def compare_row(key: str, predicted: Any, observed: Any) -> list[str]:
    """[key, predicted, observed, difference, relative difference] for one summary key."""
    row = [key, value_text(predicted), value_text(observed)]
    if _numeric(predicted) and _numeric(observed):
        diff = _round_like(observed - predicted, max(abs(predicted), abs(observed)))
        text = "0" if diff == 0 else ("+" if diff > 0 else "") + value_text(diff)
        return row + [text, relative_text(predicted, predicted + diff)]
    if missing(predicted) and missing(observed):
        return row + ["", ""]
    if missing(predicted) or missing(observed) or _numeric(predicted) or _numeric(observed):
        return row + ["-", ""]
    return row + ["same" if predicted == observed else "differs", ""]


NOTE = ("difference = observed − predicted; relative to the predicted value. Times (…_s) are seconds after the "
        "release started; '-' where a run has no value (e.g. no detection when promoted).")


def summary_table(predicted: dict[str, Any], observed: dict[str, Any]) -> Table:
    rows = [compare_row(k, predicted.get(k), observed.get(k)) for k in SUMMARY_KEYS]
    return Table(["key", "predicted", "observed", "difference", "relative"], rows, NOTE)


def extras_table(predicted: dict[str, Any], observed: dict[str, Any]) -> Table | None:
    keys = [k for k in EXTRA_KEYS if k in predicted and k in observed]
    if not keys:
        return None
    return Table(["key", "predicted", "observed", "difference", "relative"],
                 [compare_row(k, predicted[k], observed[k]) for k in keys])


# -- decisions ---------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    at: float  # seconds after the release started
    label: str  # what was decided, in words; equal labels are the same decision
    order: int = 0  # position in its run's sequence of decisions

    @property
    def is_analysis(self) -> bool:
        return self.label.startswith("analysis")


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def decision_label(kind: str, detail: Any) -> str:
    d = detail if isinstance(detail, dict) else {}
    if kind == "release_started":
        return f"release started ({d['strategy']})" if d.get("strategy") else "release started"
    if kind == "step_started":
        return f"step {_num(d.get('step'))} started ({_num(d.get('weight'))}%)"
    if kind == "weight":
        pct = d.get("new_percent")
        return "weight by instance count" if pct is None else f"weight {_num(pct)}%"
    if kind == "analysis":
        return f"analysis {d.get('status', '?')}"
    if kind in ("detected", "rollback_started"):
        text = kind.replace("_", " ")
        return f"{text}: {d['reason']}" if d.get("reason") else text
    return kind.replace("_", " ")


def release_time(run: RunResults) -> float:
    """When the release started, in seconds since the run's start (0 if the run has no release)."""
    ev = run.result.events
    starts = ev.loc[ev["kind"] == "release_started", "time"]
    return float(starts.iloc[0]) if len(starts) else 0.0


def decisions(run: RunResults) -> list[Decision]:
    ev = run.result.events
    t0 = release_time(run)
    picked = [(t, k, d) for t, k, d in zip(ev["time"], ev["kind"], ev["detail"]) if k in DECISION_KINDS]
    return [Decision(float(t) - t0, decision_label(k, d), i) for i, (t, k, d) in enumerate(picked)]


Row = tuple[Decision | None, Decision | None]


def _match(predicted: list[Decision], observed: list[Decision]) -> list[Row]:
    """Equal decisions in order on one row; each side's others on rows of their own (unlike things never paired)."""
    matcher = difflib.SequenceMatcher(a=[d.label for d in predicted], b=[d.label for d in observed], autojunk=False)
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = predicted[i1:i2], observed[j1:j2]
        if tag == "equal":
            rows += list(zip(left, right))
        else:
            rows += [(d, None) for d in left] + [(None, d) for d in right]
    return rows


def align(predicted: list[Decision], observed: list[Decision]) -> list[Row]:
    """The two sequences side by side, in time order: moves matched with moves, analyses with analyses.

    Matched separately because timing interleaves them: on staging a step's weight may land just after an
    analysis that the simulation ran just after it. Those are the same decisions a second apart.
    """
    rows = (_match([d for d in predicted if not d.is_analysis], [d for d in observed if not d.is_analysis])
            + _match([d for d in predicted if d.is_analysis], [d for d in observed if d.is_analysis]))
    return sorted(rows, key=lambda r: (min(d.at for d in r if d is not None), (r[0] or r[1]).order))


def seconds(t: float) -> str:
    """A time after the release: '+6.0s', '-0.5s', '+12.3m'."""
    return f"{t:+.1f}s" if abs(t) < 120 else ("-" if t < 0 else "+") + format_duration(abs(t))


def decisions_table(rows: list[Row]) -> Table:
    out = []
    for p, o in rows:
        if p is not None and o is not None:
            match = f"same, {o.at - p.at:+.1f}s"
        else:
            match = "only observed" if p is None else "only predicted"
        out.append([p.label if p else "", seconds(p.at) if p else "", o.label if o else "",
                    seconds(o.at) if o else "", match])
    return Table(["predicted decision", "at", "observed decision", "at", "match"], out,
                 "Times are after the release started; 'same, +3.0s' means staging made that decision 3 s later.",
                 text=True)


def decisions_sentence(rows: list[Row]) -> str:
    """'the same 9 controller decisions in the same order', or what matched and what one side alone did."""
    def alike(part: list[Row]) -> int:
        return sum(1 for p, o in part if p is not None and o is not None)

    moves = [r for r in rows if not (r[0] or r[1]).is_analysis]
    analyses = [r for r in rows if (r[0] or r[1]).is_analysis]
    only_p = [p for p, o in rows if o is None]
    only_o = [o for p, o in rows if p is None]
    if not only_p and not only_o:
        in_order = ([p.label for p in sorted((p for p, _ in rows), key=lambda d: d.order)]
                    == [o.label for o in sorted((o for _, o in rows), key=lambda d: d.order)])
        if in_order:
            return f"the same {len(rows)} controller decisions in the same order"
        return (f"the same {len(moves)} rollout moves and {len(analyses)} analyses, each in the same order, "
                f"interleaved differently in time")
    extra = [f"only {who}: " + ", ".join(f"{d.label} at {seconds(d.at)}" for d in alone[:4])
             + (" …" if len(alone) > 4 else "") for who, alone in (("staging", only_o), ("the simulation", only_p))
             if alone]
    text = (f"the same {len(moves)} rollout moves in the same order" if alike(moves) == len(moves)
            else f"{alike(moves)} of {len(moves)} rollout moves alike and in the same order")
    return text + f", with {alike(analyses)} of {len(analyses)} analyses alike ({'; '.join(extra)})"


# -- narrative ---------------------------------------------------------------

def _versus(p: Any, o: Any) -> str:
    """'(+19%)' after two numbers, or nothing when it does not apply."""
    if not (_numeric(p) and _numeric(o)):
        return ""
    rel = relative_text(p, o)
    return "" if rel == "-" else " (the same)" if rel == "0%" else f" ({rel})"


def _time(t: Any) -> str:
    return "-" if missing(t) else format_duration(float(t))


def pair_narrative(predicted: dict[str, Any], observed: dict[str, Any], rows: list[Row]) -> list[str]:
    p, o = predicted, observed
    first = (f"The simulation predicted {count(p.get('failed'))} failed requests, staging observed "
             f"{count(o.get('failed'))}{_versus(p.get('failed'), o.get('failed'))}")
    pd_, od = p.get("detected_at_s"), o.get("detected_at_s")
    if not missing(pd_) and not missing(od):
        first += f"; detection {_time(pd_)} vs {_time(od)} after the release"
    elif not missing(pd_) or not missing(od):
        first += (f"; the simulation detected the release at {_time(pd_)}, staging did not" if missing(od) else
                  f"; staging detected the release at {_time(od)}, the simulation did not")
    out = [first + "; " + decisions_sentence(rows) + "."]
    if p.get("outcome") == o.get("outcome"):
        out.append(f"Both runs ended {str(p.get('outcome')).replace('_', ' ')}" + _outcome_times(p, o) + ".")
    else:
        out.append(f"The outcomes differ: the simulation predicted {p.get('outcome')}, staging {o.get('outcome')}.")
    if _numeric(p.get("requests")) and _numeric(o.get("requests")):
        out.append(f"Staging served {count(o['requests'])} user requests against {count(p['requests'])} simulated"
                   f"{_versus(p['requests'], o['requests'])}; bad requests {count(p.get('bad'))} vs "
                   f"{count(o.get('bad'))}{_versus(p.get('bad'), o.get('bad'))}.")
    if _numeric(p.get("latency_p99_ms")) and _numeric(o.get("latency_p99_ms")):
        out.append(f"p99 latency of successful requests: {p['latency_p99_ms']:.0f} ms predicted, "
                   f"{o['latency_p99_ms']:.0f} ms observed{_versus(p['latency_p99_ms'], o['latency_p99_ms'])}.")
    return out


def _outcome_times(p: dict[str, Any], o: dict[str, Any]) -> str:
    key = {"rolled_back": "rollback_done_at_s", "promoted": "deploy_duration_s"}.get(p.get("outcome"))
    if key is None or missing(p.get(key)) or missing(o.get(key)):
        return ""
    what = "rolled back" if key == "rollback_done_at_s" else "promoted"
    return f": {what} {_time(p[key])} after the release in the simulation, {_time(o[key])} on staging"


# -- the report --------------------------------------------------------------

def pair_report(r: PairResults) -> Report:
    from simlab.report import figures_pair

    p, o = r.predicted.result.summary.to_dict(), r.observed.result.summary.to_dict()
    rows = align(decisions(r.predicted), decisions(r.observed))
    title = f"simlab pair: {o.get('scenario') or p.get('scenario')}, predicted vs observed"
    subtitle = (f"predicted: {p.get('engine')} engine, seed {p.get('seed')}, from {r.predicted.source}; "
                f"observed: {o.get('engine')}, seed {o.get('seed')}, from {r.observed.source}")
    sections = [
        Section("Findings", pair_narrative(p, o, rows)),
        Section("Summary, key by key", table=summary_table(p, o)),
    ]
    extras = extras_table(p, o)
    if extras is not None:
        sections.append(Section("Other measures both runs report", table=extras))
    sections.append(Section("Controller decisions", table=decisions_table(rows)))
    p_tl, o_tl = r.predicted.result.timeline, r.observed.result.timeline
    if len(p_tl) and len(o_tl):
        sections.append(Section("Timelines", figures=[Figure(
            "overlay",
            "Predicted (dashed) and observed (solid) on one time axis, seconds after the release started: the new "
            "version's traffic share, failed requests per second, p99 latency of successful requests "
            f"({figures_pair.SMOOTH_S}s rolling median) and ready instances by version; vertical lines mark "
            "detection, rollback start (each also flagged above the top panel), rollback done and promotion; shaded "
            "bands are fault windows (observed filled, predicted hatched).",
            figures_pair.overlay_figure(p_tl, r.predicted.result.events, release_time(r.predicted),
                                        o_tl, r.observed.result.events, release_time(r.observed)),
        )]))
    return Report(title, subtitle, sections)

