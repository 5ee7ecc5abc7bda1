"""The service's process: one instance, or a host of several (`--host-socket`).

Run as `python -m simlab.staging.instance_main --scenario FILE ...` (the
supervisor does). `import simlab` loads neither pandas nor numpy, so an
instance starts with only what it serves with.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path

from prometheus_client import disable_created_metrics

from simlab.scenario import Scenario
from simlab.staging.behaviour import EXIT_CRASH_LOOP
from simlab.staging.procs import LISTEN_FD_ENV
from simlab.staging.host import serve_host
from simlab.staging.service import Instance, precise_loop, serve


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simlab.staging.instance_main",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, help="the staging scenario as JSON")
    parser.add_argument("--version", choices=("old", "new", "baseline"))
    parser.add_argument("--instance")
    parser.add_argument("--port", type=int)
    parser.add_argument("--host-socket", type=Path, default=None,
                        help="serve several instances, started and stopped over this control socket")
    parser.add_argument("--per-process", type=int, default=1, help="with --host-socket: instances it may hold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--release-epoch", type=float, default=0.0, help="wall-clock time of release.at")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.host_socket is None and None in (args.version, args.instance, args.port):
        parser.error("--version, --instance and --port are required without --host-socket")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    disable_created_metrics()  # one series fewer per counter; nothing here reads them
    scenario = Scenario.model_validate(json.loads(Path(args.scenario).read_text()))

    async def run() -> int:
        instance = Instance(scenario, version=args.version, name=args.instance, seed=args.seed,
                            release_epoch=args.release_epoch, state_dir=args.state_dir)
        if instance.behaviour.crash_loops(time.time()):
            print(f"{args.instance}: crash_loop defect: exiting at start", file=sys.stderr, flush=True)
            return EXIT_CRASH_LOOP
        fd = os.environ.pop(LISTEN_FD_ENV, None)  # the port the supervisor claimed, handed over (procs.claim_port)
        return await serve(instance, args.port, socket.socket(fileno=int(fd)) if fd else None)

    fleet = scenario.fleet
    if args.host_socket is not None:
        # Every instance of the host holds its own connections: size the selector for all of them.
        limit = (fleet.workers + fleet.queue_limit) * max(1, args.per_process)
        with asyncio.Runner(loop_factory=lambda: precise_loop(limit)) as runner:
            return runner.run(serve_host(scenario, args.host_socket, args.seed, args.state_dir))
    with asyncio.Runner(loop_factory=lambda: precise_loop(fleet.workers + fleet.queue_limit)) as runner:
        return runner.run(run())


if __name__ == "__main__":
    sys.exit(main())
