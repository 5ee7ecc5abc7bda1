"""Commands that act on a running local staging, for use as an external target's command templates.

`simlab deploy --target external` can then drive the local staging exactly as
it would drive a team's own, which is how the external path is tested end to
end. Run as `python -m simlab.staging.target_ctl --dir STATE COMMAND ...`:

  status                       print {"old": {"alive": N, "ready": N, ...}, "new": {...}}; keep weights current
  scale VERSION COUNT          start or drain instances until COUNT of VERSION run
  set-weight PERCENT|even      send PERCENT of traffic to the new version (even: by instance count)
  promote | rollback           record the milestone (rollback also sends all traffic to the stable version)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from simlab.errors import SimlabError
from simlab.staging import haproxy, procs
from simlab.staging.files import open_private, write_private
from simlab.staging.state import STATE_FILE, SavedState

WEIGHT_FILE = "target-weight.json"


def _weight(state_dir: Path) -> float | None:
    path = state_dir / WEIGHT_FILE
    return json.loads(path.read_text())["percent"] if path.exists() else None


def status(state_dir: Path) -> dict:
    """Fleet counts from the state file and HAProxy alone (no scenario, no numpy: this runs every tick)."""
    saved = SavedState.read(state_dir / STATE_FILE)
    api = haproxy.RuntimeAPI(state_dir / "haproxy.sock")
    servers = api.servers()
    members = {name: (m.record, m.stopping) for name, m in saved.members.items()}
    # The split, and every instance's equal weight in its version's backend (haproxy.py), held every tick.
    api.set_split(_weight(state_dir))
    out = {v: {"alive": 0, "ready": 0, "down": 0, "draining": 0} for v in ("old", "new")}
    for name, (record, stopping) in members.items():
        v, running, server = record.version, procs.is_running(record), servers.get(name)
        if stopping:
            out[v]["draining"] += int(running)
            continue
        out[v]["alive"] += 1
        if not running:
            out[v]["down"] += 1
        elif server is not None and server.in_rotation:
            out[v]["ready"] += 1
        if server is not None and server.weight != haproxy.EQUAL_WEIGHT:
            api.set_weight(name, haproxy.EQUAL_WEIGHT, v)
    return out


def scale(state_dir: Path, version: str, count: int, release_epoch: float) -> None:
    from simlab.staging.local_fleet import LocalFleet, apply_split
    from simlab.staging.supervisor import Staging

    st = Staging.open(state_dir)
    st.reap()  # drained instances leave HAProxy and the state
    fleet = LocalFleet(st)
    fleet.begin(release_epoch)
    alive = fleet.counts()[f"{version}_alive"]
    if count > alive:
        fleet.start(version, count - alive)
    elif count < alive:
        fleet.stop(version, alive - count)
    apply_split(st, _weight(state_dir))


def _set_weight(state_dir: Path, percent: float | None) -> None:
    write_private(state_dir / WEIGHT_FILE, json.dumps({"percent": percent}))
    status(state_dir)  # applies the split


def milestone(state_dir: Path, kind: str, show_env: str | None) -> None:
    with open_private(state_dir / "target-milestones.log") as f:
        f.write(f"{time.time():.3f} {kind}\n")
    if show_env:  # lets a test check that simlab masks a credential a command prints
        print(f"{kind}: authenticated with {show_env}={os.environ.get(show_env, '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simlab.staging.target_ctl", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="state directory of a running staging")
    parser.add_argument("--require-env", action="append", default=[], help="fail unless this variable is set")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    p = sub.add_parser("scale")
    p.add_argument("version", choices=("old", "new"))
    p.add_argument("count", type=int)
    p.add_argument("--release-epoch", type=float, default=0.0)
    p = sub.add_parser("set-weight")
    p.add_argument("percent")
    for name in ("promote", "rollback"):
        sub.add_parser(name).add_argument("--show-env", default=None)
    args = parser.parse_args(argv)
    missing = [n for n in args.require_env if not os.environ.get(n)]
    if missing:
        print(f"missing credentials: {', '.join(missing)}", file=sys.stderr)
        return 3
    state_dir = args.dir.resolve()
    if not (state_dir / STATE_FILE).exists():
        print(f"error: no staging in {state_dir}", file=sys.stderr)
        return 1
    try:
        if args.command == "status":
            print(json.dumps(status(state_dir)))
        elif args.command == "scale":
            scale(state_dir, args.version, args.count, args.release_epoch)
        elif args.command == "set-weight":
            _set_weight(state_dir, None if args.percent == "even" else float(args.percent))
        else:
            if args.command == "rollback":
                _set_weight(state_dir, 0.0)
            milestone(state_dir, args.command, args.show_env)
    except SimlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
