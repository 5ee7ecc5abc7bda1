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
    """Treat SIGTERM like Ctrl-C while the block runs, so cleanup code runs for both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


@dataclass
class Staging:
    """A staging fleet rooted at `dir` (see `up`, `down`, `status`)."""

    dir: Path
    scenario: Scenario | None = None
    meta: dict = field(default_factory=dict)
    services: dict[str, ProcRecord] = field(default_factory=dict)  # haproxy, prometheus
    members: dict[str, Member] = field(default_factory=dict)
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
            "instances": {k: {**m.record.to_json(), "stopping": m.stopping, "zone": m.zone, "held": m.held,
                              "restart_at": m.restart_at}
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
        for name, v in data.pop("instances", {}).items():
            extra = {k: v.pop(k) for k in ("stopping", "zone", "held", "restart_at") if k in v}
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
        records = [r for r in self.records() if not (r.name in self.members and self.members[r.name].held)]
        return bool(records) and all(procs.is_running(r) for r in records)

    def records(self) -> list[ProcRecord]:
        return [m.record for m in self.members.values()] + list(self.services.values())

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    def up(cls, scenario: Scenario, state_dir: str | Path, timeout: float | None = None) -> "Staging":
        """Start HAProxy, Prometheus and `fleet.instances` old-version instances; return once all serve.

        Stale state from a crashed run is cleaned first; a staging that is fully running is an error.
        On any failure or interrupt, everything started so far is stopped again.
        """
        state_dir = Path(state_dir).resolve()
        cleaned = clean_stale(state_dir)
        st = cls(state_dir, scenario)
        st.dir.mkdir(parents=True, exist_ok=True)
        st.meta = {
            "scenario": scenario.name, "created": time.time(), "cleaned": cleaned,
            "port": procs.free_port(), "stats_port": procs.free_port(), "prometheus_port": procs.free_port(),
            "next_index": {"old": 0, "new": 0}, "next_zone": 0,
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
        instances = [m.record for m in self.members.values()]
        procs.stop_many(instances, grace=self.scenario.traffic.timeout if self.scenario else 5.0)
        procs.stop_many(list(self.services.values()), grace=5.0)
        still = [r.name for r in records if procs.is_running(r)]
        if still:
            raise StagingError(f"could not stop: {', '.join(still)}")
        self.members.clear()
        self.services.clear()
        for path in (self.state_file, self.socket_path, self.targets_file, self.dir / "offered_rps",
                     self.dir / "dependency.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "prometheus-data", ignore_errors=True)
        return names

    # -- instances -----------------------------------------------------------
    def _instance_argv(self, name: str, version: str, port: int, release_epoch: float) -> list[str]:
        return [
            sys.executable, str(Path(__file__).with_name("instance_main.py")), "--scenario", str(self.scenario_file),
            "--version", version, "--instance", name, "--port", str(port), "--seed", str(self.scenario.seed),
            "--release-epoch", f"{release_epoch:.3f}", "--state-dir", str(self.dir),
        ]

    def start_instance(self, version: str, release_epoch: float = 0.0, weight: int = 100) -> str:
        """Start one instance and add it to HAProxy (it takes traffic once its health checks pass)."""
        index = self.meta["next_index"][version]
        self.meta["next_index"][version] = index + 1
        name = f"{version}-{index}"
        port = self._take_port()
        argv = self._instance_argv(name, version, port, release_epoch)
        record = procs.spawn(name, "instance", argv, self.dir / "logs" / f"{name}.log", port, version)
        # Zones round-robin over every instance ever started, as the simulator places them.
        zone = self.meta.get("next_zone", 0) % self.scenario.fleet.zones
        self.meta["next_zone"] = self.meta.get("next_zone", 0) + 1
        self.members[name] = Member(record, zone=zone)
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
        if procs.is_running(member.record):
            try:
                os.kill(member.record.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.save()

    def kill_instance(self, name: str) -> None:
        """SIGKILL an instance (a crash, for tests and chaos); it is not restarted unless restarts are on."""
        procs.kill(self.members[name].record)

    # -- faults (scenario `failures:` on staging, and Chaos Toolkit's actions) --
    def zone_of(self, name: str) -> int:
        return self.members[name].zone

    def crash_instance(self, name: str, restart_after: float | None = 0.0, now: float | None = None) -> None:
        """SIGKILL `name` as a crash: in-flight requests fail; `reap()` restarts it `restart_after` s later.

        `restart_after=None` holds it down until `restore()` (a chaos kill with no supervisor loop to
        restart it). A crash counts like any other in the instance's crash count.
        """
        m = self.members[name]
        if m.stopping or m.held or not procs.is_running(m.record):
            return
        procs.kill(m.record)
        now = time.time() if now is None else now
        m.crashes += 1
        if restart_after is None:
            m.held, m.restart_at = True, float("inf")
        else:
            m.restart_at = now + max(0.0, restart_after)
        self.save()

    def _hold(self, name: str) -> None:
        m = self.members[name]
        if procs.is_running(m.record):
            procs.kill(m.record)
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
                              if not m.stopping and (m.held or not procs.is_running(m.record))])

    def _release(self, names: list[str]) -> list[str]:
        for name in names:
            m = self.members[name]
            m.held = False
            if not procs.is_running(m.record):
                self._respawn(name, time.time())
        self.save()
        return names

    def _respawn(self, name: str, now: float) -> None:
        m = self.members[name]
        m.record = procs.spawn(name, "instance", m.record.argv, Path(m.record.log), m.record.port, m.record.version)
        m.restart_at = None
        m.memory_limit = None
        m.spawned_at = now

    def reap(self, now: float | None = None) -> list[tuple[str, str, dict]]:
        """Finish stops, notice crashes and memory-limit kills, restart crashed instances if enabled.

        Returns (kind, instance, detail) events of what happened.
        """
        now = time.time() if now is None else now
        events = []
        for name, m in list(self.members.items()):
            running = procs.is_running(m.record)
            if m.stopping:
                if not running:
                    self.api.delete_server(name)
                    del self.members[name]
                    self._write_targets()
                    events.append(("instance_stopped", name, {}))
                continue
            if running:
                if m.memory_limit is None and now - m.spawned_at > self.scenario.fleet.startup + 1.0:
                    # The limit a leak runs into: what the instance held once up, plus the leak at oom_after.
                    m.memory_limit = (procs.rss_bytes(m.record.pid) or 0) + LEAK_BYTES_AT_OOM
                elif m.memory_limit is not None:
                    rss = procs.rss_bytes(m.record.pid) or 0
                    if rss > m.memory_limit:
                        procs.kill(m.record)
                        events.append(("instance_oom_killed", name, {"rss_mb": round(rss / 2**20, 1)}))
                continue
            if m.held:
                continue  # down by a fault until it is released
            if m.restart_at is None:
                m.crashes += 1
                code = procs.exit_code(m.record)
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
                "running": procs.is_running(m.record), "health": health, "zone": m.zone, "held": m.held,
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
