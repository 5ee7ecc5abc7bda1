"""Finding what a state directory started without its state file: the processes marked with the directory.

Every process a staging starts (HAProxy, Prometheus, instances, hosts, Locust
and its workers) carries `SIMLAB_STAGING_OWNER=<state dir>` in its environment
(procs.spawn). When `state.json` is damaged or lost, `down` finds them by that
mark in /proc (only the user's own processes are readable there, so only those
are found) and stops them: Locust first, then the service, then HAProxy and
Prometheus, as `down` does from a good state file.
"""
from __future__ import annotations

import os
from pathlib import Path

from simlab.errors import StagingError
from simlab.staging import procs
from simlab.staging.procs import OWNER_ENV, ProcRecord
from simlab.staging.state import STATE_FILE

ORDER = ("locust", "instance", "host", "other", "haproxy", "prometheus")
"""The order marked processes are stopped in: load first, the balancer and metrics last."""


def _ancestors() -> set[int]:
    """This process and its parents: never stopped, whatever their environment says."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
    return pids


def _role(argv: list[str]) -> str:
    if not argv:
        return "other"
    program = os.path.basename(argv[0])
    if program in ("haproxy", "prometheus"):
        return program
    if "simlab.staging.instance_main" in argv:
        return "host" if "--host-socket" in argv else "instance"
    if any(os.path.basename(a) == "locust" for a in argv[:2]):
        return "locust"
    return "other"


def marked(state_dir: Path) -> list[ProcRecord]:
    """The living processes whose environment names `state_dir` as their owner, in the order to stop them."""
    mark = f"{OWNER_ENV}={Path(state_dir).resolve()}".encode()
    skip = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:  # gone meanwhile, or another user's
            continue
        started = procs.start_ticks(pid)
        if started is None:
            continue
        role = _role(argv)
        found.append(ProcRecord(name=f"{role} (pid {pid})", role=role, pid=pid, port=None, started=started,
                                argv=argv))
    return sorted(found, key=lambda r: (ORDER.index(r.role), r.pid))


def stop_marked(state_dir: Path, grace: float) -> list[str]:
    """Stop every process `marked` with `state_dir` (instances drain up to `grace` s); return their names."""
    found = marked(state_dir)
    for roles, wait in ((("locust",), 5.0), (("instance", "host", "other"), grace), (("haproxy", "prometheus"), 5.0)):
        procs.stop_many([r for r in found if r.role in roles], grace=wait)
    return [r.name for r in found]


DAMAGED_SUFFIX = ".damaged"


def down_damaged(state_dir: Path, grace: float = 10.0) -> tuple[list[str], Path | None]:
    """`down` when `state.json` cannot be read: stop what is marked with `state_dir`, and set the file aside.

    Returns the processes stopped and where the damaged file was moved (None if there was none).
    StagingError if one of them outlives SIGKILL.
    """
    state_dir = Path(state_dir).resolve()
    names = stop_marked(state_dir, grace)
    left = marked(state_dir)
    if left:
        raise StagingError(f"could not stop: {', '.join(r.name for r in left)}")
    for name in ("haproxy.sock", "targets.json", "offered_rps", "dependency.json"):
        (state_dir / name).unlink(missing_ok=True)
    for sock in (state_dir / "hosts").glob("*.sock"):
        sock.unlink(missing_ok=True)
    state = state_dir / STATE_FILE
    if not state.exists():
        return names, None
    kept = state.with_name(STATE_FILE + DAMAGED_SUFFIX)
    os.replace(state, kept)
    return names, kept
