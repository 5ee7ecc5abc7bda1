"""Chaos Toolkit actions on the local staging: crashes, zone outages, a degraded dependency, a deploy.

Each action finds the staging through `configuration["simlab_state_dir"]` (or
its own `state_dir` argument) and calls the supervisor's fault primitives, the
same ones the deployer uses for a scenario's `failures:`. Faults persist in
the state directory, so they outlive the `chaos` process: `restore()` (the
rollback) undoes all of them.

No `from __future__ import annotations` here: chaoslib reads the annotations
to describe each argument's type in `chaos discover`.
"""
import json
import math
import time
from pathlib import Path

from simlab.chaos import check_version, open_staging, ready_count, state_dir_of
from simlab.errors import ScenarioError, StagingError

__all__ = [
    "kill_instances", "restart_due", "zone_outage", "restore_zone", "dependency_fault", "clear_dependency_fault",
    "restore", "deploy",
]

DEPENDENCY_PROPAGATION = 1.2
"""Seconds until every instance serves with a new dependency state (each reads it once a second)."""


def kill_instances(count: int = 1, version: str = "old", restart_after: float | None = None,
                   configuration: dict | None = None, state_dir: str | None = None) -> list:
    """Crash `count` instances of `version` in rotation (the first by name), as SIGKILL would; return their names.

    With `restart_after` None they stay down until `restore()` (the rollback)
    or a zone coming up; with a number of seconds they are crashed instances
    that `restart_due()` starts again once that time has passed, as the
    supervisor's loop does during a deploy.
    """
    check_version(version, allow_any=False)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ScenarioError(f"count: expected a whole number of instances >= 1, found {count!r}")
    if restart_after is not None:
        _check_seconds("restart_after", restart_after, " or null (held down)")
    st = open_staging(configuration, state_dir)
    # Candidates by what users see (in HAProxy rotation), not by PID: instances may share a host process.
    victims = []
    for name in st.in_rotation(version):
        if len(victims) == count:
            break
        if st.crash_instance(name, restart_after=restart_after):  # a dead one is left as it is
            victims.append(name)
    if len(victims) < count:
        raise StagingError(f"kill_instances: expected {count} running {version} instance(s) in rotation to kill, "
                           f"found {len(victims)}{' (killed ' + ', '.join(victims) + ')' if victims else ''}")
    return victims


def restart_due(within: float = 0.0, configuration: dict | None = None, state_dir: str | None = None) -> list:
    """Start again the crashed instances whose restart time has come; return their names.

    Without a deploy running nothing supervises the staging, so an experiment
    that crashes instances with `restart_after` calls this when they are due.
    Restarts due in the next `within` seconds are waited for, so an action that
    runs a little early (pauses drift behind slow activities) still finds them.
    """
    _check_seconds("within", within)
    st = open_staging(configuration, state_dir)
    now = time.time()
    due = st.restarts_due(by=now + within)
    if due:
        time.sleep(max(0.0, max(due) - now))
    return [name for kind, name, _ in st.reap() if kind == "instance_restarted"]


def zone_outage(zone: int, configuration: dict | None = None, state_dir: str | None = None) -> list:
    """Take zone `zone` down: its instances are killed and held down (also ones started there) until it is back."""
    _check_zone(zone)
    return open_staging(configuration, state_dir).zone_down(zone)


def restore_zone(zone: int, configuration: dict | None = None, state_dir: str | None = None) -> list:
    """Bring zone `zone` back: its instances start again (start-up and health checks before they serve)."""
    _check_zone(zone)
    return open_staging(configuration, state_dir).zone_up(zone)


def dependency_fault(add_latency="0s", error_rate: float = 0.0, wait: float = DEPENDENCY_PROPAGATION,
                     configuration: dict | None = None, state_dir: str | None = None) -> dict:
    """Degrade the downstream dependency of every instance (both versions); return the fault in force.

    `add_latency` is a duration ("80ms", "1s") or seconds; `error_rate` the
    share of requests that fail. The action returns after `wait` seconds, when
    every instance has read the new state, so the next probe sees the fault.
    """
    from simlab.staging.faults import dependency_fault as in_force, set_dependency_fault
    from simlab.units import parse_duration

    _check_seconds("wait", wait)
    try:
        latency = parse_duration(add_latency)
    except ValueError as exc:
        raise ScenarioError(f"add_latency: {exc}") from None
    if isinstance(error_rate, bool) or not isinstance(error_rate, (int, float)) or not 0.0 <= error_rate <= 1.0:
        raise ScenarioError(f"error_rate: expected a share of requests from 0 to 1, found {error_rate!r}")
    directory = state_dir_of(configuration, state_dir)
    open_staging(configuration, state_dir)  # a fault file in a directory with no staging would wait for the next one
    set_dependency_fault(directory, add_latency=latency, error_rate=float(error_rate))
    time.sleep(wait)
    return in_force(directory)


def clear_dependency_fault(wait: float = DEPENDENCY_PROPAGATION, configuration: dict | None = None,
                           state_dir: str | None = None) -> dict:
    """Make the dependency healthy again; return the fault that was in force (null fields if none)."""
    from simlab.staging.faults import clear_dependency_fault as clear, dependency_fault as in_force

    _check_seconds("wait", wait)
    directory = state_dir_of(configuration, state_dir)
    before = in_force(directory)
    clear(directory)
    time.sleep(wait)
    return {"cleared": before}


def restore(settle: float = 0.0, configuration: dict | None = None, state_dir: str | None = None) -> list:
    """Undo every fault (the rollback): zones up, killed instances started, dependency healthy.

    Returns the instances started again, once every instance has the dependency
    healthy again (if it was not). With `settle` > 0 it also waits that long
    at most for the whole fleet to be back in rotation, and fails if it is not,
    so a journal never reports a rollback that left the fleet short.
    """
    from simlab.staging.faults import dependency_fault as in_force

    st = open_staging(configuration, state_dir)
    had_dependency_fault = in_force(st.dir) is not None
    names = st.restore()
    if had_dependency_fault:
        time.sleep(DEPENDENCY_PROPAGATION)  # until every instance has read that the dependency is healthy
    _check_seconds("settle", settle)
    if settle > 0:
        ready = ready_count(st, settle=settle)
        if ready < st.scenario.fleet.instances:
            raise StagingError(f"restore: started {', '.join(names) or 'nothing'} but only {ready} of "
                               f"{st.scenario.fleet.instances} instances are in rotation after {settle:g}s")
    return names


def deploy(scenario: str, out: str | None = None, load: bool = True, strategy: str | None = None,
           configuration: dict | None = None, state_dir: str | None = None) -> dict:
    """Run `simlab deploy SCENARIO` on this staging (its `staging:` block applied); return the summary.

    With `out` the results (summary.json, timeline.csv, events.csv) are written
    there, for `probes.deploy_summary_value`. The staging must be up: an
    experiment's deploy never starts one of its own.
    """
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario
    from simlab.staging.deployer import deploy as run_deploy

    s = staging_scenario(load_scenario(Path(scenario)))
    if strategy:
        s = s.with_strategy(strategy)
    st = open_staging(configuration, state_dir)
    result = run_deploy(s, st.dir, with_load=bool(load), out=Path(out) if out else None)
    if out:
        result.write(out)
    # Through JSON once, so the journal gets plain numbers and strings whatever the summary holds.
    return json.loads(json.dumps(result.summary.to_dict(), default=float))


def _check_zone(zone) -> None:
    if isinstance(zone, bool) or not isinstance(zone, int) or zone < 0:
        raise ScenarioError(f"zone: expected a zone number >= 0, found {zone!r}")


def _check_seconds(name: str, value, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ScenarioError(f"{name}: expected seconds >= 0{alternative}, found {value!r}")
