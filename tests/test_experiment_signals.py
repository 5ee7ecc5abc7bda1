"""SIGINT stops `simlab compare` and `simlab sweep` within seconds, even as a background job, and keeps finished runs.

A non-interactive shell starts `cmd &` with SIGINT ignored and Python keeps it
ignored, so these tests start the real command the same way (SIGINT set to
SIG_IGN before exec), wait until the quick runs are stored and the slow ones
are in flight on the process pool, send SIGINT to the command alone, and
check it stops well before a slow run could finish, says what it kept, exits
130 and leaves no worker behind. About 15 s for both.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_experiment_cli import SMALL

ROOT = Path(__file__).resolve().parent.parent
QUICK = 4  # runs of the quick point (0.1 s each); a slow run simulates 1.8 M requests (~10 s)
SLOW = {"duration": "60m", "traffic.rps": 500, "fleet.instances": 30}
STOP_WITHIN_S = 5.0


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ignore_sigint() -> None:  # as a non-interactive shell starts a background job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def command(kind: str, tmp_path: Path) -> list[str]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL)
    common = ["--runs", str(QUICK), "--engine", "request", "--executor", "local", "--quiet", "--out", str(tmp_path / "out")]
    if kind == "compare":
        variants = tmp_path / "variants.yaml"
        sets = ", ".join(f"{k}: {v}" for k, v in SLOW.items())
        variants.write_text(f"variants:\n  - {{name: quick, set: {{}}}}\n  - {{name: slow, set: {{{sets}}}}}\n")
        return ["compare", str(scenario), "--variants", str(variants), *common]
    return ["sweep", str(scenario), "--param", "duration=3m,60m", "--param", "traffic.rps=500",
            "--param", "fleet.instances=30", *common]


@pytest.mark.parametrize("kind", ["compare", "sweep"])
def test_sigint_stops_a_background_experiment_within_seconds_and_keeps_finished_runs(kind, tmp_path):
    store = tmp_path / "out" / "store"
    proc = subprocess.Popen([sys.executable, "-m", "simlab", *command(kind, tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(store.rglob("run-*.json"))) < QUICK and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert len(list(store.rglob("run-*.json"))) == QUICK, "the quick runs should be stored by now"
        time.sleep(0.5)  # the slow runs are on the workers now
        workers = descendants(proc.pid)
        assert workers, "the process pool should be running"
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"simlab {kind} did not stop within 30 s of SIGINT")
        stopped_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert stopped_s < STOP_WITHIN_S, f"stopped {stopped_s:.1f}s after SIGINT"
    assert proc.returncode == 130, err
    assert f"{QUICK} of {2 * QUICK} runs had finished" in err, err
    assert f"kept in {store}, and the same command resumes from them" in err, err
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)], "worker processes were left behind"
    assert "Traceback" not in err
