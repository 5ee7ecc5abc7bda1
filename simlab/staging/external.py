"""An external deploy target: a team's staging, acted on through its own commands, observed by its Prometheus.

The controller's actions become the `target.commands` templates (what a team
wires to `kubectl argo rollouts ...` or its deploy tool); the fleet is counted
by the `status` command; the analysis reads the target's Prometheus. Credentials
come only from the environment variables the block names: they are checked to be
set, passed to the commands through the environment, and masked in every line
simlab writes. Only loopback hosts are driven unless `--allow-host` names them.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex
import subprocess
import time
import urllib.parse
from pathlib import Path

from simlab.errors import ScenarioError, StagingError
from simlab.scenario.staging import Target
from simlab.staging.faults import FaultStep
from simlab.staging.prometheus import PromQL
from simlab.staging.target import COUNT_KEYS, DeployTarget, TargetEvent

MASK = "***"


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_hosts(target: Target, allow_hosts: tuple[str, ...] | list[str] = ()) -> None:
    """ScenarioError unless every host the target sends to is loopback or named by `--allow-host`."""
    for field in ("url", "prometheus"):
        host = host_of(getattr(target, field))
        if not is_loopback(host) and host not in allow_hosts:
            raise ScenarioError(f"staging.target.{field}: {host!r} is not a loopback host; simlab sends load and "
                                f"rollout commands only to hosts named by --allow-host (add `--allow-host {host}`)")


class ExternalFleet(DeployTarget):
    """The deployer's target (`target.DeployTarget`) over command templates; faults are the team's own."""

    kind = "external"
    injects_faults = False

    def __init__(self, target: Target, state_dir: Path, *, allow_hosts: tuple[str, ...] | list[str] = ()):
        check_hosts(target, allow_hosts)
        missing = [name for name in target.env if not os.environ.get(name)]
        if target.prometheus_token_env and not os.environ.get(target.prometheus_token_env):
            missing.append(target.prometheus_token_env)
        if missing:
            raise ScenarioError(f"staging.target.env: set {', '.join(missing)} in the environment "
                                f"(credentials are read from the environment only)")
        self.target = target
        self.url = target.url
        self.prometheus_url = target.prometheus
        self.total_from = target.total_from
        self.dir = Path(state_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "external-commands.log"
        names = list(target.env) + ([target.prometheus_token_env] if target.prometheus_token_env else [])
        self._secrets = sorted({os.environ[n] for n in names if len(os.environ[n]) >= 3}, key=len, reverse=True)
        token = os.environ[target.prometheus_token_env] if target.prometheus_token_env else None
        self.promql = PromQL(target.prometheus, token=token)
        self.release_epoch = 0.0
        self._alive = {"old": 0, "new": 0}
        self._weight: float | None = None  # the target starts as it is: traffic spread by instance

    # -- running commands ----------------------------------------------------
    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def run(self, which: str, **fields) -> str:
        """Run one command template; its stdout, or StagingError (masked) if it fails."""
        template = getattr(self.target.commands, which)
        argv = shlex.split(template.format(**fields))
        t0 = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.target.command_timeout,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise StagingError(f"target command {which}: {argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise StagingError(f"target command {which} took longer than {self.target.command_timeout:g}s") from None
        with open(self.log, "a") as log:
            log.write(self.mask(f"[{time.time():.3f}] {which}: {shlex.join(argv)} -> exit {done.returncode} "
                                f"in {time.monotonic() - t0:.2f}s\n"))
            if done.returncode or which != "status":
                log.write(self.mask(done.stdout + done.stderr))
        if done.returncode:
            tail = self.mask((done.stderr or done.stdout).strip()[-400:])
            raise StagingError(f"target command {which} exited {done.returncode}: {tail}")
        return done.stdout

    # -- the deployer's target interface -------------------------------------
    def begin(self, release_epoch: float) -> None:
        self.release_epoch = release_epoch

    def reap(self) -> list[tuple[str, str, dict]]:
        return []  # crashes and restarts are the target's own business; they show in `status`

    def report_offered(self, rps: float) -> None:
        pass

    def counts(self) -> dict[str, int]:
        out = self.run("status")
        try:
            data = json.loads(out)
            counts = dict.fromkeys(COUNT_KEYS, 0)
            for v in ("old", "new"):
                row = data.get(v, {})
                alive, ready = int(row["alive"]), int(row["ready"])
                counts.update({f"{v}_alive": alive, f"{v}_ready": ready,
                               f"{v}_starting": max(0, alive - ready - int(row.get("down", 0))),
                               f"{v}_down": int(row.get("down", 0)), f"{v}_draining": int(row.get("draining", 0))})
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StagingError("target command status: expected JSON like "
                               f'{{"old": {{"alive": 3, "ready": 3}}, "new": {{...}}}}, got {self.mask(out)[:200]!r}')
        self._alive = {"old": counts["old_alive"], "new": counts["new_alive"]}
        return counts

    def _scale(self, version: str, count: int) -> list[TargetEvent]:
        epoch = f"{self.release_epoch:.3f}"
        if version == "new" and count > self._alive["new"]:
            self.run("start_new_version", count=count, release_epoch=epoch)
        elif self.target.commands.scale is not None:
            self.run("scale", version=version, count=count, release_epoch=epoch)
        else:
            return [("target_skipped", {"version": version, "count": count,
                                        "why": "no scale command: promote and rollback stop instances"})]
        self._alive[version] = count
        return [("target_scaled", {"version": version, "count": count})]

    def start(self, version: str, count: int) -> list[TargetEvent]:
        return self._scale(version, self._alive[version] + count)

    def stop(self, version: str, count: int) -> list[TargetEvent]:
        return self._scale(version, max(0, self._alive[version] - count))

    def hold_weight(self, new_percent: float | None) -> None:
        """A command only when the split changes: the target's own load balancer keeps it meanwhile."""
        if new_percent != self._weight:
            self.run("set_weight", percent="even" if new_percent is None else f"{new_percent:g}")
            self._weight = new_percent

    def milestone(self, kind: str) -> None:
        if kind == "promoted":
            self.run("promote")
        elif kind == "rollback_started":
            self.run("rollback")

    def interrupt(self, instances: int) -> str:
        try:
            self.run("rollback")
        except StagingError as exc:
            return f"rollback command failed: {exc}"
        return "rollback command run"

    # -- faults: injected by the team's own tooling (the deployer refuses `failures:` here) --
    def running_instances(self) -> list[str]:
        return []

    def inject(self, step: FaultStep) -> list[TargetEvent]:
        raise StagingError(f"{step.kind}: simlab injects faults on the local staging only")

    def set_dependency(self, fault: dict | None) -> None:
        pass

    def end_faults(self) -> None:
        pass
