"""Where an instance of the staging runs: its own process, or a host process serving several.

`Member` is an instance as the supervisor tracks it between ticks. `Placement`
answers the questions whose answer depends on where it runs (is it alive, what
did it exit with, is it over its memory limit) and carries out what does
(start, drain, kill). With `per_process` 1 every instance is a process of its
own; above that, instances of a version share host processes (see host.py),
each driven over a Unix control socket by a `HostClient`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from simlab.errors import StagingError
from simlab.staging import procs
from simlab.staging.procs import ProcRecord

CRASH_LOOP_BACKOFF = (10.0, 300.0)
"""A crash-looping instance is restarted after 10 s, doubling to 300 s (as the simulator does);
one that crashed after start-up, or was killed at its memory limit, is restarted at once."""

HOST_STATUS_TTL = 0.2
"""Seconds a host's answer to `status` is reused: one call per tick's checks, not one per instance."""

PORT_TRIES = 20
"""Spare ports tried in turn when others listen on them, before giving up."""

SAVED = ("stopping", "zone", "held", "restart_at", "host")  # kept in the state file beside the process record


@dataclass
class Member:
    """An instance as the supervisor tracks it between ticks."""

    record: ProcRecord
    stopping: bool = False
    restart_at: float | None = None
    memory_limit: int | None = None
    crashes: int = 0
    backoff: float = CRASH_LOOP_BACKOFF[0]
    spawned_at: float = field(default_factory=time.time)
    zone: int = 0
    held: bool = False  # down by a fault (zone outage, chaos kill): not restarted until released
    host: str | None = None  # the host process serving it, when instances share processes (see host.py)

    @property
    def version(self) -> str:
        return self.record.version

    def to_json(self) -> dict:
        return {**self.record.to_json(), **{k: getattr(self, k) for k in SAVED}}

    @classmethod
    def from_json(cls, row: dict) -> "Member":
        record = {k: v for k, v in row.items() if k not in SAVED}
        return cls(ProcRecord(**record), **{k: row[k] for k in SAVED if k in row})


@dataclass
class Allocation:
    """Names, zones, hosts and ports handed out so far: what changes as instances come and go."""

    next_index: dict[str, int] = field(default_factory=lambda: {"old": 0, "new": 0, "baseline": 0})
    next_zone: int = 0  # zones round-robin over every instance ever started
    next_host: int = 0
    spare_ports: list[int] = field(default_factory=list)  # ports Prometheus scrapes already (see take_port)
    zones_down: list[int] = field(default_factory=list)


class HostClient:
    """Commands to one host over its Unix control socket: one JSON line each way."""

    def __init__(self, socket_path: str | Path, timeout: float = 5.0):
        self.path = str(socket_path)
        self.timeout = timeout

    def call(self, op: str, *, listen: socket.socket | None = None, **args) -> dict:
        """Send `op` (with the descriptor of `listen`, for a `start`) and return the host's answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.path)
                line = json.dumps({"op": op, **args}).encode() + b"\n"
                if listen is not None:
                    socket.send_fds(s, [line], [listen.fileno()])
                else:
                    s.sendall(line)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            raise StagingError(f"instance host at {self.path} did not answer {op!r}: {exc}") from None
        reply = json.loads(data or b"{}")
        if not reply.get("ok"):
            raise StagingError(f"instance host at {self.path} refused {op!r}: {reply.get('error', 'no answer')}")
        return reply

    def status(self) -> dict[str, dict]:
        return self.call("status")["instances"]


class Placement:
    """Where the instances in `members` run, and the host processes in `hosts` that serve some of them.

    Shares both mappings and the allocation with the supervisor. `service_argv(*args)`
    is the service's command line; `save()` records a started host before anything
    waits on it.
    """

    def __init__(self, *, dir: Path, per_process: int, members: dict[str, Member], hosts: dict[str, ProcRecord],
                 alloc: Allocation, service_argv: Callable[..., list[str]], save: Callable[[], None],
                 env: dict[str, str] | None = None):
        self.dir = dir
        self.env = {**os.environ, **(env or {})}  # the service's environment (the staging's identity token)
        self.per_process = per_process
        self.members = members
        self.hosts = hosts
        self.alloc = alloc
        self.service_argv = service_argv
        self.save = save
        self._status_cache: dict[str, tuple[float, dict]] = {}  # host -> (when, what it said)

    def take_port(self, at_once: int) -> tuple[int, socket.socket, list[int]]:
        """A port Prometheus already scrapes, claimed for the next instance; and the spare ports found taken.

        Prometheus applies changes to a file_sd list at most every 5 s, so an instance on a port
        it has not seen yet would go unscraped for up to 5 s: the canary's first analyses would
        find no requests. Spare ports for `at_once` instances starting together are listed ahead
        (as targets that are down until used), so a new instance is scraped from the next interval.
        Nothing holds a spare port until it is taken: one another process listens on by then is
        passed over (and reported), and the port taken is held (procs.claim_port) until the
        instance serves on it.
        """
        spares = self.alloc.spare_ports
        taken: list[int] = []
        while len(taken) < PORT_TRIES:
            while len(spares) < at_once + 1:
                spares.append(procs.reserve_port())
            port = spares.pop(0)
            listen = procs.claim_port(port)
            if listen is not None:
                return port, listen, taken
            taken.append(port)
        raise StagingError(f"ports {', '.join(map(str, taken))} were all taken by other processes: is something "
                           f"grabbing loopback ports in {procs.RESERVED_RANGE[0]}-{procs.RESERVED_RANGE[1]}?")

    def reclaim(self, name: str) -> tuple[socket.socket, list[int]]:
        """The port of `name` claimed again for its restart, and the ports found taken.

        If another process took the port while the instance was down, it moves to a spare one
        (its record follows); the caller tells HAProxy and Prometheus.
        """
        m = self.members[name]
        listen = procs.claim_port(m.record.port)
        if listen is not None:
            return listen, []
        port, listen, taken = self.take_port(at_once=1)
        argv = list(m.record.argv)
        argv[argv.index("--port") + 1] = str(port)
        moved_from = m.record.port
        m.record = dataclasses.replace(m.record, port=port, argv=argv)
        return listen, [moved_from, *taken]

    def targets(self) -> dict[str, tuple[int, str]]:
        """What Prometheus scrapes: every instance, and the spare ports (see take_port)."""
        targets = {n: (m.record.port, m.record.version) for n, m in self.members.items()}
        targets.update({f"spare-{port}": (port, "none") for port in self.alloc.spare_ports})
        return targets

    def next_zone(self, zones: int) -> int:
        """Zones round-robin over every instance ever started, as the simulator places them."""
        zone = self.alloc.next_zone % zones
        self.alloc.next_zone += 1
        return zone

    def socket_of(self, host: str) -> Path:
        return self.dir / "hosts" / f"{host}.sock"

    def _client(self, host: str) -> HostClient:
        return HostClient(self.socket_of(host))

    # -- acting ----------------------------------------------------------------
    def spawn(self, name: str, version: str, port: int, argv: list[str],
              listen: socket.socket) -> tuple[ProcRecord, str | None]:
        """Start instance `name` on the claimed socket `listen` (closed here: the instance holds it now).

        It runs in its own process, or in a host of its version with room (started if none).
        """
        try:
            if self.per_process <= 1:
                return procs.spawn(name, "instance", argv, self.dir / "logs" / f"{name}.log", port, version,
                                   env=self.env, owner=self.dir, listen=listen), None
            epoch = float(argv[argv.index("--release-epoch") + 1])
            host = self._host_with_room(version, name) or self._start_host(version)
            self._client(host).call("start", listen=listen, name=name, version=version, port=port,
                                    release_epoch=epoch)
        finally:
            listen.close()
        self._status_cache.pop(host, None)
        h = self.hosts[host]
        record = ProcRecord(name=name, role="instance", pid=h.pid, port=port, started=h.started, argv=list(argv),
                            version=version, log=h.log)
        return record, host

    def _host_with_room(self, version: str, name: str) -> str | None:
        load = {h: 0 for h, r in self.hosts.items() if r.version == version and procs.is_running(r)}
        for n, m in self.members.items():
            if m.host in load and n != name and not m.stopping:
                load[m.host] += 1
        return next((h for h, used in sorted(load.items()) if used < self.per_process), None)

    def _start_host(self, version: str) -> str:
        host = f"host-{version}-{self.alloc.next_host}"
        self.alloc.next_host += 1
        sock = self.socket_of(host)
        sock.parent.mkdir(parents=True, exist_ok=True)
        sock.unlink(missing_ok=True)
        argv = self.service_argv("--host-socket", str(sock), "--per-process", str(self.per_process))
        self.hosts[host] = procs.spawn(host, "host", argv, self.dir / "logs" / f"{host}.log", None, version,
                                       env=self.env, owner=self.dir)
        self.save()
        procs.wait_until(sock.exists, 10.0, f"instance host {host}'s control socket", self.hosts[host])
        return host

    def terminate(self, name: str) -> None:
        """Tell instance `name` to finish its in-flight requests and exit (SIGTERM, or its host's `stop`)."""
        m = self.members[name]
        if m.host is not None:
            if self.alive(name):
                self._client(m.host).call("stop", name=name)
        elif procs.is_running(m.record):
            try:
                os.kill(m.record.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self, name: str) -> None:
        """SIGKILL instance `name`, or abort it in its host: its in-flight requests fail."""
        m = self.members[name]
        if m.host is None:
            procs.kill(m.record)
        elif self.alive(name):
            self._client(m.host).call("kill", name=name)
            self._status_cache.pop(m.host, None)

    def stop_all(self, grace: float) -> None:
        """Stop every instance process and host (SIGTERM: they drain, up to `grace` seconds)."""
        own = [m.record for m in self.members.values() if m.host is None]
        procs.stop_many(own + list(self.hosts.values()), grace=grace)

    def forget_dead_hosts(self) -> list[str]:
        """Hosts whose process is gone (and every instance in it): their instances start in a new one."""
        dead = [h for h, r in self.hosts.items() if not procs.is_running(r)]
        for h in dead:
            self.socket_of(h).unlink(missing_ok=True)
            del self.hosts[h]
            self._status_cache.pop(h, None)
        return dead

    def forget_hosts(self) -> None:
        for host in self.hosts:
            self.socket_of(host).unlink(missing_ok=True)
        self.hosts.clear()

    def retire_idle(self) -> list[str]:
        """Stop hosts that serve no instance; return their names."""
        busy = {m.host for m in self.members.values()}
        idle = [h for h in self.hosts if h not in busy]
        procs.stop_many([self.hosts[h] for h in idle], grace=5.0)
        for h in idle:
            self.socket_of(h).unlink(missing_ok=True)
            del self.hosts[h]
        return idle

    # -- observing ---------------------------------------------------------------
    def forget_status(self) -> None:
        """Ask hosts afresh from now on (at the start of a tick)."""
        self._status_cache.clear()

    def alive(self, name: str) -> bool:
        """Whether instance `name` runs (its process, or its place in its host)."""
        m = self.members[name]
        if m.host is None:
            return procs.is_running(m.record)
        return self._host_status(m.host).get(name, {}).get("state") == "running"

    def exit_code(self, name: str) -> int | None:
        m = self.members[name]
        if m.host is None:
            return procs.exit_code(m.record)
        return self._host_status(m.host).get(name, {}).get("exit_code")

    def over_memory_limit(self, name: str, now: float, startup: float) -> int | None:
        """The bytes that put `name` over its memory limit, or None (RSS per process; leak per hosted one)."""
        # Here, not at the top: behaviour loads numpy, and target_ctl reads Members every tick without it.
        from simlab.staging.behaviour import LEAK_BYTES_AT_OOM

        m = self.members[name]
        if m.host is not None:
            leak = self._host_status(m.host).get(name, {}).get("leak_bytes", 0)
            return leak if leak > LEAK_BYTES_AT_OOM else None
        if m.memory_limit is None and now - m.spawned_at > startup + 1.0:
            # The limit a leak runs into: what the instance held once up, plus the leak at oom_after.
            m.memory_limit = (procs.rss_bytes(m.record.pid) or 0) + LEAK_BYTES_AT_OOM
        elif m.memory_limit is not None:
            rss = procs.rss_bytes(m.record.pid) or 0
            if rss > m.memory_limit:
                return rss
        return None

    def _host_status(self, host: str) -> dict[str, dict]:
        """What a host says of its instances (cached for HOST_STATUS_TTL)."""
        hit = self._status_cache.get(host)
        if hit is not None and time.monotonic() - hit[0] < HOST_STATUS_TTL:
            return hit[1]
        record = self.hosts.get(host)
        if record is None or not procs.is_running(record):
            status = {}  # the host is gone, and every instance it served with it
        else:
            try:
                status = self._client(host).status()
            except StagingError:
                # A busy host that did not answer in time has not lost its instances: keep what it last said.
                return hit[1] if hit is not None else {n: {"state": "running", "exit_code": None, "leak_bytes": 0}
                                                       for n, m in self.members.items() if m.host == host}
        self._status_cache[host] = (time.monotonic(), status)
        return status
