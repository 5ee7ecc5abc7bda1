"""One replication runs in Python numbers (simlab/engines/fluid/single.py), a batch in numpy arrays: the same
model written twice for speed. They must give the same numbers bit for bit, or the single run a user reads and
the Monte Carlo beside it would disagree.

Every single-replication case of the fleet fixture (tests/test_fluid_fleet_identity.py: crashes, crash loops,
leaks, zone outages, every strategy, rollbacks, retries, exact control, the example experiments and the
fidelity grid's rollouts) runs both ways here, `single.ENABLED` switched off for the array code, and their
summaries, every timeline column and the event logs are compared as the fixture compares them.
"""
from __future__ import annotations

import json

import pytest

from simlab.engines.fluid import single
from tests.test_fluid_fleet_identity import IDS, observe

ONE_REPLICATION = [case for case in IDS if not case.startswith("batch:")]


@pytest.mark.parametrize("case_id", ONE_REPLICATION)
def test_a_single_run_in_python_numbers_is_the_array_codes_bit_for_bit(case_id, monkeypatch):
    fast = json.dumps(observe(case_id, added=True), sort_keys=True)
    monkeypatch.setattr(single, "ENABLED", False)
    arrays = json.dumps(observe(case_id, added=True), sort_keys=True)
    assert fast == arrays


def test_the_switch_reaches_the_array_code(monkeypatch):
    """Without this, the comparison above could compare the fast path with itself."""
    calls = []
    original = single.tick
    monkeypatch.setattr(single, "tick", lambda *a, **k: calls.append(1) or original(*a, **k))
    observe(ONE_REPLICATION[0])
    assert calls
    calls.clear()
    monkeypatch.setattr(single, "ENABLED", False)
    observe(ONE_REPLICATION[0])
    assert not calls
