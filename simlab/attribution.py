"""What made a rollback happen: the release's defect, a scheduled failure, an instance crash, the rollout, or noise.

A good release rolled back is a false rollback, and the question a policy review asks next is what made the
metric cross. The deciding measurements saw data from `lookback` before the decision: the monitoring delay,
one scrape, the analysis window and, with failure_limit > 1, the intervals of the earlier failed measurements
(an SLO alert: its long window). Read in this order, the first that holds names the trigger:

- `defect`: the release is bad (a rollback of a bad release is the analysis doing its job);
- `failure`: a scheduled failure (a dependency's errors or latency, a zone outage) overlapped that look-back;
- `crash`: an instance the measurement reads crashed in it (the new version's for an analysis metric, any
  instance for the SLO alert), failing the requests in flight on it;
- `rollout`: the deploy itself held serving capacity out of rotation in it (`capacity_taken`: big_bang from its
  start until the new fleet is in rotation, rolling with `max_unavailable` above 0 until it is promoted), so the
  instances left took all the traffic;
- `noise`: none of these: the metric crossed on the ordinary randomness of a good release's traffic.

Rollbacks that no metric crossing triggered (the progress deadline, too many inconclusive measurements) and
runs that were not rolled back have no trigger (None). The rule is the same for every driver; staging passes
the crashes it injected.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from simlab.scenario import Scenario

NEW = 1
"""The new version's index in an event's `version` (simlab.engines.versions.NEW, which sits in a layer above this
module; tests/test_attribution.py holds the two equal)."""

TRIGGERS = ("defect", "failure", "crash", "rollout", "noise")
UNTRIGGERED = ("deadline", "inconclusive")  # rollback causes no metric crossing triggered


def lookback(s: "Scenario", cause: str) -> float:
    """Seconds before a detection whose data the deciding measurements saw."""
    mon = s.monitoring
    if cause == "alert":
        return mon.delay + mon.scrape_interval + s.slo.alert.long_window
    back = mon.delay + mon.scrape_interval + mon.window
    if s.analysis is not None:
        back += (s.analysis.failure_limit - 1) * s.analysis.interval
    return back


def decided_at(s: "Scenario", controller) -> float | None:
    """When the rollback was decided (seconds since the run's start), or None when the run was not rolled back:
    the controller's rollback start, or for the on-call's the detection they acted on (one `ack` before).
    Not `detected_at`, which keeps the first signal: an alert that fired on something else before the
    analysis failed would otherwise be read as the moment of a rollback it did not cause."""
    c = controller
    if c.outcome != "rolled_back" or c.rollback_started_at is None:
        return None
    return c.rollback_started_at - (s.rollback.on_call.ack if c.rollback_by == "on_call" else 0.0)


def capacity_taken(s: "Scenario", promoted_at: float | None, decided: float | None) -> tuple[float, float] | None:
    """(from, until) seconds since the run's start in which the deploy held serving capacity out of rotation, or
    None: big_bang stops the whole fleet at once and rolling with `max_unavailable` stops instances before their
    replacements are ready, from the release until promotion (or the rollback's decision); canary, blue-green
    and a surge-only rolling add instances before they take any away."""
    st = s.strategy
    if s.release is None or not (st.kind == "big_bang" or (st.kind == "rolling" and st.max_unavailable not in (0, "0%"))):
        return None
    until = promoted_at if promoted_at is not None else decided
    return None if until is None else (s.release.at, until)


def rollback_trigger(s: "Scenario", decided: float | None, cause: str | None, bad_release: bool,
                     crashes: Iterable[tuple[float, int | None]] = (),
                     taken: tuple[float, float] | None = None) -> str | None:
    """TRIGGERS[i] for a rollback decided at `decided` (seconds since the run's start, `decided_at`) on `cause`
    (rollback_cause), or None; `crashes`: (time, version or None when unknown) of each instance crash; `taken`:
    when the deploy held capacity out of rotation (`capacity_taken`)."""
    if decided is None or cause is None or cause in UNTRIGGERED:
        return None
    if bad_release:
        return "defect"
    start = decided - lookback(s, cause)
    for f in s.failures:
        at = getattr(f, "at", None)
        if at is not None and at < decided and at + f.duration > start:
            return "failure"
    for t, version in crashes:
        if start < t <= decided and (cause == "alert" or version is None or version == NEW):
            return "crash"
    if taken is not None and taken[0] < decided and taken[1] > start:
        return "rollout"
    return "noise"


def crash_times(events: Iterable[tuple]) -> list[tuple[float, int | None]]:
    """(time, version) of the instance crashes in an event log of (time, kind, detail) rows."""
    return [(float(t), (detail or {}).get("version")) for t, kind, detail in events if kind == "instance_crash"]
