"""The local staging as a deploy target (`target.DeployTarget`): the supervisor's processes and HAProxy's API.

The deployer asks every target the same few things (count the fleet, start
and stop instances, hold the traffic split, undo everything on interrupt);
`external.ExternalFleet` answers them with a team's own commands instead.
"""
from __future__ import annotations

from pathlib import Path

from simlab.errors import StagingError
from simlab.staging import haproxy, procs
from simlab.staging.faults import FaultStep, clear_dependency_fault, dependency_fault, set_dependency_fault
from simlab.staging.files import write_private
from simlab.staging.prometheus import PromQL
from simlab.staging.supervisor import Staging
from simlab.staging.target import COUNT_KEYS, DeployTarget, TargetEvent


class LocalFleet(DeployTarget):
    """Instances run by the supervisor in a state directory, traffic split by HAProxy between version backends."""

    kind = "local"
    injects_faults = True

    def __init__(self, staging: Staging):
        self.st = staging
        self.url = staging.url
        self.prometheus_url = staging.prometheus_url
        self.dir: Path = staging.dir
        self.total_from = "haproxy"
        self.promql = PromQL(staging.prometheus_url)
        self.release_epoch = 0.0

    def reset_to_stable(self, timeout: float | None = None) -> list[str]:
        """Before a deploy: `fleet.instances` ready instances of the stable version, and no other.

        A fleet an earlier deploy promoted (or left incomplete) runs the new
        version; the next release starts from a stable fleet, as the simulator's
        runs do. Stable instances are started and in rotation before the others
        drain. Returns the instances stopped.
        """
        n = self.st.scenario.fleet.instances
        old = self.st.instances("old")
        new = self.st.instances("new") + self.st.instances("baseline")  # a canary baseline an interrupted deploy left
        if not new and len(old) >= n:
            return []
        for _ in range(max(0, n - len(old))):
            self.st.start_instance("old")
        self.st.wait_ready(n, 0, timeout if timeout is not None else self.st.startup_limit())
        self.st.stop_instances(new, grace=self.st.scenario.traffic.timeout + 5.0)
        return new

    def begin(self, release_epoch: float) -> None:
        self.st.restart_crashed = True
        self.release_epoch = release_epoch

    def reap(self) -> list[tuple[str, str, dict]]:
        return self.st.reap()

    def report_offered(self, rps: float) -> None:
        """The offered load, for defects that appear only above a rate (instances read this file)."""
        write_private(self.st.dir / "offered_rps", f"{rps:.3f}")

    def track_load(self, records: list[procs.ProcRecord]) -> None:
        self.st.track_load(records)

    def broken(self) -> str | None:
        """HAProxy or Prometheus has exited: nothing serves users, or nothing measures them."""
        for name, shown in (("haproxy", "HAProxy"), ("prometheus", "Prometheus")):
            record = self.st.services.get(name)
            if record is not None and not procs.is_running(record):
                return f"{shown} (pid {record.pid}) exited"
        return None

    def counts(self) -> dict[str, int]:
        servers = self.st.api.servers()
        counts = dict.fromkeys(COUNT_KEYS, 0)
        for name, m in self.st.members.items():
            v = m.record.version
            if m.stopping:
                if self.st.alive(name):
                    counts[f"{v}_draining"] += 1
                continue
            counts[f"{v}_alive"] += 1
            server = servers.get(name)
            if m.restart_at is not None or not self.st.alive(name):
                counts[f"{v}_down"] += 1
            elif server is not None and server.in_rotation:
                counts[f"{v}_ready"] += 1
            else:
                counts[f"{v}_starting"] += 1
        return counts

    def start(self, version: str, count: int) -> list[TargetEvent]:
        events = []
        for _ in range(count):
            # In its version's backend at once: the split decides whether that backend gets traffic (haproxy.py)
            name = self.st.start_instance(version, self.release_epoch)
            events.append(("instance_started", {"instance": name, "version": version}))
        return events

    def stop(self, version: str, count: int) -> list[TargetEvent]:
        servers = self.st.api.servers()
        live = self.st.instances(version)
        # Not-ready instances go first, then the newest.
        live.sort(key=lambda n: (servers.get(n) is not None and servers[n].in_rotation, -int(n.split("-")[1])))
        events = []
        for name in live[:count]:
            self.st.begin_stop(name)
            events.append(("instance_stopping", {"instance": name}))
        return events

    def hold_weight(self, new_percent: float | None, baseline_percent: float = 0.0) -> None:
        """Every tick: the new version's backend gets `new_percent` of requests (a canary's baseline's
        `baseline_percent`), each instance in rotation an equal share of its version's."""
        apply_split(self.st, new_percent, baseline_percent)

    # -- faults: the scenario's failures (see faults.FaultSchedule) --------------
    def running_instances(self) -> list[str]:
        """Instances that can crash now: running, not stopping, not held down by a fault."""
        return self.st.up_instances()

    def inject(self, step: FaultStep) -> list[TargetEvent]:
        if step.kind == "crash":
            self.st.crash_instance(step.detail["instance"], step.detail["restart_after"])
            return [("instance_crash", {"instance": step.detail["instance"], "why": "failure"})]
        if step.kind == "zone_down":
            names = self.st.zone_down(step.detail["zone"])
            return [("zone_down", {"zone": step.detail["zone"], "instances": len(names)})]
        if step.kind == "zone_up":
            self.st.zone_up(step.detail["zone"])
            return [("zone_up", {"zone": step.detail["zone"]})]
        kind = "dependency_failure_started" if step.kind == "dependency_on" else "dependency_failure_ended"
        return [(kind, dict(step.detail))]

    def set_dependency(self, fault: dict | None) -> None:
        if fault is None:
            if dependency_fault(self.dir) is not None:
                clear_dependency_fault(self.dir)
        elif dependency_fault(self.dir) != fault:
            set_dependency_fault(self.dir, **fault)

    def end_faults(self) -> None:
        try:
            self.st.restore()
        except StagingError:
            pass

    def milestone(self, kind: str) -> None:
        """Promotion and rollback need nothing beyond the instance and weight changes on a local fleet."""

    def interrupt(self, instances: int) -> str:
        """Interrupted: send all traffic to the stable version and stop every new instance; say what is true now."""
        st = self.st
        try:
            if st.balancer_runs():
                for _ in range(max(0, instances - len(st.instances("old")))):
                    st.start_instance("old")
                st.api.set_split(0.0)
                for name, m in list(st.members.items()):
                    if not m.stopping:
                        st.api.set_weight(name, 0 if m.version in ("new", "baseline") else haproxy.EQUAL_WEIGHT,
                                          m.version)
        except StagingError:
            pass  # HAProxy died meanwhile: the new version is stopped all the same, below
        new = [n for n, m in st.members.items() if m.record.version in ("new", "baseline")]
        try:
            st.stop_instances(new, grace=5.0)
        except StagingError:
            pass
        return self._condition(instances)

    def _condition(self, instances: int) -> str:
        """The staging's state in a few words, from the processes and HAProxy as they are now."""
        st = self.st
        left = [n for n, m in st.members.items() if m.record.version in ("new", "baseline") and st.alive(n)]
        said = [f"new instances still running: {', '.join(left)}" if left else "new version stopped"]
        if not st.balancer_runs():
            running = [n for n in st.members if st.alive(n)]
            running += [k for k, r in st.services.items() if procs.is_running(r)]
            said.append("HAProxy is not running, so nothing serves users" +
                        (f" ({', '.join(running)} still run)" if running else ""))
            return "; ".join(said)
        try:
            serving = st.in_rotation("old")
        except StagingError:
            serving = []
        if serving:
            said.append(f"stable version serving ({len(serving)} of {instances} instances in rotation)")
        else:
            said.append("no stable instance in rotation yet: users get errors until one is")
        return "; ".join(said)


def apply_split(st: Staging, new_percent: float | None, baseline_percent: float = 0.0) -> None:
    """The controller's split in HAProxy: `new_percent` of requests to the new version's backend, a canary's
    baseline `baseline_percent`, the stable version the rest (None: every instance in rotation alike); inside a
    version every instance has the same weight, and the scenario's balancer chooses (haproxy.py)."""
    st.api.set_split(new_percent, baseline_percent)
    servers = st.api.servers()
    for name, m in st.members.items():
        if not m.stopping and name in servers and servers[name].weight != haproxy.EQUAL_WEIGHT:
            st.api.set_weight(name, haproxy.EQUAL_WEIGHT, m.version)
