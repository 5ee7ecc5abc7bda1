"""The local staging fleet in a state directory: HAProxy, Prometheus and instances of the service.

Every process started is written to `state.json` (PID, kernel start time,
port) before anything waits on it, so a simlab that crashed leaves enough
behind for the next `up` or `down` to find and stop what is still running.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from simlab.errors import StagingError
from simlab.scenario import Scenario
from simlab.staging import haproxy, procs
from simlab.staging import prometheus as prom
from simlab.staging.procs import ProcRecord
from simlab.staging.behaviour import EXIT_CRASH_LOOP, LEAK_BYTES_AT_OOM

CRASH_LOOP_BACKOFF = (10.0, 300.0)
"""A crash-looping instance is restarted after 10 s, doubling to 300 s (as the simulator does);
one that crashed after start-up, or was killed at its memory limit, is restarted at once."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM and SIGINT as Ctrl-C while the block runs, so cleanup code runs for both.

    SIGINT is made to interrupt even when this process inherited it ignored: a
    non-interactive shell starts background jobs (`cmd &`, as CI scripts do)
    with SIGINT ignored, and Python then leaves it ignored, so `kill -INT` of a
    deploy would be lost and the fleet left mid-rollout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


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


@dataclass
class Staging:
    """A staging fleet rooted at `dir` (see `up`, `down`, `status`)."""

    dir: Path
    scenario: Scenario | None = None
    meta: dict = field(default_factory=dict)
    services: dict[str, ProcRecord] = field(default_factory=dict)  # haproxy, prometheus
    members: dict[str, Member] = field(default_factory=dict)
    hosts: dict[str, ProcRecord] = field(default_factory=dict)  # instance hosts, when per_process > 1
    _status_cache: dict = field(default_factory=dict, repr=False)  # host -> (when, what it said)
    restart_crashed: bool = False

    # -- files ---------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def scenario_file(self) -> Path:
        return self.dir / "scenario.json"

    @property
    def socket_path(self) -> Path:
        return self.dir / "haproxy.sock"

    @property
    def targets_file(self) -> Path:
        return self.dir / "targets.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.meta['port']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.meta['prometheus_port']}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.meta['stats_port']}"

    @property
    def api(self) -> haproxy.RuntimeAPI:
        return haproxy.RuntimeAPI(self.socket_path)

    def save(self) -> None:
        data = {
            **self.meta,
            "owner_pid": os.getpid(),
            "services": {k: r.to_json() for k, r in self.services.items()},
            "hosts": {k: r.to_json() for k, r in self.hosts.items()},
            "instances": {k: {**m.record.to_json(), "stopping": m.stopping, "zone": m.zone, "held": m.held,
                              "restart_at": m.restart_at, "host": m.host}
                          for k, m in self.members.items()},
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_file)

    @classmethod
    def open(cls, state_dir: str | Path) -> "Staging":
        """The staging recorded in `state_dir`; StagingError if there is none."""
        st = cls(Path(state_dir).resolve())
        if not st.state_file.exists():
            raise StagingError(f"no staging in {st.dir} (run `simlab staging up SCENARIO --dir {state_dir}`)")
        data = json.loads(st.state_file.read_text())
        st.services = {k: ProcRecord(**v) for k, v in data.pop("services", {}).items()}
        st.hosts = {k: ProcRecord(**v) for k, v in data.pop("hosts", {}).items()}
        for name, v in data.pop("instances", {}).items():
            extra = {k: v.pop(k) for k in ("stopping", "zone", "held", "restart_at", "host") if k in v}
            st.members[name] = Member(ProcRecord(**v), **extra)
        data.pop("owner_pid", None)
        st.meta = data
        if st.scenario_file.exists():
            try:
                st.scenario = Scenario.model_validate_json(st.scenario_file.read_text())
            except ValueError:
                # Written by another simlab version: what runs can still be listed and stopped.
                st.scenario = None
        return st

    def running(self) -> bool:
        """Whether everything recorded here runs, but for instances a fault holds down."""
        members = [n for n, m in self.members.items() if not m.held]
        services = list(self.services.values()) + list(self.hosts.values())
        return bool(services) and all(procs.is_running(r) for r in services) and all(self.alive(n) for n in members)

    def records(self) -> list[ProcRecord]:
        return [m.record for m in self.members.values()] + list(self.hosts.values()) + list(self.services.values())

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    def up(cls, scenario: Scenario, state_dir: str | Path, timeout: float | None = None,
           per_process: int = 1) -> "Staging":
        """Start HAProxy, Prometheus and `fleet.instances` old-version instances; return once all serve.

        Stale state from a crashed run is cleaned first; a staging that is fully running is an error.
        On any failure or interrupt, everything started so far is stopped again. `per_process` > 1
        serves that many instances of a version per process (see host.py), for fleets larger than
        the machine hosts well as processes.
        """
        if not isinstance(per_process, int) or per_process < 1:
            raise StagingError(f"per_process: expected a whole number >= 1, found {per_process!r}")
        state_dir = Path(state_dir).resolve()
        cleaned = clean_stale(state_dir)
        st = cls(state_dir, scenario)
        st.dir.mkdir(parents=True, exist_ok=True)
        st.meta = {
            "scenario": scenario.name, "created": time.time(), "cleaned": cleaned,
            "port": procs.free_port(), "stats_port": procs.free_port(), "prometheus_port": procs.free_port(),
            "next_index": {"old": 0, "new": 0}, "next_zone": 0, "per_process": per_process,
        }
        st.scenario_file.write_text(scenario.model_dump_json())
        prom.write_targets(st.targets_file, {})
        t0 = time.monotonic()
        try:
            st._start_services()
            for _ in range(scenario.fleet.instances):
                st.start_instance("old")
            limit = timeout if timeout is not None else scenario.fleet.startup + 30.0
            st.wait_ready(scenario.fleet.instances, 0, limit)
            st.meta["startup_s"] = round(time.monotonic() - t0, 3)
            st.save()
        except BaseException:
            st.down()
            raise
        return st

    def _start_services(self) -> None:
        s = self.scenario
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(haproxy.render_config(s, self.meta["port"], self.meta["stats_port"], self.socket_path))
        pcfg = self.dir / "prometheus.yml"
        pcfg.write_text(prom.render_config(s, self.targets_file, self.meta["stats_port"]))
        data = self.dir / "prometheus-data"
        shutil.rmtree(data, ignore_errors=True)
        self.socket_path.unlink(missing_ok=True)
        logs = self.dir / "logs"
        self.services["haproxy"] = procs.spawn(
            "haproxy", "haproxy", ["haproxy", "-f", str(cfg), "-db"], logs / "haproxy.log", self.meta["port"])
        self.services["prometheus"] = procs.spawn(
            "prometheus", "prometheus", prom.argv(pcfg, data, self.meta["prometheus_port"]),
            logs / "prometheus.log", self.meta["prometheus_port"])
        self.save()
        procs.wait_until(self.socket_path.exists, 10.0, "HAProxy's admin socket", self.services["haproxy"])

    def wait_ready(self, old: int, new: int, timeout: float) -> None:
        """Until HAProxy has `old`/`new` instances in rotation and Prometheus scrapes all of them."""
        client = prom.PromQL(self.prometheus_url)

        def serving() -> bool:
            counts = self.ready_counts()
            return counts["old"] >= old and counts["new"] >= new

        def scraped() -> bool:
            if not client.ready():
                return False
            n = client.scalar('count(up{job="simlab"} == 1)') or 0
            h = client.scalar('count(up{job="haproxy"} == 1)') or 0
            return n >= old + new and h >= 1

        procs.wait_until(serving, timeout, f"{old} old and {new} new instances in HAProxy rotation",
                         self.services["haproxy"])
        procs.wait_until(scraped, timeout, "Prometheus to scrape every instance", self.services["prometheus"],
                         interval=0.1)

    def down(self) -> list[str]:
        """Stop everything recorded here; return the names stopped. Safe to call twice."""
        records = self.records()
        names = [r.name for r in records if procs.is_running(r)]
        instances = [m.record for m in self.members.values() if m.host is None] + list(self.hosts.values())
        procs.stop_many(instances, grace=self.scenario.traffic.timeout if self.scenario else 5.0)
        procs.stop_many(list(self.services.values()), grace=5.0)
        still = [r.name for r in records if procs.is_running(r)]
        if still:
            raise StagingError(f"could not stop: {', '.join(still)}")
        self.members.clear()
        self.services.clear()
        for host in self.hosts:
            (self.dir / "hosts" / f"{host}.sock").unlink(missing_ok=True)
        self.hosts.clear()
        for path in (self.state_file, self.socket_path, self.targets_file, self.dir / "offered_rps",
                     self.dir / "dependency.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "prometheus-data", ignore_errors=True)
        return names

    # -- instances -----------------------------------------------------------
    def _service_argv(self, *args: str) -> list[str]:
        """The command line of the service (one instance, or a host of several) with `args` added."""
        return [
            sys.executable, str(Path(__file__).with_name("instance_main.py")), "--scenario", str(self.scenario_file),
            "--seed", str(self.scenario.seed), "--state-dir", str(self.dir), *args,
        ]

    def _instance_argv(self, name: str, version: str, port: int, release_epoch: float) -> list[str]:
        return self._service_argv("--version", version, "--instance", name, "--port", str(port),
                                  "--release-epoch", f"{release_epoch:.3f}")

    def start_instance(self, version: str, release_epoch: float = 0.0, weight: int = 100) -> str:
        """Start one instance and add it to HAProxy (it takes traffic once its health checks pass)."""
        index = self.meta["next_index"][version]
        self.meta["next_index"][version] = index + 1
        name = f"{version}-{index}"
        port = self._take_port()
        argv = self._instance_argv(name, version, port, release_epoch)
        record, host = self._spawn_member(name, version, port, argv)
        # Zones round-robin over every instance ever started, as the simulator places them.
        zone = self.meta.get("next_zone", 0) % self.scenario.fleet.zones
        self.meta["next_zone"] = self.meta.get("next_zone", 0) + 1
        self.members[name] = Member(record, zone=zone, host=host)
        if zone in self.meta.get("zones_down", []):
            self._hold(name)  # started into a zone that is down: it waits for the zone, as in the simulator
        self.save()
        self.api.add_server(name, port, weight, haproxy.check_args(self.scenario))
        self._write_targets()
        return name

    def begin_stop(self, name: str) -> None:
        """Drain `name` in HAProxy and tell the process to finish in-flight requests and exit."""
        member = self.members[name]
        member.stopping = True
        member.restart_at = None
        self.api.set_state(name, "drain")
        if member.host is not None:
            if self.alive(name):
                self._host(member.host).call("stop", name=name)
        elif procs.is_running(member.record):
            try:
                os.kill(member.record.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.save()

    def kill_instance(self, name: str) -> None:
        """SIGKILL an instance (a crash, for tests and chaos); it is not restarted unless restarts are on."""
        self._kill(name)

    # -- faults (scenario `failures:` on staging, and Chaos Toolkit's actions) --
    def zone_of(self, name: str) -> int:
        return self.members[name].zone

    def crash_instance(self, name: str, restart_after: float | None = 0.0, now: float | None = None) -> None:
        """SIGKILL `name` as a crash: in-flight requests fail; `reap()` restarts it `restart_after` s later.

        `restart_after=None` holds it down until `restore()` (a chaos kill with no supervisor loop to
        restart it). A crash counts like any other in the instance's crash count.
        """
        m = self.members[name]
        if m.stopping or m.held or not self.alive(name):
            return
        self._kill(name)
        now = time.time() if now is None else now
        m.crashes += 1
        if restart_after is None:
            m.held, m.restart_at = True, float("inf")
        else:
            m.restart_at = now + max(0.0, restart_after)
        self.save()

    def _hold(self, name: str) -> None:
        m = self.members[name]
        if self.alive(name):
            self._kill(name)
        m.held, m.restart_at = True, float("inf")

    def zone_down(self, zone: int) -> list[str]:
        """Every instance of `zone` crashes and stays down (so do instances started there) until `zone_up`."""
        if not 0 <= zone < self.scenario.fleet.zones:
            raise StagingError(f"zone {zone} does not exist: fleet.zones is {self.scenario.fleet.zones} "
                               f"(zones 0..{self.scenario.fleet.zones - 1})")
        down = sorted(set(self.meta.get("zones_down", [])) | {zone})
        self.meta["zones_down"] = down
        names = [n for n, m in self.members.items() if m.zone == zone and not m.stopping]
        for name in names:
            self._hold(name)
        self.save()
        return names

    def zone_up(self, zone: int) -> list[str]:
        """The zone is back: its instances start again (through start-up and health checks)."""
        self.meta["zones_down"] = [z for z in self.meta.get("zones_down", []) if z != zone]
        return self._release([n for n, m in self.members.items() if m.zone == zone and m.held])

    def restore(self) -> list[str]:
        """Undo every fault: zones up, held and crashed instances started again, dependency healthy."""
        from simlab.staging.faults import clear_dependency_fault

        clear_dependency_fault(self.dir)
        self.meta["zones_down"] = []
        return self._release([n for n, m in self.members.items()
                              if not m.stopping and (m.held or not self.alive(n))])

    def _release(self, names: list[str]) -> list[str]:
        for name in names:
            m = self.members[name]
            m.held = False
            if not self.alive(name):
                self._respawn(name, time.time())
        self.save()
        return names

    def _respawn(self, name: str, now: float) -> None:
        m = self.members[name]
        m.record, m.host = self._spawn_member(name, m.record.version, m.record.port, m.record.argv)
        m.restart_at = None
        m.memory_limit = None
        m.spawned_at = now

    def reap(self, now: float | None = None) -> list[tuple[str, str, dict]]:
        """Finish stops, notice crashes and memory-limit kills, restart crashed instances if enabled.

        Returns (kind, instance, detail) events of what happened.
        """
        now = time.time() if now is None else now
        events = []
        self._status_cache.clear()
        for name, m in list(self.members.items()):
            running = self.alive(name)
            if m.stopping:
                if not running:
                    self.api.delete_server(name)
                    del self.members[name]
                    self._write_targets()
                    events.append(("instance_stopped", name, {}))
                continue
            if running:
                over = self._over_memory_limit(name, now)
                if over is not None:
                    self._kill(name)
                    events.append(("instance_oom_killed", name, {"rss_mb": round(over / 2**20, 1)}))
                continue
            if m.held:
                continue  # down by a fault until it is released
            if m.restart_at is None:
                m.crashes += 1
                code = self._exit_code(name)
                events.append(("instance_crashed", name, {"exit_code": code, "crashes": m.crashes}))
                delay = 0.0
                if code == EXIT_CRASH_LOOP:
                    delay, m.backoff = m.backoff, min(m.backoff * 2, CRASH_LOOP_BACKOFF[1])
                m.restart_at = now + delay if self.restart_crashed else float("inf")
            elif now >= m.restart_at:
                self._respawn(name, now)
                events.append(("instance_restarted", name, {}))
                self.save()
        return events

    def _take_port(self) -> int:
        """A port Prometheus already scrapes, for the next instance; a fresh one goes into the pool.

        Prometheus applies changes to a file_sd list at most every 5 s, so an instance on a port
        it has not seen yet would go unscraped for up to 5 s: the canary's first analyses would
        find no requests. Spare ports are listed ahead (as targets that are down until used), so a
        new instance is scraped from the next scrape interval.
        """
        spares = self.meta.setdefault("spare_ports", [])
        want = self.scenario.fleet.instances + 1  # a blue-green or big bang starts a whole fleet at once
        while len(spares) < want + 1:
            spares.append(procs.reserve_port())
        return spares.pop(0)

    # -- one process per instance, or instances in hosts ----------------------------
    def _spawn_member(self, name: str, version: str, port: int, argv: list[str]) -> tuple[ProcRecord, str | None]:
        """Start instance `name`: its own process, or in a host of its version with room (started if none)."""
        per = self.meta.get("per_process", 1)
        if per <= 1:
            return procs.spawn(name, "instance", argv, self.dir / "logs" / f"{name}.log", port, version), None
        epoch = float(argv[argv.index("--release-epoch") + 1])
        load = {h: 0 for h, r in self.hosts.items() if r.version == version and procs.is_running(r)}
        for n, m in self.members.items():
            if m.host in load and n != name and not m.stopping:
                load[m.host] += 1
        host = next((h for h, used in sorted(load.items()) if used < per), None)
        if host is None:
            host = f"host-{version}-{self.meta.setdefault('next_host', 0)}"
            self.meta["next_host"] += 1
            sock = self.dir / "hosts" / f"{host}.sock"
            sock.parent.mkdir(parents=True, exist_ok=True)
            sock.unlink(missing_ok=True)
            hargv = self._service_argv("--host-socket", str(sock), "--per-process", str(per))
            self.hosts[host] = procs.spawn(host, "host", hargv, self.dir / "logs" / f"{host}.log", None, version)
            self.save()
            procs.wait_until(sock.exists, 10.0, f"instance host {host}'s control socket", self.hosts[host])
        self._host(host).call("start", name=name, version=version, port=port, release_epoch=epoch)
        self._status_cache.pop(host, None)
        h = self.hosts[host]
        return ProcRecord(name, "instance", h.pid, port, h.started, list(argv), version, h.log), host

    def reset_to_stable(self, timeout: float | None = None) -> list[str]:
        """Before a deploy: `fleet.instances` ready instances of the stable version, and no other.

        A fleet an earlier deploy promoted (or left incomplete) runs the new
        version; the next release starts from a stable fleet, as the simulator's
        runs do. Stable instances are started and in rotation before the others
        drain. Returns the instances stopped.
        """
        n = self.scenario.fleet.instances
        old = [k for k, m in self.members.items() if m.record.version == "old" and not m.stopping]
        new = [k for k, m in self.members.items() if m.record.version == "new" and not m.stopping]
        if not new and len(old) >= n:
            return []
        for _ in range(max(0, n - len(old))):
            self.start_instance("old")
        self.wait_ready(n, 0, timeout if timeout is not None else self.scenario.fleet.startup + 30.0)
        self.stop_instances(new, grace=self.scenario.traffic.timeout + 5.0)
        return new

    def stop_instances(self, names: list[str], grace: float) -> None:
        """Drain `names` (if not draining yet) and wait until they are gone; kill what outlasts `grace`."""
        for name in names:
            if not self.members[name].stopping:
                self.begin_stop(name)
        deadline = time.monotonic() + grace
        while any(n in self.members for n in names) and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        for name in [n for n in names if n in self.members]:
            self._kill(name)  # drained too slowly: stopped the hard way
        self.reap()

    def retire_idle_hosts(self) -> list[str]:
        """Stop hosts that serve no instance (they read the scenario when they started)."""
        busy = {m.host for m in self.members.values()}
        idle = [h for h in self.hosts if h not in busy]
        procs.stop_many([self.hosts[h] for h in idle], grace=5.0)
        for h in idle:
            (self.dir / "hosts" / f"{h}.sock").unlink(missing_ok=True)
            del self.hosts[h]
        if idle:
            self.save()
        return idle

    def _host(self, host: str):
        from simlab.staging.host import HostClient

        return HostClient(self.dir / "hosts" / f"{host}.sock")

    def _host_status(self, host: str) -> dict[str, dict]:
        """What a host says of its instances (cached for a fifth of a second: one call per tick's checks)."""
        cache = self._status_cache
        hit = cache.get(host)
        if hit is not None and time.monotonic() - hit[0] < 0.2:
            return hit[1]
        record = self.hosts.get(host)
        if record is None or not procs.is_running(record):
            status = {}  # the host is gone, and every instance it served with it
        else:
            try:
                status = self._host(host).status()
            except StagingError:
                # A busy host that did not answer in time has not lost its instances: keep what it last said.
                return hit[1] if hit is not None else {n: {"state": "running", "exit_code": None, "leak_bytes": 0}
                                                       for n, m in self.members.items() if m.host == host}
        cache[host] = (time.monotonic(), status)
        return status

    def alive(self, name: str) -> bool:
        """Whether instance `name` runs (its process, or its place in its host)."""
        m = self.members[name]
        if m.host is None:
            return procs.is_running(m.record)
        return self._host_status(m.host).get(name, {}).get("state") == "running"

    def _kill(self, name: str) -> None:
        m = self.members[name]
        if m.host is None:
            procs.kill(m.record)
        elif self.alive(name):
            self._host(m.host).call("kill", name=name)
            self._status_cache.pop(m.host, None)

    def _exit_code(self, name: str) -> int | None:
        m = self.members[name]
        if m.host is None:
            return procs.exit_code(m.record)
        return self._host_status(m.host).get(name, {}).get("exit_code")

    def _over_memory_limit(self, name: str, now: float) -> int | None:
        """The bytes that put `name` over its memory limit, or None (RSS per process; leak per hosted one)."""
        m = self.members[name]
        if m.host is not None:
            leak = self._host_status(m.host).get(name, {}).get("leak_bytes", 0)
            return leak if leak > LEAK_BYTES_AT_OOM else None
        if m.memory_limit is None and now - m.spawned_at > self.scenario.fleet.startup + 1.0:
            # The limit a leak runs into: what the instance held once up, plus the leak at oom_after.
            m.memory_limit = (procs.rss_bytes(m.record.pid) or 0) + LEAK_BYTES_AT_OOM
        elif m.memory_limit is not None:
            rss = procs.rss_bytes(m.record.pid) or 0
            if rss > m.memory_limit:
                return rss
        return None

    def _write_targets(self) -> None:
        targets = {n: (m.record.port, m.record.version) for n, m in self.members.items()}
        targets.update({f"spare-{port}": (port, "none") for port in self.meta.get("spare_ports", [])})
        prom.write_targets(self.targets_file, targets)
        self.save()

    # -- observation ---------------------------------------------------------
    def ready_counts(self) -> dict[str, int]:
        """Instances of each version in HAProxy rotation (health checks passing, not draining)."""
        counts = {"old": 0, "new": 0}
        for name, server in self.api.servers().items():
            m = self.members.get(name)
            if m is not None and not m.stopping and server.in_rotation:
                counts[m.record.version] += 1
        return counts

    def status(self) -> dict:
        """What runs, for `simlab staging status`."""
        try:
            servers = self.api.servers() if procs.is_running(self.services["haproxy"]) else {}
        except (StagingError, KeyError):
            servers = {}
        rows = []
        for name, m in sorted(self.members.items()):
            s = servers.get(name)
            health = "-" if s is None else ("MAINT" if s.in_maint else "DRAIN" if s.draining else
                                             "UP" if s.up else "DOWN")
            rows.append({
                "name": name, "version": m.record.version, "pid": m.record.pid, "port": m.record.port,
                "running": self.alive(name), "health": health, "zone": m.zone, "held": m.held, "host": m.host,
                "weight": None if s is None else s.weight,
            })
        return {
            "dir": str(self.dir), "scenario": self.meta.get("scenario"),
            "url": self.url, "prometheus": self.prometheus_url, "haproxy_stats": f"{self.stats_url}/stats",
            "services": {k: {"pid": r.pid, "port": r.port, "running": procs.is_running(r)}
                         for k, r in self.services.items()},
            "instances": rows,
        }


def clean_stale(state_dir: Path) -> list[str]:
    """Stop what a previous simlab left running in `state_dir`; StagingError if it is a live staging."""
    if not (state_dir / "state.json").exists():
        return []
    try:
        st = Staging.open(state_dir)
    except (ValueError, TypeError, KeyError) as exc:
        raise StagingError(f"{state_dir}/state.json is unreadable ({exc}); remove it after stopping its processes")
    if st.running():
        raise StagingError(
            f"a staging is already running in {st.dir} ({st.url}); run `simlab staging down --dir {state_dir}` first"
        )
    return st.down()
