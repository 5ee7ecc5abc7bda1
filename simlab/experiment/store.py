"""Finished runs kept on disk, one JSON file per run, so an interrupted or extended experiment resumes.

Layout: out/store/<scenario fingerprint>/<point fingerprint>/<engine>/seed-<seed>/run-<i>.json.
A compare and a sweep both keep their runs here as each comes back; a second
call finds them and does not simulate them again, and a worker that dies or a
Ctrl-C loses only the runs in flight.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simlab.scenario import Scenario


class Store:
    """One JSON file per run; written atomically so a crash never leaves half a row. No root: keeps nothing."""

    def __init__(self, root: str | Path | None, base: Scenario, engine: str, seed: int):
        self.root = None if root is None else Path(root)
        self.base, self.engine, self.seed = base.fingerprint(), engine, seed

    @property
    def where(self) -> Path | None:
        """The directory finished runs are kept in (None: they are not kept)."""
        return None if self.root is None else self.root / "store"

    def path(self, point: Scenario, run: int) -> Path:
        return self.root / "store" / self.base / point.fingerprint() / self.engine / f"seed-{self.seed}" / f"run-{run}.json"

    def get(self, point: Scenario, run: int) -> dict | None:
        if self.root is None:
            return None
        try:
            return json.loads(self.path(point, run).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, point: Scenario, rows: list[dict], labels: dict[str, Any] | None = None) -> None:
        """Keep `rows` of `point`; `labels` (what the point is: its overrides, its variant) go to params.json."""
        if self.root is None:
            return
        for row in rows:
            path = self.path(point, row["run"])
            path.parent.mkdir(parents=True, exist_ok=True)
            params = path.parent.parent.parent / "params.json"
            if labels is not None and not params.exists():
                params.write_text(json.dumps(labels, sort_keys=True, default=str) + "\n")
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(row))
            os.replace(tmp, path)

    def kept(self) -> str:
        """How an interrupted experiment's message says where its finished runs are."""
        if self.root is None:
            return "none was kept (give an output directory, --out, to keep finished runs and resume)"
        return f"they are kept in {self.where}, and the same command resumes from them"
