"""Several instances in one process: for fleets larger than a small machine hosts as processes.

On a 2-core VM every process wake-up is costly: ten instance processes at
100 rps each spend more CPU waking up than serving, and the queueing that
follows adds milliseconds to every request (see README, staging benchmark).
A host runs up to `per_process` instances of one version, each on its own
port with its own registry, semaphore, behaviour stream and health endpoints,
in one event loop. Instances are still started, drained, crashed and
restarted one by one, over a control socket in the state directory
(the supervisor's side: `members.HostClient`):

- `start` serves a new instance (a crash_loop defect makes it exit at once);
- `stop` drains it (readiness fails, in-flight work finishes) and closes it;
- `kill` aborts it: the listener closes and its connections are reset, so
  in-flight requests fail as in a process crash; a `crash` defect does the same;
- `status` reports each instance's state, exit code and leak bytes (a leak
  really allocates, in the host; the supervisor's limit applies per instance).

What differs from one process per instance: a crash does not free the
instance's memory until the host ends, and instances of a host share its CPU
(as containers share a node).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from simlab.staging.behaviour import EXIT_CRASH, EXIT_CRASH_LOOP
from simlab.staging.service import Instance, build_app

EXIT_KILLED = -9  # what a SIGKILLed process reports; a killed hosted instance reports the same


class Host:
    """The instances one process serves, by name."""

    def __init__(self, scenario, seed: int, state_dir: Path | None):
        self.scenario, self.seed, self.state_dir = scenario, seed, state_dir
        self.live: dict[str, dict] = {}  # name -> {"instance", "runner", "tasks"}
        self.ended: dict[str, int] = {}  # name -> exit code
        self.stopping = asyncio.Event()

    async def handle(self, req: dict) -> dict:
        op = req.get("op")
        if op == "start":
            await self.start(req["name"], req["version"], int(req["port"]), float(req.get("release_epoch", 0.0)))
            return {"ok": True}
        if op in ("stop", "kill"):
            name = req["name"]
            if name in self.live:
                if op == "stop":
                    self.live[name]["instance"].draining = True  # out of rotation from this answer on
                    self._task(name, self._drain_and_close(name))
                else:
                    await self._abort(name, EXIT_KILLED)
            return {"ok": True}
        if op == "status":
            out = {n: {"state": "running", "exit_code": None, "leak_bytes": e["instance"].leak_bytes}
                   for n, e in self.live.items()}
            out.update({n: {"state": "exited", "exit_code": c, "leak_bytes": 0} for n, c in self.ended.items()})
            return {"ok": True, "instances": out, "pid": os.getpid()}
        return {"ok": False, "error": f"unknown op {op!r} (expected start, stop, kill or status)"}

    async def start(self, name: str, version: str, port: int, release_epoch: float) -> None:
        if name in self.live:
            raise ValueError(f"instance {name} is already running here")
        self.ended.pop(name, None)
        instance = Instance(self.scenario, version=version, name=name, seed=self.seed, release_epoch=release_epoch,
                            state_dir=self.state_dir)
        if instance.behaviour.crash_loops(time.time()):
            print(f"{name}: crash_loop defect: exiting at start", file=sys.stderr, flush=True)
            self.ended[name] = EXIT_CRASH_LOOP
            return
        runner = web.AppRunner(build_app(instance), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True).start()
        self.live[name] = {"instance": instance, "runner": runner, "tasks": []}
        self._task(name, instance.housekeeping())
        crash_in = instance.behaviour.crash_after(time.time())
        if crash_in is not None:
            self._task(name, self._crash_later(name, crash_in))

    def _task(self, name: str, coro) -> None:
        self.live[name]["tasks"].append(asyncio.get_running_loop().create_task(coro))

    async def _crash_later(self, name: str, after: float) -> None:
        await asyncio.sleep(after)
        print(f"{name}: crash defect fired after {after:.1f}s", file=sys.stderr, flush=True)
        await self._abort(name, EXIT_CRASH)

    async def _drain_and_close(self, name: str) -> None:
        entry = self.live.get(name)
        if entry is None:
            return
        await entry["instance"].drain()
        await self._close(name, 0, graceful=True)

    async def _abort(self, name: str, code: int) -> None:
        await self._close(name, code, graceful=False)

    async def _close(self, name: str, code: int, graceful: bool) -> None:
        entry = self.live.pop(name, None)
        if entry is None:
            return
        current = asyncio.current_task()
        for task in entry["tasks"]:
            if task is not current:
                task.cancel()
        runner = entry["runner"]
        if not graceful:
            # A crash: stop listening, reset every connection; in-flight requests fail like a dead process's.
            for site in list(runner.sites):
                await site.stop()
            server = runner.server
            for handler in list(server.connections if server is not None else ()):
                transport = handler.transport
                if transport is not None:
                    transport.abort()
        entry["instance"].release_leak()
        await runner.cleanup()
        self.ended[name] = code


async def serve_host(scenario, socket_path: Path, seed: int, state_dir: Path | None) -> int:
    """Serve the control socket until SIGTERM/SIGINT, then drain every instance and exit 0."""
    host = Host(scenario, seed, state_dir)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stopping.set)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                reply = await host.handle(json.loads(line))
            except (ValueError, KeyError, OSError) as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(on_client, path=str(socket_path))
    os.chmod(socket_path, 0o600)
    await host.stopping.wait()
    server.close()
    for name in list(host.live):
        host.live[name]["instance"].draining = True
    await asyncio.gather(*(host._drain_and_close(n) for n in list(host.live)), return_exceptions=True)
    socket_path.unlink(missing_ok=True)
    return 0
