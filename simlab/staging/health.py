"""Whether a staging serves, for the commands that use one: the status table, and what is down before a deploy.

A deploy never replaces a staging the user started. `damage` says what of it
does not run; instances that crashed while no simlab watched them are restarted
in place (`repair`, in a new host if theirs is gone), and a staging whose
HAProxy or Prometheus is gone is refused with the commands that put it right.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simlab.errors import StagingError
from simlab.staging import haproxy, procs

if TYPE_CHECKING:
    from simlab.staging.supervisor import Staging


def status(st: Staging) -> dict:
    """What runs, for `simlab staging status`."""
    servers, split = {}, None
    try:
        if procs.is_running(st.services["haproxy"]):
            servers = st.api.servers()
            split = _split(st.api.split())
    except (StagingError, KeyError):
        pass
    rows = []
    for name, m in sorted(st.members.items()):
        s = servers.get(name)
        health = "-" if s is None else ("MAINT" if s.in_maint else "DRAIN" if s.draining else
                                         "UP" if s.up else "DOWN")
        rows.append({
            "name": name, "version": m.record.version, "pid": m.record.pid, "port": m.record.port,
            "running": st.alive(name), "health": health, "zone": m.zone, "held": m.held, "host": m.host,
            "weight": None if s is None else s.weight,
        })
    return {
        "dir": str(st.dir), "scenario": st.info.scenario,
        "url": st.url, "prometheus": st.prometheus_url, "haproxy_stats": f"{st.stats_url}/stats",
        "services": {k: {"pid": r.pid, "port": r.port, "running": procs.is_running(r)}
                     for k, r in st.services.items()},
        "instances": rows,
        "split": split,
    }


def _split(cuts: dict[str, int]) -> dict:
    """The traffic split HAProxy holds, in percent of requests by version (haproxy.split_cuts read back)."""
    if cuts.get("all") == 1:
        return {"by_instance": True}
    new, baseline = cuts.get("new", 0), max(0, cuts.get("baseline", 0) - cuts.get("new", 0))
    shares = {"new": new, "baseline": baseline, "old": haproxy.PPM - new - baseline}
    return {"by_instance": False, **{v: round(100 * ppm / haproxy.PPM, 4) for v, ppm in shares.items()}}


def nothing_runs(st: Staging) -> bool:
    """None of the processes recorded runs: a staging a crashed simlab (or a reboot) left only a file of."""
    return not any(procs.is_running(r) for r in st.records())


def down_services(st: Staging) -> list[str]:
    """HAProxy and Prometheus if they are not running, each with its PID."""
    gone = [f"{name} (pid {r.pid})" for name, r in st.services.items() if not procs.is_running(r)]
    return gone + [f"{name} (never started)" for name in ("haproxy", "prometheus") if name not in st.services]


def down_instances(st: Staging) -> list[str]:
    """Instances that should serve and do not: not stopping, not held down by a fault, not running."""
    return [n for n, m in st.members.items() if not m.stopping and not m.held and not st.alive(n)]


def describe(st: Staging, name: str) -> str:
    """An instance that is down, for a message: version, PID, port, and the last line its log holds."""
    m = st.members[name]
    where = f"{m.record.version}, pid {m.record.pid}, port {m.record.port}"
    last = _last_line(m.record.log)
    return f"{name} ({where}) is not running" + (f" (its log ends: {last!r})" if last else "")


def refuse_if_damaged(st: Staging, state_dir: str | Path) -> None:
    """StagingError naming what is down and the commands that fix it, if HAProxy or Prometheus is gone."""
    gone = down_services(st)
    if gone:
        raise StagingError(
            f"the staging in {st.dir} is damaged: {', '.join(gone)} not running, so it cannot take a deploy; "
            f"a deploy does not replace a staging you started: run `simlab staging down --dir {state_dir}` and "
            f"`simlab staging up SCENARIO --dir {state_dir}`, or deploy with another --dir")


def repair(st: Staging, timeout: float) -> list[str]:
    """Put back the instances that are down: the stable version's restarted in place (same names and ports,
    unless another process took a port), the new version's removed (a deploy starts from the stable version).

    Waits until the restarted ones serve; returns a line for each instance, saying what it was found in.
    """
    down = down_instances(st)
    found = [f"{describe(st, n)}: " + ("restarted it in place" if st.members[n].version == "old" else
                                       "removed it (a deploy starts from the stable version)") for n in down]
    st.placement.forget_dead_hosts()
    restarted = [n for n in down if st.members[n].version == "old"]
    for name in restarted:
        st.restart(name)
    st.stop_instances([n for n in down if n not in restarted], grace=1.0)
    if restarted:
        want = {v: len([n for n in st.instances(v) if not st.members[n].held]) for v in ("old", "new")}
        st.wait_ready(want["old"], want["new"], timeout)
    return found


def _last_line(log: str | None) -> str:
    if not log:
        return ""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 2000))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:160] if lines else ""
