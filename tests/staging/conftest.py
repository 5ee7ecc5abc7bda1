"""Fixtures that start real HAProxy, Prometheus and service processes on 127.0.0.1 and always stop them.

Helpers that test modules import by name (scenarios, `wait_for`, `get_many`) are in staging_helpers.py.
"""
from __future__ import annotations

import shutil

import pytest

from staging_helpers import small_scenario


SHARED = """\
name: shared-staging
duration: 16s
seed: 7
fleet:
  instances: 3
  workers: 8
  queue_limit: 32
  service_time: {dist: lognormal, mean: 20ms, p99: 80ms}
  startup: 500ms
  load_balancer: least_outstanding
  health_check: {interval: 250ms, unhealthy_after: 2, healthy_after: 2}
traffic: {rps: 60, timeout: 2s}
release: {at: 4s}
strategy: {kind: canary, steps: [{weight: 50, bake: 4s}, {weight: 100}]}
analysis: {interval: 2s, failure_limit: 2, min_requests: 10, metrics: [{metric: error_rate, max: 0.05}]}
rollback: {automatic: true, duration: 1s, on_call: {ack: 10s}}
monitoring: {scrape_interval: 1s, window: 4s, delay: 0s}
slo: {availability: 99.0, latency_threshold: 150ms, alert: {long_window: 10s, short_window: 4s}}
failures:
  - {kind: dependency, at: 10s, duration: 2s, add_latency: 30ms}
"""


def shared_staging_up(folder):
    """A staging of SHARED brought up in `folder`: (Staging, its scenario file)."""
    from simlab.scenario import load_scenario
    from simlab.staging.supervisor import Staging

    path = folder / "shared-staging.yaml"
    path.write_text(SHARED)
    return Staging.up(load_scenario(path), folder / "state"), path


@pytest.fixture(scope="session")
def shared_staging(tmp_path_factory):
    """(Staging, scenario file): one staging of SHARED for the session's tests that measure or load it and leave
    it as they found it (calibrate, the generated locustfile; a deploy onto it resets it to the stable version
    first), started once and stopped after the session's last test."""
    from simlab.staging.supervisor import Staging

    st, path = shared_staging_up(tmp_path_factory.mktemp("shared-staging"))
    try:
        yield st, path
    finally:
        try:
            if st.state_file.exists():
                Staging.open(st.dir).down()
        finally:
            st.down()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/staging" in str(item.fspath):
            item.add_marker(pytest.mark.staging)


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    # Never skipped: a missing binary is a failure that says what to install.
    missing = [b for b in ("haproxy", "prometheus") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"staging tests need {' and '.join(missing)}: run `make system-deps` "
                    f"(apt-get install {' '.join(missing)})", pytrace=False)


@pytest.fixture
def staging(tmp_path):
    """A running staging of the small scenario, stopped whatever the test does.

    Tests restart instances (new PIDs) and experiments and deploys start new
    ones, some in other processes: the state file knows what runs at the end,
    so it is stopped from there first, then whatever `up` started and the state
    file may have lost track of (a no-op otherwise).
    """
    from simlab.staging.supervisor import Staging

    st = Staging.up(small_scenario(), tmp_path / "state")
    try:
        yield st
    finally:
        try:
            if st.state_file.exists():
                Staging.open(st.dir).down()
        finally:
            st.down()
