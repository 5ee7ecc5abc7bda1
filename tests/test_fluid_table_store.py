"""Station tables on disk (simlab/engines/fluid/table_store.py): a fresh process reads what an earlier one built,
with the same numbers; a damaged file is built again; `off` writes nothing; a changed engine reads nothing old;
the directory stays bounded.

Runs go in subprocesses: a process keeps its tables in memory, so only a new one reads the directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from simlab.engines.fluid import table_store
from simlab.engines.fluid.station import FIELDS

ROOT = Path(__file__).resolve().parents[1]
RUN = """
import json
from simlab.scenario import validate_scenario
from simlab.simulation import simulate
s = validate_scenario({"name": "tables", "duration": "4m",
    "fleet": {"instances": 6, "workers": 4, "service_time": {"dist": "lognormal", "mean": "40ms", "p99": "200ms"},
              "startup": "10s"},
    "traffic": {"rps": 400, "timeout": "2s"}, "release": {"at": "1m", "defects": [{"kind": "latency", "add": "10ms"}]},
    "strategy": {"kind": "canary", "steps": [{"weight": 20, "bake": "1m"}, {"weight": 100}]},
    "failures": [{"kind": "instance_crash", "mtbf": "2m", "restart": "10s"}]})
r = simulate(s, seed=4, engine="fluid")
print(json.dumps({"summary": r.summary.to_dict(), "timeline": r.timeline.to_json()}, sort_keys=True, default=str))
"""


def run_in(directory: str) -> str:
    env = {**os.environ, table_store.ENV: directory}
    done = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout


def test_a_fresh_process_reads_the_tables_an_earlier_one_built_with_the_same_numbers(tmp_path):
    off = run_in("off")
    assert json.loads(off)["summary"]["requests"] > 50_000
    cold = run_in(str(tmp_path))
    tables = sorted(tmp_path.glob("*.npy"))
    assert tables and not list(tmp_path.glob(".*.tmp"))  # written whole, nothing half-written left
    stamps = {p: p.stat().st_mtime_ns for p in tables}
    os.utime(tables[0], ns=(1, 1))  # long unused: reading it marks it used again
    warm = run_in(str(tmp_path))
    assert cold == warm == off
    assert sorted(tmp_path.glob("*.npy")) == tables  # read, not built again
    assert tables[0].stat().st_mtime_ns > 1 and all(p.stat().st_mtime_ns >= stamps[p] for p in tables[1:])


def test_a_damaged_table_is_built_again_and_off_writes_nothing(tmp_path):
    good = run_in(str(tmp_path))
    tables = sorted(tmp_path.glob("*.npy"))
    tables[0].write_bytes(b"\\x93NUMPY not a table")
    np.save(tables[1], np.zeros((3, 4)))  # readable, but not a table's shape
    assert run_in(str(tmp_path)) == good
    assert np.load(tables[0]).shape == np.load(tables[1]).shape == (len(FIELDS), np.load(tables[2]).shape[1])
    run_in("off")
    assert not (ROOT / "off").exists()  # "off" is no directory name (it would be made beside the run)


def test_tables_are_named_by_their_key_and_the_engines_code(monkeypatch, tmp_path):
    key = (8.0, 64.0, 25.0, 1.0, 1.0, 2.0, 6.0, 1, None, None)
    a = table_store._path(tmp_path, key)
    assert table_store._path(tmp_path, key) == a != table_store._path(tmp_path, key[:-1] + ("round_robin",))
    monkeypatch.setattr(table_store, "_version", "another-engine")
    assert table_store._path(tmp_path, key) != a


def test_the_directory_keeps_at_most_its_limit_dropping_the_least_recently_used(monkeypatch, tmp_path):
    monkeypatch.setenv(table_store.ENV, str(tmp_path))
    monkeypatch.setattr(table_store, "MAX_FILES", 10)
    row = {f: np.full(4, float(i)) for i, f in enumerate(FIELDS)}
    for i in range(10):
        table_store.save((float(i),), FIELDS, row)
    first = table_store._path(tmp_path, (0.0,))
    os.utime(first, ns=(1, 1))
    assert table_store.load((0.0,), FIELDS)["B"].tolist() == [1.0] * 4  # used: now the most recent
    os.utime(table_store._path(tmp_path, (1.0,)), ns=(2, 2))
    table_store.save((10.0,), FIELDS, row)  # past the limit: the oldest 2 go (kept down to 90%)
    kept = set(tmp_path.glob("*.npy"))
    assert len(kept) == 9 and first in kept and table_store._path(tmp_path, (1.0,)) not in kept


def test_a_table_that_cannot_be_written_whole_leaves_nothing_behind(monkeypatch, tmp_path):
    """A full disk mid-write: the run goes on with the table in memory, and no partial file is left."""
    monkeypatch.setenv(table_store.ENV, str(tmp_path))

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(table_store.np, "save", full)
    row = {f: np.zeros(4) for f in FIELDS}
    table_store.save((1.0,), FIELDS, row)  # no exception
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(table_store.ENV, str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.undo()
    monkeypatch.setenv(table_store.ENV, str(tmp_path / "a-file"))
    table_store.save((1.0,), FIELDS, row)  # the directory cannot be made: ignored too
    assert table_store.load((1.0,), FIELDS) is None
