"""The state file of a staging, `state.json`: every process it runs and what `up` decided.

Every process started is written here (PID, kernel start time, port) before
anything waits on it, so a simlab that crashed leaves enough behind for the
next `up` or `down` to find and stop what is still running. The file is
replaced atomically and flushed to disk (files.write_private), and checked
against a schema when read: a damaged file is a `StateFileError` naming what is
wrong, never a traceback. The layout is flat JSON (`target_ctl` reads it
without importing the supervisor).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simlab.errors import StagingError
from simlab.staging.files import write_private
from simlab.staging.members import Allocation, Member
from simlab.staging.procs import ProcRecord

STATE_FILE = "state.json"


class StateFileError(StagingError):
    """`state.json` is not a state file (truncated, empty, another shape): bad input, exit code 2."""

    exit_code = 2

    def __init__(self, path: Path, problem: str):
        self.damage = f"{path} is damaged ({problem})"
        super().__init__(f"{self.damage}; `simlab staging down --dir {path.parent}` stops what this directory "
                         "started and sets the file aside")


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
    identity: str | None = None  # the token instances answer health checks with (see haproxy.render_config)


@dataclass
class SavedState:
    """Everything `state.json` holds."""

    info: StagingInfo
    alloc: Allocation
    services: dict[str, ProcRecord]  # haproxy, prometheus
    hosts: dict[str, ProcRecord]  # instance hosts, when per_process > 1
    members: dict[str, Member]
    load: dict[str, ProcRecord] = field(default_factory=dict)  # Locust, while a deploy drives it

    def write(self, path: Path) -> None:
        data = {
            **dataclasses.asdict(self.info), **dataclasses.asdict(self.alloc),
            "owner_pid": os.getpid(),
            "services": {k: r.to_json() for k, r in self.services.items()},
            "hosts": {k: r.to_json() for k, r in self.hosts.items()},
            "instances": {k: m.to_json() for k, m in self.members.items()},
            "load": {k: r.to_json() for k, r in self.load.items()},
        }
        write_private(path, json.dumps(data, indent=1), durable=True)

    @classmethod
    def read(cls, path: Path) -> "SavedState":
        """The state in `path`; StateFileError (one line: what is wrong, and how to clean up) if it is damaged."""
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise StateFileError(path, f"unreadable: {exc}") from None
        if not text.strip():
            raise StateFileError(path, "empty")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateFileError(path, f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise StateFileError(path, f"expected a JSON object, found {type(data).__name__}")
        try:
            saved = _StateFile.model_validate(data)
        except ValidationError as exc:
            raise StateFileError(path, _first_problem(exc)) from None
        return cls(
            info=StagingInfo(**_pick(StagingInfo, saved), cleaned=tuple(saved.cleaned)),
            alloc=Allocation(**_pick(Allocation, saved)),
            services={k: ProcRecord(**r.model_dump()) for k, r in saved.services.items()},
            hosts={k: ProcRecord(**r.model_dump()) for k, r in saved.hosts.items()},
            members={k: Member.from_json(r.model_dump()) for k, r in saved.instances.items()},
            load={k: ProcRecord(**r.model_dump()) for k, r in saved.load.items()},
        )


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    e = errors[0]
    where = ".".join(str(p) for p in e["loc"]) or "top level"
    found = "nothing" if e["type"] == "missing" else repr(e.get("input"))[:60]
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {e['msg'].lower()}, found {found}{more}"


def _pick(kind: type, saved: BaseModel) -> dict:
    """The fields of the dataclass `kind` from the validated file (tuples made by the caller)."""
    names = {f.name for f in dataclasses.fields(kind)} - {"cleaned"}
    return {k: v for k, v in saved.model_dump().items() if k in names}


# -- the schema of state.json ---------------------------------------------------------------
Port = Annotated[int, Field(ge=1, le=65535)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a newer simlab's extra keys: what runs can still be stopped

    name: str
    role: str
    pid: int = Field(ge=1)
    port: Port | None = None
    started: int
    argv: list[str] = []
    version: Literal["old", "new", "baseline"] | None = None
    log: str | None = None


class _Instance(_Record):
    stopping: bool = False
    restart_at: float | None = None
    zone: int = Field(default=0, ge=0)
    held: bool = False
    host: str | None = None


class _Index(BaseModel):
    old: int = Field(default=0, ge=0)
    new: int = Field(default=0, ge=0)
    baseline: int = Field(default=0, ge=0)  # a canary's baseline: instances of the old version (baseline-N)


class _StateFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    scenario: str
    created: float
    port: Port
    stats_port: Port
    prometheus_port: Port
    per_process: int = Field(default=1, ge=1)
    cleaned: list[str] = []
    startup_s: float | None = None
    identity: str | None = None
    next_index: _Index = _Index()
    next_zone: int = Field(default=0, ge=0)
    next_host: int = Field(default=0, ge=0)
    spare_ports: list[Port] = []
    zones_down: list[int] = []
    owner_pid: int | None = None
    services: dict[str, _Record] = {}
    hosts: dict[str, _Record] = {}
    instances: dict[str, _Instance] = {}
    load: dict[str, _Record] = {}
