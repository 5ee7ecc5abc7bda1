"""Starting, finding and stopping the processes of a staging fleet, and the loopback ports they use.

Every process is identified by PID *and* its kernel start time, so a PID
reused by an unrelated process after a crash is never signalled.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from simlab.errors import StagingError

LOOPBACK = "127.0.0.1"
OWNER_ENV = "SIMLAB_STAGING_OWNER"
"""Set in the environment of every process a staging starts to its state directory, so `down` finds them
even when the state file is lost (see sweep.py)."""
LISTEN_FD_ENV = "SIMLAB_LISTEN_FD"
"""The descriptor of the listening socket an instance is handed (see claim_port)."""


@dataclass(kw_only=True)
class ProcRecord:
    """One process simlab started: enough to find it again from another simlab process."""

    name: str
    role: str  # haproxy, prometheus, instance, locust
    pid: int
    port: int | None
    started: int  # kernel start time (clock ticks since boot), guards against PID reuse
    argv: list[str] = field(default_factory=list)
    version: str | None = None  # old or new, for instances
    log: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def start_ticks(pid: int) -> int | None:
    """The kernel start time of `pid`, or None if there is no such (living) process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # a zombie is dead for our purposes
        return None
    return int(fields[19])


def is_running(record: ProcRecord) -> bool:
    return start_ticks(record.pid) == record.started


def rss_bytes(pid: int) -> int | None:
    """Resident memory of `pid`, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nothing listens on now (not one this process handed out before)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise StagingError("no free loopback port found after 50 tries")


RESERVED_RANGE = (20000, 32767)
"""Ports kept for instances not started yet: below Linux's ephemeral range (32768-60999), so no
outgoing connection (Locust's, HAProxy's, Prometheus's) can take one as its source port meanwhile."""


def reserve_port() -> int:
    """A free loopback port outside the ephemeral range, to hold for an instance that starts later."""
    lo, hi = RESERVED_RANGE
    start = lo + (os.getpid() * 7919 + len(_handed_out) * 104729) % (hi - lo)
    for i in range(hi - lo):
        port = lo + (start - lo + i) % (hi - lo)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StagingError(f"no free loopback port in {lo}-{hi}")


def claim_port(port: int) -> socket.socket | None:
    """A socket listening on loopback `port`, to hand to the instance that will serve there; None if it is taken.

    Held from here until the instance exits, the port cannot be taken by another process meanwhile
    (a listening socket without SO_REUSEPORT keeps every other bind off it). SO_REUSEADDR lets an
    instance restarted after a crash take back its port while old connections sit in TIME_WAIT.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOOPBACK, port))
        s.listen(1024)
    except OSError:
        s.close()
        return None
    _handed_out.add(port)
    return s


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


_children: dict[int, subprocess.Popen] = {}


def spawn(name: str, role: str, argv: list[str], log: Path, port: int | None = None,
          version: str | None = None, env: dict | None = None, cwd: Path | None = None, *,
          owner: Path | None = None, listen: socket.socket | None = None) -> ProcRecord:
    """Start `argv` in its own session (a Ctrl-C on simlab's terminal does not reach it), output to `log`.

    `owner`: the state directory it belongs to, marked in its environment (OWNER_ENV). `listen`: a
    socket from claim_port, inherited by the process (its descriptor in LISTEN_FD_ENV). Files it
    creates are private to the user (umask 077), as its log is.
    """
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ if env is None else env)
    if owner is not None:
        env[OWNER_ENV] = str(owner)
    fds: tuple[int, ...] = ()
    if listen is not None:
        fds = (listen.fileno(),)
        env[LISTEN_FD_ENV] = str(listen.fileno())
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=cwd, pass_fds=fds, umask=0o077)
        except FileNotFoundError:
            raise StagingError(f"cannot start {name}: {argv[0]} not found (install it, e.g. apt-get install {argv[0]})") from None
    _children[proc.pid] = proc
    ticks = start_ticks(proc.pid)
    if ticks is None:  # exited already; keep a record that never matches a living process
        ticks = -1
    return ProcRecord(name=name, role=role, pid=proc.pid, port=port, started=ticks, argv=list(argv), version=version,
                      log=str(log))


def exit_code(record: ProcRecord) -> int | None:
    """The exit status of a child of this process that has ended, else None."""
    proc = _children.get(record.pid)
    return proc.poll() if proc is not None else None


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        try:
            proc.wait(timeout=0)
        except subprocess.TimeoutExpired:
            pass
        if proc.returncode is not None:
            _children.pop(pid, None)


def stop(record: ProcRecord, grace: float = 5.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; only if it is still the process we started."""
    if not is_running(record):
        _reap(record.pid)
        return
    try:
        os.killpg(record.pid, signal.SIGTERM)  # its own session: children (e.g. Locust workers) go too
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not is_running(record):
            return
        time.sleep(0.02)
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _wait_gone(record, poll=0.02)


def kill(record: ProcRecord) -> None:
    """SIGKILL at once (a crash, as the supervisor's memory limit does it)."""
    if is_running(record):
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_gone(record, poll=0.01)


def _wait_gone(record: ProcRecord, poll: float, seconds: float = 2.0) -> None:
    """After a SIGKILL: reap the process and wait (bounded) until it is really gone."""
    deadline = time.monotonic() + seconds
    while is_running(record) and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(poll)
    _reap(record.pid)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """Status and body of a GET (status 0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_until(check, timeout: float, what: str, record: ProcRecord | None = None, interval: float = 0.05) -> float:
    """Poll `check()` until true; return seconds waited; StagingError on timeout or if `record` died."""
    t0 = time.monotonic()
    while True:
        if check():
            return time.monotonic() - t0
        if record is not None and not is_running(record):
            tail = ""
            if record.log and Path(record.log).exists():
                tail = "\n" + "\n".join(Path(record.log).read_text(errors="replace").splitlines()[-10:])
            raise StagingError(f"{record.name} exited while waiting for {what}{tail}")
        if time.monotonic() - t0 > timeout:
            raise StagingError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def stop_many(records: list[ProcRecord], grace: float = 5.0) -> None:
    """Stop several processes at once: SIGTERM to all, then wait, then SIGKILL the stragglers."""
    for record in records:
        if is_running(record):
            try:
                os.killpg(record.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_running(r) for r in records):
        for r in records:
            _reap(r.pid)
        time.sleep(0.02)
    for record in records:
        stop(record, grace=0.0)
