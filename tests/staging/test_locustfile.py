"""`simlab locustfile`: the file runs with plain `locust` against the staging and sends what the scenario's shape says."""
from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np

from simlab.cli import main
from simlab.staging.load import _locust_bin

SPIKY = """\
name: spiky
duration: 12s
fleet: {instances: 3, workers: 8, service_time: {dist: lognormal, mean: 20ms, p99: 80ms}}
traffic:
  rps: 20
  spikes: [{at: 3s, duration: 3s, multiplier: 3}]
  timeout: 2s
"""
RUN_S = 8
EXPECTED = 3 * 20 + 3 * 60 + 2 * 20  # the shape's first 8 seconds: 20 rps, a x3 spike from 3 s to 6 s, 20 rps


def test_the_generated_locustfile_runs_with_plain_locust_and_follows_the_shape(shared_staging, tmp_path, capsys):
    st, _ = shared_staging
    scenario = tmp_path / "spiky.yaml"
    scenario.write_text(SPIKY)
    locustfile = tmp_path / "load" / "locustfile.py"
    assert main(["locustfile", str(scenario), "-o", str(locustfile)]) == 0
    assert f"wrote {locustfile}: 12 s of spiky's traffic, 360 requests, peak 60 rps" in capsys.readouterr().out
    text = locustfile.read_text()
    assert "import simlab" not in text and "from simlab" not in text  # runs where only Locust is installed

    records = tmp_path / "records"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMLAB_")}
    t0 = time.monotonic()
    done = subprocess.run([_locust_bin(), "-f", str(locustfile), "--headless", "-H", st.url, "--run-time", f"{RUN_S}s",
                           "--records", str(records), "--only-summary", "--loglevel", "WARNING"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    assert took < RUN_S + 15  # the shape stopped at --run-time, not at the scenario's 12 s end plus grace

    rows = [json.loads(line) for path in records.glob("requests-*.jsonl") for line in path.read_text().splitlines()]
    assert 0.85 * EXPECTED <= len(rows) <= 1.1 * EXPECTED, len(rows)
    assert {r["status"] for r in rows} == {200} and {r.get("v") for r in rows} <= {"old", "new"}
    start = np.array([r["t"] for r in rows])
    per_second = np.bincount((start - start.min()).astype(int))[:RUN_S]
    # The spike shows: its two busiest seconds carry over twice the typical second's requests. (Constant-pacing
    # users notice a new rate after their current pause, so the spike may show up to a second late.)
    busiest = max(per_second[i:i + 2].sum() for i in range(len(per_second) - 1)) / 2
    assert busiest >= 2 * np.median(per_second), per_second


def test_staging_takes_the_staging_block_as_staging_load_does(tmp_path, capsys):
    from pathlib import Path

    scenario = Path(__file__).resolve().parents[2] / "experiments" / "staging-canary-bad.yaml"
    out = tmp_path / "locustfile.py"
    assert main(["locustfile", str(scenario), "--staging", "-o", str(out)]) == 0
    assert "90 s of staging-canary-bad's traffic, 5,400 requests, peak 60 rps" in capsys.readouterr().out  # 90s x 60
    assert main(["locustfile", str(scenario), "-o", str(out)]) == 0  # as written: 30 minutes at 400 rps
    assert "1800 s of staging-canary-bad's traffic, 720,000 requests, peak 400 rps" in capsys.readouterr().out
    assert "'rate_runs': [[400.0, 1800]]" in out.read_text()


def test_simlabs_own_locustfile_says_how_to_get_one_plain_locust_runs(tmp_path):
    from simlab.staging.load import LOCUSTFILE

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMLAB_")}
    done = subprocess.run([_locust_bin(), "-f", str(LOCUSTFILE), "--headless", "-H", "http://127.0.0.1:9",
                           "--run-time", "1s"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "simlab locustfile SCENARIO -o locustfile.py" in done.stderr + done.stdout
    assert "KeyError" not in done.stderr
