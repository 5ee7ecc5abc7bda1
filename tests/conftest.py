"""Suite-wide settings and the fixtures several test modules share.

Hypothesis: no deadlines (shared CI machines are slow and noisy), no shrinking.
"""
from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from tests.helpers.scenarios import scenario

# No shrinking: a failing example is printed as found, so a red CI run stays within its time budget.
settings.register_profile("simlab", deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile("simlab")


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
