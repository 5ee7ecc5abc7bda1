"""Station tables on disk, shared by processes: a fresh `simlab run` reads the tables earlier runs built.

A table (`station.stationary` over the arrival rate, 8 fields x 2,048 points) is a pure function of its kind's
key (station_tables.Stations.kind) and of the code that computes it. Building one costs milliseconds to a second
(least-outstanding's dispatch chain, round robin's simulated wait law), which a run in a fresh process paid for
every kind it met: 0.46 s of the first 0.51 s run of benchmark (a)'s 30-instance case. A file is named by a hash
of the key's repr and of the code: the bytes of the sources a table depends on, and Python's, numpy's and
scipy's versions, so a changed engine never reads a table an older one wrote. Files are written whole (a
temporary file, then a rename), so processes may share the directory; one that cannot be read is removed and
built again. At most MAX_FILES are kept (about 130 kB each); past that the least recently used go.

`SIMLAB_CACHE_DIR` names the directory (default `$XDG_CACHE_HOME/simlab/station-tables`, else
`~/.cache/simlab/station-tables`); `off` keeps tables in memory only. Any error reading or writing it is
ignored: a table is then built as before.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ENV = "SIMLAB_CACHE_DIR"
MAX_FILES = 1000
SOURCES = ("engines/fluid", "engines/effects.py", "dists.py", "queueing.py")  # under simlab/: what a table reads

_version: str | None = None


def directory() -> Path | None:
    """The cache directory, or None when it is turned off."""
    given = os.environ.get(ENV)
    if given is not None:
        return None if given.strip().lower() in ("", "off", "0", "none") else Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "simlab" / "station-tables"


def code_version() -> str:
    """A hash of the sources tables depend on and of the numeric libraries' versions (computed once)."""
    global _version
    if _version is None:
        import scipy

        root = Path(__file__).resolve().parents[2]
        h = hashlib.sha256(f"{sys.version_info[:3]} {np.__version__} {scipy.__version__}".encode())
        for source in SOURCES:
            path = root / source
            for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
                h.update(f.relative_to(root).as_posix().encode())
                h.update(f.read_bytes())
        _version = h.hexdigest()[:16]
    return _version


def _path(folder: Path, key: tuple) -> Path:
    digest = hashlib.sha256(f"{code_version()} {key!r}".encode()).hexdigest()[:32]
    return folder / f"{digest}.npy"


def load(key: tuple, fields: tuple[str, ...]) -> dict | None:
    """The table stored for `key`, or None."""
    folder = directory()
    if folder is None:
        return None
    path = _path(folder, key)
    try:
        stacked = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a damaged or foreign file: built again
        _remove(path)
        return None
    if stacked.shape[0] != len(fields) or stacked.dtype != np.float64:
        _remove(path)
        return None
    try:
        os.utime(path)  # most recently used
    except OSError:
        pass
    return {f: stacked[i].copy() for i, f in enumerate(fields)}


def save(key: tuple, fields: tuple[str, ...], row: dict) -> None:
    """Store a table built for `key`; the oldest go past MAX_FILES."""
    folder = directory()
    if folder is None:
        return
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            np.save(out, np.stack([np.asarray(row[f], dtype=np.float64) for f in fields]), allow_pickle=False)
        os.replace(tmp, _path(folder, key))
        tmp = None
        _prune(folder)
    except OSError:  # a full disk, a read-only home: the table stays in memory only
        return
    finally:
        if tmp is not None:  # written in part: never left behind
            _remove(Path(tmp))


def _prune(folder: Path) -> None:
    files = list(folder.glob("*.npy"))
    if len(files) <= MAX_FILES:
        return
    by_use = sorted(files, key=lambda p: _mtime(p))
    for path in by_use[: len(files) - int(MAX_FILES * 0.9)]:
        _remove(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
