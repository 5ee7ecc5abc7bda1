"""Fixtures that start real HAProxy, Prometheus and service processes on 127.0.0.1 and always stop them."""
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
    """A running staging of the small scenario; stopped whatever the test does."""
    from simlab.staging.supervisor import Staging

    st = Staging.up(small_scenario(), tmp_path / "state")
    try:
        yield st
    finally:
        # From the state file: a test may have restarted instances (new PIDs) through another Staging object.
        Staging.open(st.dir).down() if st.state_file.exists() else st.down()
