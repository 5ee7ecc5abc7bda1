"""simlab's Chaos Toolkit extension: faults and probes for the local staging, and `simlab validate`.

Experiments name `simlab.chaos.actions` and `simlab.chaos.probes` as Python
providers; every activity finds the staging through the `simlab_state_dir`
configuration key (usually `{"type": "env", "key": "SIMLAB_STATE_DIR"}`).
chaoslib is imported only inside functions: importing simlab.chaos costs nothing,
and `chaos` itself runs as a subprocess (see `validate`).
"""
from __future__ import annotations

__all__ = ["discover"]


def discover(discover_system: bool = True) -> dict:
    """What `chaos discover simlab` lists: the actions and probes in each module's `__all__`.

    There is no system to discover beyond a staging's state directory, which
    experiments are given through their configuration, so `system` stays None.
    """
    from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result

    from simlab import __version__

    discovery = initialize_discovery_result("simlab", __version__, "simlab-staging")
    discovery["activities"].extend(discover_actions("simlab.chaos.actions"))
    discovery["activities"].extend(discover_probes("simlab.chaos.probes"))
    return discovery


CONFIG_KEY = "simlab_state_dir"
"""The configuration key every activity reads the staging's state directory from."""


def state_dir_of(configuration: dict | None, state_dir: str | None = None) -> str:
    """The state directory an activity acts on: its own `state_dir` argument, else the experiment's configuration."""
    from simlab.errors import ScenarioError

    if state_dir:
        return str(state_dir)
    value = (configuration or {}).get(CONFIG_KEY)
    if not value:
        raise ScenarioError(
            f"configuration.{CONFIG_KEY}: expected the staging's state directory (e.g. "
            f'"{CONFIG_KEY}": {{"type": "env", "key": "SIMLAB_STATE_DIR"}} in the experiment, or a `state_dir` '
            f"argument), found {'no configuration' if not configuration else 'no such key'}"
        )
    return str(value)


def open_staging(configuration: dict | None, state_dir: str | None = None):
    """The running staging an activity acts on (StagingError when there is none in that directory)."""
    from simlab.staging.supervisor import Staging

    st = Staging.open(state_dir_of(configuration, state_dir))
    if st.scenario is None:
        from simlab.errors import StagingError

        raise StagingError(f"the staging in {st.dir} has no readable scenario.json; restart it with "
                           f"`simlab staging down` and `simlab staging up`")
    return st


VERSIONS = ("old", "new")


def check_version(version: str | None, allow_any: bool = True) -> None:
    from simlab.errors import ScenarioError

    allowed = VERSIONS + ((None,) if allow_any else ())
    if version not in allowed:
        expected = "old or new" + (" (or null for both)" if allow_any else "")
        raise ScenarioError(f"version: expected {expected}, found {version!r}")


def ready_count(st, version: str | None = None, settle: float = 0.0) -> int:
    """Instances in HAProxy rotation (of `version`, or all), polled up to `settle` s for the whole fleet.

    Whole means the scenario's `fleet.instances`: a fleet that is still coming
    back (a restart's start-up and health checks) is given `settle` seconds.
    """
    import time

    target = st.scenario.fleet.instances
    deadline = time.monotonic() + max(0.0, float(settle))
    while True:
        counts = st.ready_counts()
        n = counts[version] if version else sum(counts.values())
        if n >= target or time.monotonic() >= deadline:
            return n
        time.sleep(0.1)
