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
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

from simlab.errors import ScenarioError, StagingError
from simlab.scenario.staging import Target
from simlab.staging.faults import FaultStep
from simlab.staging.files import open_private, private_dir
from simlab.staging.procs import ProcRecord
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


def check_url(field: str, url: str) -> None:
    """ScenarioError for a URL that parsers read differently: with a backslash, user info (`user@`) or no host.

    `http://example.com\\@127.0.0.1/` is loopback to urllib's host check and example.com to urllib3
    (Locust's client): such a URL could carry load past `--allow-host`.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        host, parts, problem = None, None, str(exc)
    else:
        problem = ("a backslash" if "\\" in url else "user info (user@host)" if "@" in parts.netloc
                   else "a control character" if any(ord(c) < 32 or ord(c) == 127 for c in url)
                   else "no host" if not host else None)
    if problem:
        raise ScenarioError(f"staging.target.{field}: expected scheme://host[:port][/path], found {problem} in "
                            f"{url!r} (the host check and Locust's HTTP client would read it differently)")


def check_hosts(target: Target, allow_hosts: tuple[str, ...] | list[str] = ()) -> None:
    """ScenarioError unless every host the target sends to is loopback or named by `--allow-host`."""
    for field in ("url", "prometheus"):
        check_url(field, getattr(target, field))
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
        self.dir = private_dir(Path(state_dir).resolve())
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
        done = _run(which, argv, self.target.command_timeout)
        with open_private(self.log) as log:
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

    def broken(self) -> str | None:
        return None  # a command that fails stops the deploy by itself

    def track_load(self, records: list[ProcRecord]) -> None:
        pass  # Locust carries this directory's mark (sweep.py): `staging down --dir` finds it

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

    def hold_weight(self, new_percent: float | None, baseline_percent: float = 0.0) -> None:
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


def _run(which: str, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a target command in its own process group; on timeout the whole group is killed, children too."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, start_new_session=True)
    except FileNotFoundError:
        raise StagingError(f"target command {which}: {argv[0]} not found") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or Ctrl-C while it runs: nothing it started outlives it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise StagingError(f"target command {which} took longer than {timeout:g}s (killed with its "
                               "children)") from None
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
