"""Same scenario and seed, same numbers: across processes too, where object addresses (and so set order) differ."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = """
import hashlib, sys
from tests.helpers.scenarios import scenario
from simlab import simulate
failures = [{"kind": "instance_crash", "mtbf": "20s", "restart": "5s"}]
retries = {"max": 2, "backoff": "50ms", "budget": 0.5}
sc = scenario("canary", **{"failures": failures, "traffic.rps": 500, "traffic.retries": retries, "duration": "4m",
                           "release.at": "1m"})
r = simulate(sc, seed=3, engine=sys.argv[1])
print(hashlib.sha256(r.timeline.to_csv().encode() + repr(sorted(r.summary.to_dict().items())).encode()).hexdigest())
"""


@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_a_run_with_crashes_gives_the_same_numbers_in_separate_processes(engine):
    """Crashes fail what an instance holds; the retries they cause must not depend on memory addresses."""
    digests = {
        subprocess.run([sys.executable, "-c", RUN, engine], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       check=True).stdout.strip()
        for _ in range(3)
    }
    assert len(digests) == 1, digests
