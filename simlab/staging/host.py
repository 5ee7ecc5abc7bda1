"""Several instances in one process: for fleets larger than a small machine hosts as processes.

On a 2-core VM every process wake-up is costly: ten instance processes at
100 rps each spend more CPU waking up than serving, and the queueing that
follows adds milliseconds to every request (see README, staging benchmark).
A host runs up to `per_process` instances of one version, each on its own
port with its own registry, semaphore, behaviour stream and health endpoints,
in one event loop. Instances are still started, drained, crashed and
restarted one by one, over a control socket in the state directory
(the supervisor's side: `members.HostClient`):

- `start` serves a new instance on the listening socket sent with the request
  (SCM_RIGHTS: the supervisor claimed the port, see procs.claim_port); a
  crash_loop defect makes it exit at once;
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
import socket
import sys
import time
from pathlib import Path

from aiohttp import web

from simlab.staging.behaviour import EXIT_CRASH, EXIT_CRASH_LOOP
from simlab.staging.service import Instance, build_app, site

EXIT_KILLED = -9  # what a SIGKILLed process reports; a killed hosted instance reports the same


class Host:
    """The instances one process serves, by name."""

    def __init__(self, scenario, seed: int, state_dir: Path | None):
        self.scenario, self.seed, self.state_dir = scenario, seed, state_dir
        self.live: dict[str, dict] = {}  # name -> {"instance", "runner", "tasks"}
        self.ended: dict[str, int] = {}  # name -> exit code
        self.stopping = asyncio.Event()

    async def handle(self, req: dict, listen: socket.socket | None = None) -> dict:
        """Answer one control request; `listen` (the port claimed for a `start`) is owned by the instance then."""
        op = req.get("op")
        if op != "start" and listen is not None:
            listen.close()
        if op == "start":
            await self.start(req["name"], req["version"], int(req["port"]), float(req.get("release_epoch", 0.0)),
                             listen)
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
            out = {n: {"state": "exited", "exit_code": c, "leak_bytes": 0} for n, c in self.ended.items()}
            # a live instance is what runs under its name, even while the close of an earlier one is finishing
            out.update({n: {"state": "running", "exit_code": None, "leak_bytes": e["instance"].leak_bytes}
                        for n, e in self.live.items()})
            return {"ok": True, "instances": out, "pid": os.getpid()}
        return {"ok": False, "error": f"unknown op {op!r} (expected start, stop, kill or status)"}

    async def start(self, name: str, version: str, port: int, release_epoch: float,
                    listen: socket.socket | None = None) -> None:
        if name in self.live:
            raise ValueError(f"instance {name} is already running here")
        self.ended.pop(name, None)
        instance = Instance(self.scenario, version=version, name=name, seed=self.seed, release_epoch=release_epoch,
                            state_dir=self.state_dir)
        if instance.behaviour.crash_loops(time.time()):
            print(f"{name}: crash_loop defect: exiting at start", file=sys.stderr, flush=True)
            self.ended[name] = EXIT_CRASH_LOOP
            if listen is not None:
                listen.close()
            return
        runner = web.AppRunner(build_app(instance), access_log=None, handle_signals=False)
        await runner.setup()
        await site(runner, port, listen).start()
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
            for listening in list(runner.sites):
                await listening.stop()
            server = runner.server
            for handler in list(server.connections if server is not None else ()):
                transport = handler.transport
                if transport is not None:
                    transport.abort()
        entry["instance"].release_leak()
        await runner.cleanup()
        if name not in self.live:  # restarted under the same name while this close awaited: that one runs
            self.ended[name] = code


async def serve_host(scenario, socket_path: Path, seed: int, state_dir: Path | None) -> int:
    """Serve the control socket until SIGTERM/SIGINT, then drain every instance and exit 0."""
    host = Host(scenario, seed, state_dir)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stopping.set)

    socket_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    os.chmod(socket_path, 0o600)
    server.listen(64)
    server.setblocking(False)
    accepting = loop.create_task(_accept(server, host))
    await host.stopping.wait()
    accepting.cancel()
    server.close()
    for name in list(host.live):
        host.live[name]["instance"].draining = True
    await asyncio.gather(*(host._drain_and_close(n) for n in list(host.live)), return_exceptions=True)
    socket_path.unlink(missing_ok=True)
    return 0


async def _accept(server: socket.socket, host: Host) -> None:
    loop = asyncio.get_running_loop()
    while True:
        conn, _ = await loop.sock_accept(server)
        loop.create_task(_answer(conn, host))


async def _answer(conn: socket.socket, host: Host) -> None:
    """One request on the control socket: a JSON line (with a listening socket for `start`), a JSON line back."""
    loop = asyncio.get_running_loop()
    with conn:
        conn.setblocking(False)
        try:
            line, fds = await _receive(conn)
            for fd in fds[1:]:
                os.close(fd)
            listen = socket.socket(fileno=fds[0]) if fds else None  # a started instance's site owns it
            try:
                reply = await host.handle(json.loads(line), listen)
            except (ValueError, KeyError, OSError) as exc:
                if listen is not None:
                    listen.close()
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            await loop.sock_sendall(conn, json.dumps(reply).encode() + b"\n")
        except OSError:
            pass  # the supervisor gave up waiting: nothing to answer


async def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    """A line from `conn` and the descriptors that came with it (SCM_RIGHTS, which asyncio's streams drop)."""
    loop = asyncio.get_running_loop()
    data, fds = b"", []
    while not data.endswith(b"\n"):
        readable = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
        try:
            chunk, got, _, _ = socket.recv_fds(conn, 65536, 4)
        except BlockingIOError:
            continue
        fds += got
        if not chunk:
            break
        data += chunk
    return data, fds
