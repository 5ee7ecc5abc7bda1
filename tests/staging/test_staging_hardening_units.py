"""Hardening of the staging's edges, without a running fleet: the state file, ports, URLs, commands, paths."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from simlab.errors import ScenarioError, StagingError
from simlab.scenario.staging import Target
from simlab.staging import procs
from simlab.staging.external import ExternalFleet, check_hosts
from simlab.staging.members import Allocation, Member
from simlab.staging.state import STATE_FILE, SavedState, StagingInfo, StateFileError
from simlab.staging.supervisor import Staging
from staging_helpers import SMALL, small_scenario, wait_for

GOOD = SavedState(
    StagingInfo(scenario="s", created=1.0, port=20001, stats_port=20002, prometheus_port=20003, identity="ab" * 16),
    Allocation(spare_ports=[20010]), {"haproxy": procs.ProcRecord(name="haproxy", role="haproxy", pid=4242, port=20001,
                                                               started=7)},
    {}, {"old-0": Member(procs.ProcRecord(name="old-0", role="instance", pid=4343, port=20004, started=8,
                                          version="old"))},
)


@pytest.mark.parametrize("damage,said", [
    (lambda text: text[: len(text) // 2], "not JSON"),
    (lambda text: "", "empty"),
    (lambda text: "[1, 2]", "expected a JSON object, found list"),
    (lambda text: json.dumps({"instances": {}}), "scenario: field required, found nothing"),
    (lambda text: text.replace('"pid": 4343', '"pid": "x"'), "instances.old-0.pid"),
    (lambda text: text.replace('"version": "old"', '"version": "beta"'), "instances.old-0.version"),
])
def test_a_damaged_state_file_is_one_line_naming_what_is_wrong_and_how_to_clean_up(tmp_path, damage, said):
    path = tmp_path / STATE_FILE
    GOOD.write(path)
    path.write_text(damage(path.read_text()))
    with pytest.raises(StateFileError) as caught:
        Staging.open(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and said in message, message
    assert f"{path} is damaged" in message and f"simlab staging down --dir {tmp_path}" in message
    assert caught.value.exit_code == 2


def test_status_of_a_truncated_state_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / STATE_FILE
    GOOD.write(path)
    path.write_text(path.read_text()[:100])
    run = subprocess.run([sys.executable, "-m", "simlab", "staging", "status", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_the_state_file_is_private_and_a_reader_never_sees_half_of_it(tmp_path):
    path = tmp_path / STATE_FILE
    GOOD.write(path)
    seen, stop = [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(SavedState.read(path).members["old-0"].record.pid)
            except StateFileError as exc:  # a half-written file would land here
                seen.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            GOOD.members["old-0"].record.pid = 5000 + i
            GOOD.write(path)
    finally:
        stop.set()
        reader.join()
    assert seen and not [s for s in seen if isinstance(s, Exception)]
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]  # no temporary file left behind


def test_a_port_claimed_for_an_instance_cannot_be_taken_and_one_in_use_is_not_claimed():
    port = procs.reserve_port()
    claim = procs.claim_port(port)
    assert claim is not None
    try:
        for reuse in (False, True):  # not even by a server that sets SO_REUSEADDR
            with socket.socket() as other:
                if reuse:
                    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with pytest.raises(OSError):
                    other.bind(("0.0.0.0", port))
        assert procs.claim_port(port) is None  # a second claim finds it taken
    finally:
        claim.close()
    squatter = socket.create_server(("127.0.0.1", procs.reserve_port()))
    try:
        assert procs.claim_port(squatter.getsockname()[1]) is None
    finally:
        squatter.close()


def _target(**fields) -> Target:
    commands = {k: "true" for k in ("start_new_version", "set_weight", "promote", "rollback", "status")}
    return Target.model_validate({"url": "http://127.0.0.1:1", "prometheus": "http://127.0.0.1:2",
                                  "commands": {**commands, **fields.pop("commands", {})}, **fields})


@pytest.mark.parametrize("url,said", [
    ("http://example.com\\@127.0.0.1:8080", "a backslash"),
    ("http://127.0.0.1:8080\\@example.com", "a backslash"),
    ("http://user:pw@127.0.0.1:8080", "user info"),
    ("http://example.com@127.0.0.1", "user info"),
])
def test_target_urls_with_a_backslash_or_user_info_are_refused(url, said):
    with pytest.raises(ScenarioError, match=f"staging.target.url: .*{said}"):
        check_hosts(_target(url=url))
    check_hosts(_target(url="http://127.0.0.1:8080/shop"))  # a path is fine


def test_a_target_command_that_times_out_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    status = f"sh -c 'sleep 60 & echo $! > {pidfile}; wait'"
    fleet = ExternalFleet(_target(commands={"status": status}, command_timeout="500ms"), tmp_path / "ext")
    t0 = time.monotonic()
    with pytest.raises(StagingError, match="took longer than 0.5s"):
        fleet.run("status")
    assert time.monotonic() - t0 < 10
    child = int(pidfile.read_text())
    wait_for(lambda: procs.start_ticks(child) is None, 5, "the command's own child to be gone too")


def test_a_state_directory_too_long_for_a_unix_socket_is_refused_naming_the_limit(tmp_path):
    deep = tmp_path / ("d" * (120 - len(str(tmp_path))))
    with pytest.raises(ScenarioError, match="the limit is 97") as caught:
        Staging.up(small_scenario(), deep)
    assert "\n" not in str(caught.value) and not deep.exists()  # refused before anything was made


def test_staging_up_with_zero_instances_per_process_exits_2(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SMALL)
    run = subprocess.run([sys.executable, "-m", "simlab", "staging", "up", str(path), "--dir", str(tmp_path / "st"),
                          "--instances-per-process", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip() == "error: --instances-per-process: expected 1 or more, found 0"
    assert not (tmp_path / "st").exists()


def test_an_instance_restarted_while_its_crash_is_being_closed_reads_as_running():
    """A host's close of a crashed instance awaits its listener and connections; a restart under the same name can
    land in between. The finished close must not mark the new instance exited (the supervisor would start it a
    second time: "instance new-0 is already running here"), and status reports what runs under the name."""
    import asyncio

    from simlab.staging.host import EXIT_KILLED, Host
    from simlab.staging.procs import claim_port

    from staging_helpers import small_scenario

    async def scenario_of_the_race() -> dict:
        host = Host(small_scenario(), seed=1, state_dir=None)
        listens = [claim_port(0) for _ in range(2)]  # the OS picks free loopback ports
        ports = [(sock.getsockname()[1], sock) for sock in listens]
        await host.start("new-0", "v2", ports[0][0], 0.0, ports[0][1])
        closing = asyncio.create_task(host._abort("new-0", EXIT_KILLED))
        await asyncio.sleep(0)  # the close has taken new-0 out of `live` and awaits its listener
        assert "new-0" not in host.live and not closing.done()
        await host.start("new-0", "v2", ports[1][0], 0.0, ports[1][1])
        await closing
        status = await host.handle({"op": "status"})
        for name in list(host.live):
            await host._abort(name, EXIT_KILLED)
        return status["instances"]["new-0"]

    assert asyncio.run(scenario_of_the_race())["state"] == "running"
