"""The local staging fleet in a state directory: HAProxy, Prometheus and instances of the service.

The supervisor starts and stops them (lifecycle), injects faults into them
(crashes, zone outages) and reaps them each tick (stops finished, crashes and
memory-limit kills noticed, crashed instances restarted). Where an instance
runs is `members.Placement`'s business; what survives this process is
`state.json` (see state.py).
"""
from __future__ import annotations

import dataclasses
import secrets
import shutil
import sys
import time
from pathlib import Path

from simlab.errors import StagingError
from simlab.scenario import Scenario
from simlab.staging import haproxy, procs
from simlab.staging import prometheus as prom
from simlab.staging.behaviour import EXIT_CRASH_LOOP
from simlab.staging.faults import InstanceFaults
from simlab.staging.files import check_socket_room, private_dir, write_private
from simlab.staging.members import CRASH_LOOP_BACKOFF, Allocation, Member, Placement
from simlab.staging.procs import ProcRecord
from simlab.staging.state import STATE_FILE, SavedState, StagingInfo
from simlab.staging.sweep import stop_marked

Event = tuple[str, str, dict]  # (kind, instance, detail)


class Staging(InstanceFaults):
    """A staging fleet rooted at `dir` (see `up`, `open`, `down`; health.py for its status); faults from `InstanceFaults`."""

    def __init__(self, dir: Path, *, info: StagingInfo, scenario: Scenario | None = None,
                 alloc: Allocation | None = None, services: dict[str, ProcRecord] | None = None,
                 members: dict[str, Member] | None = None, hosts: dict[str, ProcRecord] | None = None,
                 load: dict[str, ProcRecord] | None = None):
        self.dir = dir
        self.state_file, self.scenario_file = dir / STATE_FILE, dir / "scenario.json"
        self.socket_path, self.targets_file = dir / "haproxy.sock", dir / "targets.json"  # HAProxy's admin socket
        self.info = info
        self.scenario = scenario
        self.alloc = alloc or Allocation()
        self.services = services or {}  # haproxy, prometheus
        self.members = members or {}
        self.hosts = hosts or {}  # instance hosts, when per_process > 1
        self.load = load or {}  # Locust's processes while a deploy drives load
        self.restart_crashed = False
        self.notices: list[Event] = []  # what happened outside reaping (ports found taken), for the next reap
        env = {haproxy.IDENTITY_ENV: info.identity} if info.identity else {}
        self.placement = Placement(dir=dir, per_process=info.per_process, members=self.members, hosts=self.hosts,
                                   alloc=self.alloc, service_argv=self._service_argv, save=self.save, env=env)

    # -- files and addresses -------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info.port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.info.prometheus_port}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.info.stats_port}"

    @property
    def api(self) -> haproxy.RuntimeAPI:
        return haproxy.RuntimeAPI(self.socket_path)

    def save(self) -> None:
        SavedState(self.info, self.alloc, self.services, self.hosts, self.members, self.load).write(self.state_file)

    @classmethod
    def open(cls, state_dir: str | Path) -> "Staging":
        """The staging recorded in `state_dir`; StagingError if there is none, StateFileError if it is damaged."""
        path = Path(state_dir).resolve()
        if not (path / STATE_FILE).exists():
            raise StagingError(f"no staging in {path} (run `simlab staging up SCENARIO --dir {state_dir}`)")
        saved = SavedState.read(path / STATE_FILE)
        st = cls(path, info=saved.info, alloc=saved.alloc, services=saved.services, members=saved.members,
                 hosts=saved.hosts, load=saved.load)
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

    def balancer_runs(self) -> bool:
        return "haproxy" in self.services and procs.is_running(self.services["haproxy"])

    def records(self) -> list[ProcRecord]:
        return ([m.record for m in self.members.values()] + list(self.hosts.values()) + list(self.services.values())
                + list(self.load.values()))

    def track_load(self, records: list[ProcRecord]) -> None:
        """Locust's processes while a deploy drives load, so `down` stops them if the deploy is killed."""
        self.load = {r.name: r for r in records}
        self.save()

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    def up(cls, scenario: Scenario, state_dir: str | Path, *, timeout: float | None = None,
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
        check_socket_room(state_dir, hosts=per_process > 1)
        cleaned = clean_stale(state_dir)
        info = StagingInfo(scenario=scenario.name, created=time.time(), cleaned=tuple(cleaned),
                           port=procs.free_port(), stats_port=procs.free_port(), prometheus_port=procs.free_port(),
                           per_process=per_process, identity=secrets.token_hex(16))
        st = cls(state_dir, info=info, scenario=scenario)
        private_dir(st.dir)
        write_private(st.scenario_file, scenario.model_dump_json())
        prom.write_targets(st.targets_file, {})
        t0 = time.monotonic()
        try:
            st._start_services()
            for _ in range(scenario.fleet.instances):
                st.start_instance("old")
            st.wait_ready(scenario.fleet.instances, 0, timeout if timeout is not None else st.startup_limit())
            st.info = dataclasses.replace(st.info, startup_s=round(time.monotonic() - t0, 3))
            st.save()
        except BaseException:
            st.down()
            raise
        return st

    def startup_limit(self) -> float:
        """How long instances get to start and come into rotation."""
        return self.scenario.fleet.startup + 30.0

    def _start_services(self) -> None:
        s, info = self.scenario, self.info
        cfg, split = self.dir / "haproxy.cfg", self.dir / haproxy.SPLIT_MAP
        write_private(split, haproxy.split_map_text())  # by instance until a deploy sets the controller's split
        write_private(cfg, haproxy.render_config(s, info.port, info.stats_port, self.socket_path, info.identity, split))
        pcfg = self.dir / "prometheus.yml"
        write_private(pcfg, prom.render_config(s, self.targets_file, info.stats_port))
        data = self.dir / "prometheus-data"
        shutil.rmtree(data, ignore_errors=True)
        self.socket_path.unlink(missing_ok=True)
        logs = self.dir / "logs"
        self.services["haproxy"] = procs.spawn(
            "haproxy", "haproxy", ["haproxy", "-f", str(cfg), "-db"], logs / "haproxy.log", info.port, owner=self.dir)
        self.services["prometheus"] = procs.spawn(
            "prometheus", "prometheus", prom.argv(pcfg, data, info.prometheus_port),
            logs / "prometheus.log", info.prometheus_port, owner=self.dir)
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
        """Stop everything recorded here, and what else names this directory (sweep.py); return the names stopped.

        Safe to call twice.
        """
        records = self.records()
        names = [r.name for r in records if procs.is_running(r)]
        grace = self.scenario.traffic.timeout if self.scenario else 5.0
        procs.stop_many(list(self.load.values()), grace=5.0)
        self.placement.stop_all(grace=grace)
        procs.stop_many(list(self.services.values()), grace=5.0)
        names += stop_marked(self.dir, grace)  # what the state file lost track of
        still = [r.name for r in records if procs.is_running(r)]
        if still:
            raise StagingError(f"could not stop: {', '.join(still)}")
        self.members.clear()
        self.services.clear()
        self.load.clear()
        self.placement.forget_hosts()
        for path in (self.state_file, self.socket_path, self.targets_file, self.dir / "offered_rps",
                     self.dir / "dependency.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "prometheus-data", ignore_errors=True)
        return names

    # -- instances -----------------------------------------------------------
    def _service_argv(self, *args: str) -> list[str]:
        """The command line of the service (one instance, or a host of several) with `args` added."""
        return [
            sys.executable, "-m", "simlab.staging.instance_main", "--scenario", str(self.scenario_file),
            "--seed", str(self.scenario.seed), "--state-dir", str(self.dir), *args,
        ]

    def start_instance(self, version: str, release_epoch: float = 0.0, weight: int = 100) -> str:
        """Start one instance and add it to HAProxy (it takes traffic once its health checks pass)."""
        index = self.alloc.next_index.get(version, 0)  # a state file from before baselines has no count for one
        self.alloc.next_index[version] = index + 1
        name = f"{version}-{index}"
        port, listen, taken = self.placement.take_port(at_once=self.scenario.fleet.instances + 1)  # a blue-green
        self.notices += [("port_taken", name, {"port": p, "used": port}) for p in taken]
        argv = self._service_argv("--version", version, "--instance", name, "--port", str(port),
                                  "--release-epoch", f"{release_epoch:.3f}")
        record, host = self.placement.spawn(name, version, port, argv, listen)
        zone = self.placement.next_zone(self.scenario.fleet.zones)
        self.members[name] = Member(record, zone=zone, host=host)
        if zone in self.alloc.zones_down:
            self._hold(name)  # started into a zone that is down: it waits for the zone, as in the simulator
        self.save()
        self.api.add_server(name, port, weight, haproxy.check_args(self.scenario), version)
        self._write_targets()
        return name

    def begin_stop(self, name: str) -> None:
        """Drain `name` in HAProxy and tell the process to finish in-flight requests and exit."""
        member = self.members[name]
        member.stopping = True
        member.restart_at = None
        if self.balancer_runs():  # without HAProxy (it died) the instance is stopped all the same
            self.api.set_state(name, "drain", member.version)
        self.placement.terminate(name)
        self.save()

    def kill_instance(self, name: str) -> None:
        """SIGKILL an instance (a crash, for tests and chaos); it is not restarted unless restarts are on."""
        self.placement.kill(name)

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
            self.placement.kill(name)  # drained too slowly: stopped the hard way
        self.reap()

    def retire_idle_hosts(self) -> list[str]:
        """Stop hosts that serve no instance (they read the scenario when they started)."""
        idle = self.placement.retire_idle()
        if idle:
            self.save()
        return idle

    def restart(self, name: str) -> None:
        """Start instance `name` again (it is down), on its port unless another process took it meanwhile."""
        self._respawn(name, time.time())
        self.save()

    def _write_targets(self) -> None:
        prom.write_targets(self.targets_file, self.placement.targets())
        self.save()

    def _respawn(self, name: str, now: float) -> None:
        """Start a crashed or released instance again, on its port unless another process took it meanwhile."""
        m = self.members[name]
        listen, taken = self.placement.reclaim(name)
        if taken:  # moved to another port: HAProxy checks it there from now on
            self.notices += [("port_taken", name, {"port": p, "used": m.record.port}) for p in taken]
            server = self.api.servers().get(name)
            if server is not None:
                self.api.delete_server(name, m.version)
            self.api.add_server(name, m.record.port, server.weight if server else 0, haproxy.check_args(self.scenario),
                                m.version)
            self._write_targets()
        m.record, m.host = self.placement.spawn(name, m.record.version, m.record.port, m.record.argv, listen)
        m.restart_at = None
        m.memory_limit = None
        m.spawned_at = now

    # -- reaping -------------------------------------------------------------
    def reap(self, now: float | None = None) -> list[Event]:
        """Finish stops, notice crashes and memory-limit kills, restart crashed instances if enabled.

        Returns (kind, instance, detail) events of what happened.
        """
        now = time.time() if now is None else now
        self.placement.forget_status()
        events, self.notices = self.notices, []
        for name, m in list(self.members.items()):
            running = self.alive(name)
            if m.stopping:
                if not running:
                    self._forget(name)
                    events.append(("instance_stopped", name, {}))
            elif running:
                events += self._enforce_memory_limit(name, now)
            elif m.held:
                continue  # down by a fault until it is released
            elif m.restart_at is None:
                events.append(self._crashed(name, now))
            elif now >= m.restart_at:
                self._respawn(name, now)
                events.append(("instance_restarted", name, {}))
                self.save()
        return events

    def _forget(self, name: str) -> None:
        """A drained instance has exited: out of HAProxy, the targets and the state."""
        if self.balancer_runs():
            self.api.delete_server(name, self.members[name].version)
        del self.members[name]
        self._write_targets()

    def _enforce_memory_limit(self, name: str, now: float) -> list[Event]:
        over = self.placement.over_memory_limit(name, now, self.scenario.fleet.startup)
        if over is None:
            return []
        self.placement.kill(name)
        return [("instance_oom_killed", name, {"rss_mb": round(over / 2**20, 1)})]

    def _crashed(self, name: str, now: float) -> Event:
        """Count a crash just noticed and schedule the restart (crash loops back off)."""
        m = self.members[name]
        m.crashes += 1
        code = self.placement.exit_code(name)
        delay = 0.0
        if code == EXIT_CRASH_LOOP:
            delay, m.backoff = m.backoff, min(m.backoff * 2, CRASH_LOOP_BACKOFF[1])
        m.restart_at = now + delay if self.restart_crashed else float("inf")
        return ("instance_crashed", name, {"exit_code": code, "crashes": m.crashes})

    # -- observation ---------------------------------------------------------
    def alive(self, name: str) -> bool:
        """Whether instance `name` runs (its process, or its place in its host)."""
        return self.placement.alive(name)

    def instances(self, version: str) -> list[str]:
        """Instances of `version` not told to stop (running, starting, crashed or held down)."""
        return [n for n, m in self.members.items() if m.record.version == version and not m.stopping]

    def up_instances(self) -> list[str]:
        """Instances that can crash now: running, not stopping, not held down by a fault, no restart pending."""
        return [n for n, m in self.members.items()
                if not m.stopping and not m.held and m.restart_at is None and self.alive(n)]

    def restarts_due(self, by: float) -> list[float]:
        """When crashed instances (not held down) restart, for those due by `by` (epoch seconds)."""
        return [m.restart_at for m in self.members.values()
                if not m.held and m.restart_at is not None and m.restart_at != float("inf") and m.restart_at <= by]

    def ready_counts(self) -> dict[str, int]:
        """Instances of each version in HAProxy rotation (health checks passing, not draining)."""
        counts = {"old": 0, "new": 0}  # and "baseline" while a canary's baseline is in rotation
        for name in self.in_rotation():
            version = self.members[name].record.version
            counts[version] = counts.get(version, 0) + 1
        return counts

    def in_rotation(self, version: str | None = None) -> list[str]:
        """Instances (of `version`, or all) in HAProxy rotation and not stopping, by name."""
        servers = self.api.servers()
        return sorted(n for n, m in self.members.items()
                      if not m.stopping and (version is None or m.record.version == version)
                      and n in servers and servers[n].in_rotation)


def clean_stale(state_dir: Path) -> list[str]:
    """Stop what a previous simlab left running in `state_dir`; StagingError if it is a live staging."""
    if not (state_dir / STATE_FILE).exists():
        return []
    st = Staging.open(state_dir)  # StateFileError if damaged: `down` copes with that, `up` says to run it
    if st.running():
        raise StagingError(
            f"a staging is already running in {st.dir} ({st.url}); run `simlab staging down --dir {state_dir}` first"
        )
    return st.down()
