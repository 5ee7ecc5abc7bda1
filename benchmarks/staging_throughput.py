"""Staging fleet throughput: requests/s through HAProxy to 10 instances, and the p99 latency added above service time.

Starts a real staging (HAProxy, Prometheus, 10 aiohttp instances with a
constant service time) on 127.0.0.1, drives it with wrk (Debian's `wrk`: C,
event-driven, so it measures HAProxy and the instances rather than a Python
load generator), once through HAProxy and once straight at one instance with a
tenth of the connections (the same load per instance), and prints JSON. The
difference of the two p99s is what HAProxy adds; p99 minus the service time is
what the whole staging path adds. Target: >= 1,000 rps with < 5 ms added p99.

    apt-get install -y wrk haproxy prometheus
    .venv/bin/python benchmarks/staging_throughput.py [--seconds 10] [--connections 20] [--service-ms 10]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from simlab.scenario import parse_scenario
from simlab.scenario.staging import staging_scenario
from simlab.staging.supervisor import Staging

SCENARIO = """
name: bench-staging
duration: 60s
fleet:
  instances: {instances}
  workers: 64
  queue_limit: 256
  service_time: {service_ms}ms
  startup: 500ms
  load_balancer: round_robin
  health_check: {{interval: 1s, unhealthy_after: 2, healthy_after: 1}}
traffic: {{rps: 100, timeout: 5s}}
monitoring: {{scrape_interval: 5s, window: 30s}}
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by `pids` (from /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def wrk(url: str, connections: int, seconds: float, threads: int) -> dict:
    """Requests/s, errors and latency percentiles (ms) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency", "--timeout", "5s", url],
        capture_output=True, text=True, check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "90", "99"):
        value, unit = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        result[f"p{pct}_ms"] = round(float(value) * UNITS[unit], 3)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(errors.group(1)) if errors else 0) + (
        sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=20, help="wrk connections through HAProxy")
    parser.add_argument("--service-ms", type=float, default=10.0)
    parser.add_argument("--instances", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    scenario = staging_scenario(parse_scenario(SCENARIO.format(instances=args.instances, service_ms=args.service_ms)))
    with tempfile.TemporaryDirectory(prefix="simlab-bench-") as state:
        st = Staging.up(scenario, state)
        try:
            wrk(st.url + "/", args.connections, 2, 1)  # warm-up: connections, Python caches
            time.sleep(1.0)
            haproxy_pid = [st.services["haproxy"].pid]
            instance_pids = [m.record.pid for m in st.members.values()]
            before = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
            via_haproxy = wrk(st.url + "/", args.connections, args.seconds, 1)
            after = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
            served = via_haproxy["rps"] * args.seconds
            # CPU per request does not depend on what else runs on the machine; latency and rps do.
            via_haproxy["haproxy_cpu_us_per_request"] = round((after[0] - before[0]) / served * 1e6, 1)
            via_haproxy["instance_cpu_us_per_request"] = round((after[1] - before[1]) / served * 1e6, 1)
            one = next(iter(st.members.values())).record
            per_instance = max(1, round(args.connections / args.instances))
            direct = wrk(f"http://127.0.0.1:{one.port}/", per_instance, args.seconds, 1)
        finally:
            st.down()
    service = args.service_ms
    print(json.dumps({
        "instances": args.instances, "service_time_ms": service, "connections": args.connections,
        "seconds": args.seconds, "via_haproxy": via_haproxy, "direct_one_instance": direct,
        "rps": via_haproxy["rps"],
        "added_p99_ms": round(via_haproxy["p99_ms"] - service, 3),
        "haproxy_added_p99_ms": round(via_haproxy["p99_ms"] - direct["p99_ms"], 3),
        "target_met": via_haproxy["rps"] >= 1000 and via_haproxy["p99_ms"] - service < 5.0,
        "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
