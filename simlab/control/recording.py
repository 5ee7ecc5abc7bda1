"""A controller's observation stream, recorded by any driver and replayed into a fresh controller.

The controller is pure, so what it decides is fixed by what it observed: each
tick's time, FleetState and the MetricsView answers it asked for. A driver
wraps its controller in `RecordingController` to write that stream (one JSON
line per tick, with the actions and events that came out); `replay` feeds the
stream to a new controller and raises `Divergence` at the first tick where it
asks another question or decides otherwise. The same format comes out of the
simulator and the staging deployer, so either can be replayed and compared.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable, Iterable

from simlab.control.controller import RolloutController
from simlab.control.observations import (
    Action,
    FleetState,
    MetricsView,
    VersionCount,
    WindowStats,
)
from simlab.errors import SimlabError
from simlab.scenario import Scenario

FORMAT = "simlab-observations/1"


class Divergence(SimlabError):
    """A replayed controller asked or decided something other than the recorded one."""


# -- JSON forms ---------------------------------------------------------------
def fleet_json(fleet: FleetState) -> dict:
    data = {"old": [fleet.old.alive, fleet.old.ready], "new": [fleet.new.alive, fleet.new.ready],
            "migration": fleet.migration}
    if fleet.baseline.alive or fleet.baseline.ready:  # a canary's baseline; recordings without one as before
        data["baseline"] = [fleet.baseline.alive, fleet.baseline.ready]
    return data


def fleet_from(data: dict) -> FleetState:
    return FleetState(VersionCount(*data["old"]), VersionCount(*data["new"]), data["migration"],
                      VersionCount(*data.get("baseline", (0, 0))))


def window_json(w: WindowStats) -> dict:
    data = asdict(w)
    if not w.custom:
        del data["custom"]  # recordings without query metrics read as they always did
    return data


def window_from(data: dict) -> WindowStats:
    return WindowStats(**{**data, "custom": tuple((name, value) for name, value in data.get("custom", ()))})


def action_json(action: Action) -> dict:
    data = {"action": type(action).__name__, **asdict(action)}
    if data.get("baseline_percent") == 0:
        del data["baseline_percent"]  # no baseline share: a SetWeight reads as it always did
    return data


def _plain(value: Any) -> Any:
    """What `value` reads back as from JSON (tuples become lists, numpy scalars plain numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


# -- recording ------------------------------------------------------------------
class RecordingMetrics:
    """A MetricsView that passes each question to `inner` and keeps (question, answer) in order."""

    def __init__(self, inner: MetricsView):
        self.inner = inner
        self.asked: list[dict] = []

    def version_window(self, version: str) -> WindowStats:
        answer = self.inner.version_window(version)
        self.asked.append({"ask": "version_window", "arg": version, "answer": window_json(answer)})
        return answer

    def total_window(self, seconds: float) -> WindowStats:
        answer = self.inner.total_window(seconds)
        self.asked.append({"ask": "total_window", "arg": seconds, "answer": window_json(answer)})
        return answer

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        answer = self.inner.version_samples(version, count)
        self.asked.append({"ask": "version_samples", "arg": [version, count], "answer": [window_json(w) for w in answer]})
        return answer


class RecordingController:
    """Wraps a RolloutController: `tick` is recorded through `write` (one JSON line each); all else passes."""

    def __init__(self, controller: RolloutController, write: Callable[[str], Any], *, driver: str):
        self._inner = controller
        self._write = write
        self._write(json.dumps({"format": FORMAT, "driver": driver,
                                "scenario": controller.scenario.model_dump(mode="json")}) + "\n")

    def tick(self, now: float, fleet: FleetState, metrics: MetricsView) -> list[Action]:
        seen = len(self._inner.events)
        recording = RecordingMetrics(metrics)
        actions = self._inner.tick(now, fleet, recording)
        line = {
            "now": now, "fleet": fleet_json(fleet), "asked": recording.asked,
            "actions": [action_json(a) for a in actions],
            "events": [[e.time, e.kind, e.detail] for e in self._inner.events[seen:]],
            "phase": self._inner.phase,
        }
        self._write(json.dumps(_plain(line)) + "\n")
        return actions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# -- replaying ------------------------------------------------------------------
class ReplayMetrics:
    """A MetricsView answering one tick's questions from the record, in the order they were asked."""

    def __init__(self, asked: list[dict], now: float):
        self.asked = asked
        self.now = now
        self.i = 0

    def _answer(self, ask: str, arg: Any) -> Any:
        if self.i >= len(self.asked):
            raise Divergence(f"at t={self.now:.3f}s the replayed controller asked {ask}({arg!r}); "
                             f"the recorded one asked only {len(self.asked)} question(s)")
        rec = self.asked[self.i]
        if rec["ask"] != ask or rec["arg"] != arg:
            raise Divergence(f"at t={self.now:.3f}s question {self.i + 1}: replayed {ask}({arg!r}), "
                             f"recorded {rec['ask']}({rec['arg']!r})")
        self.i += 1
        return rec["answer"]

    def version_window(self, version: str) -> WindowStats:
        return window_from(self._answer("version_window", version))

    def total_window(self, seconds: float) -> WindowStats:
        return window_from(self._answer("total_window", seconds))

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        return tuple(window_from(w) for w in self._answer("version_samples", [version, count]))


def read(lines: Iterable[str]) -> tuple[dict, list[dict]]:
    """The header and the ticks of a recorded stream (JSON lines)."""
    rows = [json.loads(line) for line in lines if line.strip()]
    if not rows or rows[0].get("format") != FORMAT:
        raise Divergence(f"not a {FORMAT} recording (first line: {str(rows[0])[:80] if rows else 'none'})")
    return rows[0], rows[1:]


def replay(ticks: list[dict], scenario: Scenario | dict, *, queries: bool = False) -> RolloutController:
    """Feed recorded ticks to a fresh controller; Divergence at the first question, action or event that differs.

    `queries`: the recording's driver evaluated the analysis metrics' PromQL queries (staging's do).
    Returns the replayed controller (its outcome, events and times can then be compared too).
    """
    if not isinstance(scenario, Scenario):
        scenario = Scenario.model_validate(scenario)
    controller = RolloutController(scenario, queries=queries)
    for n, tick in enumerate(ticks):
        now, seen = tick["now"], len(controller.events)
        view = ReplayMetrics(tick["asked"], now)
        actions = [action_json(a) for a in controller.tick(now, fleet_from(tick["fleet"]), view)]
        where = f"tick {n} (t={now:.3f}s)"
        if view.i != len(view.asked):
            raise Divergence(f"{where}: the replayed controller asked {view.i} of the "
                             f"{len(view.asked)} recorded questions")
        if _plain(actions) != tick["actions"]:
            raise Divergence(f"{where}: replayed actions {actions}, recorded {tick['actions']}")
        events = _plain([[e.time, e.kind, e.detail] for e in controller.events[seen:]])
        if events != tick["events"]:
            raise Divergence(f"{where}: replayed events {events}, recorded {tick['events']}")
        if controller.phase != tick["phase"]:
            raise Divergence(f"{where}: replayed phase {controller.phase}, recorded {tick['phase']}")
    return controller


def replay_file(path) -> RolloutController:
    """Replay a recording written by `RecordingController`, with the scenario it carries."""
    with open(path) as f:
        header, ticks = read(f)
    return replay(ticks, header["scenario"], queries=str(header.get("driver", "")).startswith("staging"))
