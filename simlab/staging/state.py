"""The state file of a staging, `state.json`: every process it runs and what `up` decided.

Every process started is written here (PID, kernel start time, port) before
anything waits on it, so a simlab that crashed leaves enough behind for the
next `up` or `down` to find and stop what is still running. The layout is
flat JSON (`target_ctl` reads it without importing the supervisor).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from simlab.staging.members import Allocation, Member
from simlab.staging.procs import ProcRecord

STATE_FILE = "state.json"


@dataclass(frozen=True)
class StagingInfo:
    """What `up` decided, fixed for the staging's life."""

    scenario: str  # its name
    created: float
    port: int  # HAProxy's frontend: where users' traffic goes
    stats_port: int  # HAProxy's stats and exporter
    prometheus_port: int
    per_process: int = 1  # instances of a version per process (see host.py)
    cleaned: tuple[str, ...] = ()  # what a crashed simlab had left running, stopped by `up`
    startup_s: float | None = None  # how long `up` took


@dataclass
class SavedState:
    """Everything `state.json` holds."""

    info: StagingInfo
    alloc: Allocation
    services: dict[str, ProcRecord]  # haproxy, prometheus
    hosts: dict[str, ProcRecord]  # instance hosts, when per_process > 1
    members: dict[str, Member]

    def write(self, path: Path) -> None:
        data = {
            **dataclasses.asdict(self.info), **dataclasses.asdict(self.alloc),
            "owner_pid": os.getpid(),
            "services": {k: r.to_json() for k, r in self.services.items()},
            "hosts": {k: r.to_json() for k, r in self.hosts.items()},
            "instances": {k: m.to_json() for k, m in self.members.items()},
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> "SavedState":
        """The state in `path`; ValueError, TypeError or KeyError if it is not a state file."""
        data = json.loads(path.read_text())
        return cls(
            info=StagingInfo(**_known(StagingInfo, data), cleaned=tuple(data.get("cleaned", ()))),
            alloc=Allocation(**_known(Allocation, data)),
            services={k: ProcRecord(**v) for k, v in data.get("services", {}).items()},
            hosts={k: ProcRecord(**v) for k, v in data.get("hosts", {}).items()},
            members={k: Member.from_json(v) for k, v in data.get("instances", {}).items()},
        )


def _known(kind: type, data: dict) -> dict:
    """The entries of `data` that are fields of the dataclass `kind` (tuples made by the caller)."""
    names = {f.name for f in dataclasses.fields(kind)} - {"cleaned"}
    return {k: v for k, v in data.items() if k in names}
