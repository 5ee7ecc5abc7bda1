"""Fixtures that start real HAProxy, Prometheus and service processes on 127.0.0.1 and always stop them.

Helpers that test modules import by name (scenarios, `wait_for`, `get_many`) are in staging_helpers.py.
"""
from __future__ import annotations

import shutil

import pytest

from staging_helpers import small_scenario


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
