"""Suite-wide settings and the fixtures several test modules share.

Hypothesis: no deadlines (shared CI machines are slow and noisy), no shrinking.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import Phase, settings

from tests.helpers.scenarios import scenario

# No shrinking: a failing example is printed as found, so a red CI run stays within its time budget.
settings.register_profile("simlab", deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("simlab")


def pytest_configure(config):
    """The fluid engine's station tables on disk (simlab/engines/fluid/table_store.py) go to a directory of this
    session's, shared by its xdist workers and the processes tests start, and removed at its end: the suite
    builds every table it reads, and never reads or writes the user's ~/.cache."""
    if "SIMLAB_TEST_TABLES" not in os.environ:  # the controlling process; xdist workers inherit its environment
        path = tempfile.mkdtemp(prefix="simlab-tables-")
        os.environ["SIMLAB_TEST_TABLES"] = os.environ["SIMLAB_CACHE_DIR"] = path
        config.simlab_tables = path


def pytest_unconfigure(config):
    path = getattr(config, "simlab_tables", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bad_canary_dir(tmp_path_factory):
    """One real simulated canary of a bad release (rolled back), as `simlab run --out` writes it.

    Simulated once per session for every report test that reads it (run report, browser check,
    pair report). Read-only: a test that edits a run copies it first.
    """
    from simlab import simulate

    s = scenario("canary", duration="12m", **{"release.defects": [{"kind": "error_rate", "rate": 0.2}]})
    result = simulate(s, seed=2)
    assert result.summary["outcome"] == "rolled_back"
    return result.write(tmp_path_factory.mktemp("bad-canary") / "bad-canary")
