"""`--executor dask` against a real multi-process cluster: a `dask scheduler` and `dask worker` processes on
loopback, started and stopped by the test. Same runs as the local pool, nothing left running."""
from __future__ import annotations

import socket

import pandas as pd
import psutil

from simlab.experiment import replicate
from tests.helpers.dask_cluster import dask_cluster
from tests.helpers.scenarios import scenario

TINY = {"duration": "3m", "traffic.rps": 20, "release.at": "30s", "analysis.interval": "15s",
        "analysis.min_requests": 5, "strategy.steps": [{"weight": 34, "bake": "40s"}, {"weight": 100}],
        "release.defects": [{"kind": "error_rate", "rate": {"dist": "uniform", "low": 0.1, "high": 0.4}}],
        "release.bad_probability": 0.5}


def _dask_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if any("dask" in part for part in (p.info["cmdline"] or [])[:3]) and "pytest" not in " ".join(p.info["cmdline"] or [])]


def test_a_scheduler_and_worker_processes_give_the_local_pools_runs(tmp_path):
    s = scenario("canary", **TINY)
    before = {p.pid for p in _dask_processes()}
    with dask_cluster(tmp_path, workers=2) as address:
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        assert host == "127.0.0.1"
        request = replicate(s, runs=6, seed=5, engine="request", executor="dask", scheduler=address)
        fluid = replicate(s, runs=6, seed=5, engine="fluid", executor="dask", scheduler=address)
    pd.testing.assert_frame_equal(request, replicate(s, runs=6, seed=5, engine="request", executor="local"))
    pd.testing.assert_frame_equal(fluid, replicate(s, runs=6, seed=5, engine="fluid", executor="local"))
    assert set(request["bad_release"]) == {False, True}
    left = [p for p in _dask_processes() if p.pid not in before]
    assert not left, [p.info["cmdline"] for p in left]
    with socket.socket() as probe:  # no one listens on the scheduler's port (TIME_WAIT aside)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(port)))
