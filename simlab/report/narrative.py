"""A few sentences written from the numbers, in the order a reviewer asks: caught? how much harm? at what cost?"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from simlab.report.formatting import count, count_ci, duration, missing, pct, pct_ci, short_param, times


def run_narrative(summary: dict[str, Any], events: pd.DataFrame) -> list[str]:
    s = summary
    kinds = list(events["kind"]) if len(events) else []
    details = list(events["detail"]) if len(events) else []
    out = []
    outcome = s.get("outcome")
    if outcome == "rolled_back":
        reason = next((d.get("reason") for k, d in zip(kinds, details) if k == "detected" and isinstance(d, dict)), None)
        out.append(
            f"The release ({s.get('strategy')}) was detected {duration(s.get('detected_at_s'))} after it started"
            + (f" ({reason})" if reason else "")
            + f" and was rolled back {duration(s.get('rollback_done_at_s'))} after it started."
        )
    elif outcome == "promoted":
        out.append(f"The release ({s.get('strategy')}) was promoted {duration(s.get('deploy_duration_s'))} after it started.")
    elif outcome == "no_release":
        out.append("This run has no release: it shows the stable fleet alone.")
    else:
        out.append(f"The run ended before the rollout finished (outcome {outcome}).")
    analyses = [d for k, d in zip(kinds, details)
                if k == "analysis" and isinstance(d, dict) and d.get("status") != "dry_run_only"]
    if analyses:
        failed = sum(1 for d in analyses if d.get("status") == "failed")
        out.append(f"{len(analyses)} analyses ran; {failed} failed.")
    if kinds:
        out.extend(_dry_run_sentence(s, events))
    if not missing(s.get("bad")):
        text = (f"{count(s['bad'])} user requests were bad ({pct(s.get('bad_fraction'))} of {count(s.get('requests'))}): "
                f"{count(s.get('failed'))} failed and {count(s.get('slow'))} were slow")
        if not missing(s.get("error_budget_used")):
            text += f", using {pct(s['error_budget_used'])} of the SLO window's error budget"
        out.append(text + ".")
    if not missing(s.get("latency_p99_ms")):
        text = f"p99 latency of successful requests was {s['latency_p99_ms']:.0f} ms"
        if not missing(s.get("min_capacity")):
            text += f"; ready capacity never fell below {pct(s['min_capacity'])} of the fleet"
        out.append(text + ".")
    return out


def _dry_run_sentence(s: dict[str, Any], events: pd.DataFrame) -> list[str]:
    """What the dry-run metrics saw, and set against what the run did: they never act."""
    from simlab.dry_run import dry_run_seen

    seen = dry_run_seen(s, events)
    if seen is None:
        return []
    text = "Dry-run metrics (never acting): " + seen.text()
    at, detected = seen.would_roll_back_s, s.get("detected_at_s")
    if at is not None and s.get("outcome") == "promoted":
        text += "; the release was promoted all the same"
    elif at is not None and not missing(detected):
        gap = at - float(detected)
        text += (", when the release was detected" if abs(gap) < 0.5 else
                 f", {duration(abs(gap))} {'before' if gap < 0 else 'after'} the release was detected")
    return [text + "."]


def _finite(table: pd.DataFrame, column: str) -> pd.DataFrame:
    return table[table[column].notna()] if column in table.columns else table.iloc[0:0]


def compare_narrative(table: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    t = table
    out = []
    caught = _finite(t, "p_rollback_bad")
    if len(caught):
        out.append(_caught_sentence(caught))
    if len(_finite(t, "added_given_bad_mean")) or len(_finite(t, "added_given_good_mean")):
        out.extend(_added_sentences(t))
    elif len(harm := _finite(t, "bad_mean")) > 1:  # results written before bad requests were split by release
        lo, hi = harm.loc[harm["bad_mean"].idxmin()], harm.loc[harm["bad_mean"].idxmax()]
        if hi["bad_mean"] > 0 and hi["variant"] != lo["variant"]:
            if lo["bad_mean"] > 0:
                out.append(f"{hi['variant']} served {times(hi['bad_mean'] / lo['bad_mean'])} more bad requests on "
                           f"average than {lo['variant']} ({count(hi['bad_mean'])} against {count(lo['bad_mean'])} "
                           f"per deploy).")
            else:
                out.append(f"{hi['variant']} served {count(hi['bad_mean'])} bad requests per deploy on average; "
                           f"{lo['variant']} served none.")
    recover = _finite(t, "ttr_mean_s")
    if len(recover) > 1:
        fast, slow = recover.loc[recover["ttr_mean_s"].idxmin()], recover.loc[recover["ttr_mean_s"].idxmax()]
        if slow["ttr_mean_s"] > fast["ttr_mean_s"]:
            out.append(f"After a bad release, {fast['variant']} was back on the old version "
                       f"{duration(fast['ttr_mean_s'])} after the release started on average; "
                       f"{slow['variant']} took {duration(slow['ttr_mean_s'])}.")
    promoted = _finite(t, "p_bad_promoted")
    promoted = promoted[promoted["p_bad_promoted"] > 0]
    if len(promoted):
        out.append("Bad releases reached 100%: " + ", ".join(
            f"{r['variant']} in {pct_ci(r['p_bad_promoted'], r.get('p_bad_promoted_lo'), r.get('p_bad_promoted_hi'))}"
            for _, r in promoted.iterrows()) + " of bad deploys.")
    false = _finite(t, "p_false_rollback")
    if len(false):
        noisy = false[false["p_false_rollback"] > 0]
        if len(noisy):
            out.append("False rollbacks of good releases: " + ", ".join(
                f"{r['variant']} {pct(r['p_false_rollback'])}" for _, r in noisy.iterrows()) + ".")
        elif "good_runs" in t.columns and t["good_runs"].sum() > 0:
            out.append(f"No variant rolled back a good release ({count(t['good_runs'].min())}+ good runs each).")
    speed = _finite(t, "deploy_duration_good_mean_s")
    if len(speed) > 1:
        fast = speed.loc[speed["deploy_duration_good_mean_s"].idxmin()]
        slow = speed.loc[speed["deploy_duration_good_mean_s"].idxmax()]
        if slow["variant"] != fast["variant"]:
            out.append(f"The price is time: a good release takes {duration(slow['deploy_duration_good_mean_s'])} "
                       f"to promote with {slow['variant']} against {duration(fast['deploy_duration_good_mean_s'])} "
                       f"with {fast['variant']}.")
    return out


def _listing(rows: pd.DataFrame, column: str) -> str:
    """'canary 0.5 [-5.2–6.1], rolling 6 and big_bang 21,036', lowest first."""
    rows = rows.sort_values(column, kind="stable")
    parts = [f"{r['variant']} {count_ci(r[column], r.get(f'{column}_lo'), r.get(f'{column}_hi'))}"
             for _, r in rows.iterrows()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _holds_zero(rows: pd.DataFrame, column: str) -> list[str]:
    low, high = rows.get(f"{column}_lo"), rows.get(f"{column}_hi")
    if low is None or high is None:
        return []
    return [str(v) for v, lo, hi in zip(rows["variant"], low, high) if not missing(lo) and lo <= 0 <= hi]


def _added_sentences(t: pd.DataFrame) -> list[str]:
    """Bad requests as the release added them: over the same seeds with no release, bad and good releases apart."""
    out = []
    base = _finite(t, "no_release_bad_mean")["no_release_bad_mean"]
    if len(base):
        level = count(base.min()) if count(base.min()) == count(base.max()) else f"{count(base.min())} to {count(base.max())}"
        out.append(f"With no release at all, the same seeds serve {level} bad requests per run (the scenario's "
                   f"crashes, failures and traffic); what follows is what a release added to that, run by run.")
    bad = _finite(t, "added_given_bad_mean")
    if len(bad):
        text = f"Bad requests added by a bad release: {_listing(bad, 'added_given_bad_mean')}"
        zero = _holds_zero(bad, "added_given_bad_mean")
        if zero:
            text += (f"; with {' and '.join(zero)} the interval holds 0: no bad request a bad release cost can be told "
                     f"apart from the run without it")
        out.append(text + ".")
    good = _finite(t, "added_given_good_mean")
    if len(good):
        out.append(f"Added by a good release, the price of deploying it: {_listing(good, 'added_given_good_mean')}.")
    return out


def _caught_sentence(caught: pd.DataFrame) -> str:
    """Who caught most bad releases and how fast; ties broken by the faster median detection."""
    has_ttd = "ttd_p50_s" in caught.columns
    order = caught.assign(_ttd=caught["ttd_p50_s"] if has_ttd else 0.0)
    order = order.sort_values(["p_rollback_bad", "_ttd"], ascending=[False, True], na_position="last")
    best, worst = order.iloc[0], order.iloc[-1]

    def within(row: pd.Series) -> str:
        return f" within {duration(row['ttd_p50_s'])}" if has_ttd and not missing(row["ttd_p50_s"]) else ""

    if len(caught) > 1 and best["p_rollback_bad"] == worst["p_rollback_bad"]:
        text = f"Every variant caught {pct(best['p_rollback_bad'])} of bad releases"
        ttd = order.dropna(subset=["_ttd"]).sort_values("_ttd") if has_ttd else order.iloc[0:0]
        if len(ttd) > 1 and ttd["_ttd"].iloc[0] != ttd["_ttd"].iloc[-1]:
            text += (f"; median time to detect ran from {duration(ttd['_ttd'].iloc[0])} ({ttd['variant'].iloc[0]}) "
                     f"to {duration(ttd['_ttd'].iloc[-1])} ({ttd['variant'].iloc[-1]})")
        return text + "."
    text = f"{best['variant']} caught {pct(best['p_rollback_bad'])} of bad releases{within(best)} on median"
    if worst["variant"] != best["variant"]:
        text += f"; {worst['variant']} caught {pct(worst['p_rollback_bad'])}{within(worst)}"
    return text + "."


def _point(row: pd.Series, params: list[str]) -> str:
    return ", ".join(f"{short_param(p)}={row[p]}" for p in params)


def sweep_narrative(table: pd.DataFrame, pareto: pd.DataFrame, params: list[str], meta: dict[str, Any],
                    decision: dict | None = None, name: Callable[[int], str] | None = None) -> list[str]:
    """The grid in a few sentences. Which point is lowest on the objective or on deploy time is claimed only from
    a decision's paired intervals; without one, the lowest means are given with their own intervals, unranked."""
    out = [f"{len(table)} grid points over {', '.join(short_param(p) for p in params)}"
           + (f", {count(table['runs'].iloc[0])} runs each." if "runs" in table.columns and len(table) else ".")]
    if decision:
        from simlab.report.decision import lowest_sentences

        out.extend(lowest_sentences(decision, name or (lambda i: str(i + 1))))
    else:
        cols = {"deploy_duration_good_mean_s", "bad_mean"}
        if len(pareto) and cols <= set(pareto.columns):
            front = pareto.sort_values("deploy_duration_good_mean_s")
            quick, few = front.iloc[0], front.loc[front["bad_mean"].idxmin()]
            out.append(f"{len(front)} of them are on the Pareto front of deploy duration against bad requests.")
            out.append(f"Lowest mean deploy time on it: {_point(quick, params)}, "
                       f"{duration(quick['deploy_duration_good_mean_s'])}; fewest bad requests per deploy: "
                       f"{_point(few, params)}, {count_ci(few['bad_mean'], few.get('bad_mean_lo'), few.get('bad_mean_hi'))}"
                       f". These results carry no paired comparison, so neither is claimed better than its "
                       f"neighbours.")
    caught = _finite(table, "p_rollback_bad")
    if len(caught) > 1:
        lo, hi = caught.loc[caught["p_rollback_bad"].idxmin()], caught.loc[caught["p_rollback_bad"].idxmax()]
        if hi["p_rollback_bad"] != lo["p_rollback_bad"]:
            out.append(f"The share of bad releases caught ranges from {pct(lo['p_rollback_bad'])} "
                       f"({_point(lo, params)}) to {pct(hi['p_rollback_bad'])} ({_point(hi, params)}).")
    return out
