"""`simlab chaos suite DIR`: every scenario and Chaos Toolkit experiment in DIR against one staging, in turn.

Items are the files directly in DIR, by name: `*.yaml`/`*.yml` scenarios
(judged as `simlab validate` judges them: their generated experiment run,
the journal rule, the deploy against the prediction) and Chaos Toolkit
experiments (`*.json`, or YAML with a `method`), run with `chaos run` and
judged by their journal and, when they deploy and carry a prediction under
`extensions.simlab`, by that prediction. Before each item the fleet is put
back to `fleet.instances` ready instances of the stable version with every
fault undone, so no item inherits another's state.

A staging already running in the state directory is used and left running;
otherwise one is started from the first scenario (or the first scenario an
experiment deploys) and stopped at the end, whatever happens. A staging the
suite started is restarted for an item whose fleet size or zones differ; a
user's staging that does not fit an item fails that item.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from simlab.chaos.journal import ValidationResult, load_journal
from simlab.errors import ScenarioError, SimlabError, StagingError
from simlab.scenario import Scenario

SCENARIO, EXPERIMENT = "scenario", "experiment"
SUFFIXES = (".yaml", ".yml", ".json")


@dataclasses.dataclass(frozen=True)
class Item:
    path: Path
    kind: str  # SCENARIO or EXPERIMENT

    @property
    def name(self) -> str:
        return self.path.name


@dataclasses.dataclass(frozen=True)
class ItemResult:
    """One item's verdict: passed, failed (with the check that failed and by how much) or an error (bad input,
    a staging that could not run it)."""

    item: Item
    status: str  # passed, failed or error
    message: str
    seconds: float
    result: ValidationResult | None = None
    out: Path | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclasses.dataclass(frozen=True)
class SuiteResult:
    directory: Path
    items: tuple[ItemResult, ...]
    seconds: float
    started_staging: bool

    @property
    def passed(self) -> bool:
        return bool(self.items) and all(i.passed for i in self.items)


def items_in(directory: str | Path) -> list[Item]:
    """The suite's items, by file name; a YAML file with a `method` key is an experiment, any other a scenario."""
    from simlab.scenario import safe_yaml
    from simlab.scenario.files import read_scenario_text

    directory = Path(directory)
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: expected a directory of scenarios and experiments, found "
                            f"{'a file' if directory.exists() else 'nothing'}")
    items = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES):
        kind = EXPERIMENT
        if path.suffix != ".json":
            data, _ = safe_yaml.load(read_scenario_text(path, "scenario or experiment"), str(path))
            kind = EXPERIMENT if isinstance(data, dict) and "method" in data else SCENARIO
        items.append(Item(path, kind))
    if not items:
        raise ScenarioError(f"{directory}: expected scenarios (*.yaml) or Chaos Toolkit experiments (*.json), "
                            f"found none")
    return items


def run_suite(directory: str | Path, state_dir: str | Path = ".simlab-state", out: str | Path = "reports/chaos-suite",
              runs: int | None = None, report: bool = True,
              progress: Callable[[str], None] = lambda line: None) -> SuiteResult:
    """Run every item of `directory` against the staging in `state_dir`; each item's files go to OUT/<item>/."""
    from simlab.chaos.validate import running_staging

    t0 = time.monotonic()
    items = items_in(directory)
    state_dir, out = Path(state_dir).resolve(), Path(out).resolve()
    first = _first_scenario(items)
    st, owned, notes = running_staging(first, state_dir) if first is not None else (_user_staging(state_dir),
                                                                                      False, [])
    for line in notes:
        progress(line)
    progress(f"{'started a staging' if owned else 'using the running staging'} in {st.dir}")
    results = []
    try:
        for item in items:
            results.append(_run_item(item, state_dir, out / item.path.stem, runs, report, owned, progress))
    finally:
        if owned:
            from simlab.staging.supervisor import Staging

            Staging.open(state_dir).down()
    return SuiteResult(Path(directory), tuple(results), time.monotonic() - t0, owned)


def _run_item(item: Item, state_dir: Path, out: Path, runs: int | None, report: bool, owned: bool,
              progress: Callable[[str], None]) -> ItemResult:
    from simlab.chaos.validate import run_experiment, validate

    t0 = time.monotonic()
    progress(f"{item.name}: running ({item.kind})")
    try:
        if item.kind == SCENARIO:
            scenario = _staging_form(item.path)
            _stable_fleet(state_dir, scenario if owned else None)
            result = validate(scenario, state_dir=state_dir, out=out, runs=runs, report=report)
        else:
            _stable_fleet(state_dir, None)
            result = run_experiment(item.path, state_dir, out, check=False)
    except SimlabError as exc:
        done = ItemResult(item, "error", f"{type(exc).__name__}: {exc}", time.monotonic() - t0, out=out)
    else:
        message = "" if result.passed else f"{result.verdict}: {result.reason}"
        done = ItemResult(item, "passed" if result.passed else "failed", message, time.monotonic() - t0, result, out)
    progress(f"{item.name}: {done.status} in {done.seconds:.1f}s" + (f": {done.message}" if done.message else ""))
    return done


def _staging_form(path: Path) -> Scenario:
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario

    return staging_scenario(load_scenario(path))


def _first_scenario(items: list[Item]) -> Scenario | None:
    """What a staging is started from: the first scenario item, else the first scenario an experiment deploys."""
    for item in items:
        if item.kind == SCENARIO:
            return _staging_form(item.path)
    for item in items:
        for activity in _experiment_data(item.path).get("method") or []:
            provider = (activity or {}).get("provider") or {}
            if (provider.get("module"), provider.get("func")) == ("simlab.chaos.actions", "deploy"):
                return _staging_form(Path(provider.get("arguments", {}).get("scenario", "")))
    return None


def _experiment_data(path: Path) -> dict:
    from simlab.scenario import safe_yaml
    from simlab.scenario.files import read_scenario_text

    text = read_scenario_text(path, "experiment")
    data = json.loads(text) if path.suffix == ".json" else safe_yaml.load(text, str(path))[0]
    return data if isinstance(data, dict) else {}


def _user_staging(state_dir: Path):
    from simlab.staging.supervisor import Staging

    try:
        return Staging.open(state_dir)
    except StagingError as exc:
        raise StagingError(f"{exc}; the suite has no scenario to start one from (its items are experiments that "
                           f"deploy nothing): start one with `simlab staging up SCENARIO --dir {state_dir}`") from None


def _stable_fleet(state_dir: Path, scenario: Scenario | None) -> None:
    """The staging back to `fleet.instances` ready stable instances, faults undone (restarted with `scenario`'s
    fleet first if it is the suite's own and the fleet differs)."""
    from simlab.chaos.actions import DEPENDENCY_PROPAGATION
    from simlab.staging import health
    from simlab.staging.faults import dependency_fault
    from simlab.staging.local_fleet import LocalFleet
    from simlab.staging.supervisor import Staging

    st = Staging.open(state_dir)
    if scenario is not None and st.scenario is not None and (
            (st.scenario.fleet.instances, st.scenario.fleet.zones) != (scenario.fleet.instances, scenario.fleet.zones)):
        st.down()
        Staging.up(scenario, state_dir)
        return
    health.refuse_if_damaged(st, state_dir)
    faulty = dependency_fault(st.dir) is not None
    st.restore()
    health.repair(st, timeout=st.startup_limit())
    LocalFleet(st).reset_to_stable()
    st.wait_ready(st.scenario.fleet.instances, 0, st.startup_limit())
    if faulty:
        time.sleep(DEPENDENCY_PROPAGATION)  # every instance reads the healthy dependency within this


def journal_text(result: ItemResult) -> str:
    """What a JUnit `system-out` carries: the verdict, the figures, the files, then the journal itself."""
    lines = [f"{result.item.name}: {result.message or result.status}"]
    r = result.result
    if r is not None:
        lines.append(f"journal status {r.status}, chaos exited {r.chaos_exit}")
        lines += [f"probe {p.name}: tolerance {json.dumps(p.tolerance)}, before {p.before!r}, after {p.after!r}"
                  for p in r.probes]
        lines += [f"{'ok  ' if c.passed else 'MISS'} {c.line()}" for c in r.checks]
        if r.note:
            lines.append(f"prediction: {r.note}")
        if r.observed:
            keys = ("outcome", "requests", "failed", "bad", "latency_p99_ms", "detected_at_s", "rollback_done_at_s")
            lines.append("summary: " + json.dumps({k: r.observed.get(k) for k in keys}))
        lines.append(f"journal: {r.journal}" + (f"; report: {r.report / 'report.html'}" if r.report else ""))
        try:
            lines += ["", "--- journal.json ---", json.dumps(load_journal(r.journal), indent=1, default=str)]
        except StagingError:
            pass
    return "\n".join(lines) + "\n"
