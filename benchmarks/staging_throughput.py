"""Staging fleet throughput: requests/s through HAProxy to 10 instances, and the p99 latency added above service time.

Starts a real staging (HAProxy, Prometheus, 10 aiohttp instances with a
constant service time) on 127.0.0.1 and measures it two ways:

- open loop (the figures that answer the target): a constant-rate generator
  (simlab.calibration.openloop: asyncio, raw keep-alive HTTP/1.1) sends at each
  `--rates` value for `--seconds`, through HAProxy and then straight at one
  instance at rate/instances (the same load per instance). Latency is counted
  from each request's *scheduled* send time, so a slow response that delays
  later sends is not hidden (no coordinated omission); the generator's own
  send lag is reported too. Added p99 = p99 - service time; HAProxy's share
  = p99 via HAProxy - p99 direct.
- closed loop (kept for comparison with earlier figures): wrk with
  `--connections`, through HAProxy and straight at one instance with a tenth
  of the connections. Closed loop at ~1,000 rps saturates this 2-core machine,
  so it measures CPU queueing rather than HAProxy.

CPU microseconds per request of HAProxy, the instances and the generator are
from /proc (exact scheduler time, independent of what else runs).
Target: >= 1,000 rps with < 5 ms added p99.

    apt-get install -y wrk haproxy prometheus
    .venv/bin/python benchmarks/staging_throughput.py [--seconds 10] [--rates 250,500,1000] [--connections 20] [--service-ms 10] [--per-process 1,5] [--instances 10] [--no-wrk]

`--no-wrk` skips the closed loop (tests/staging/test_staging_benchmarks.py runs the command both ways, at 4
instances for 1 s; `make test` installs wrk from Debian's packages).
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

from simlab.calibration.openloop import open_loop as run_open_loop
from simlab.scenario import parse_scenario
from simlab.scenario.loading import staging_scenario
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


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by `pids` and their threads (scheduler run time from /proc, exact to the ns)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def open_loop(port: int, rate: float, seconds: float) -> dict:
    """The constant-rate generator (simlab.calibration.openloop) against 127.0.0.1:port, summarised."""
    shots = run_open_loop(port, rate, seconds)
    lat = sorted(shots.latency)
    elapsed = float((shots.due + shots.latency).max()) if lat else seconds
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 3) if lat else None
    return {
        "offered_rps": rate, "achieved_rps": round(len(lat) / elapsed, 1), "requests": shots.sent,
        "errors": int((shots.status >= 300).sum()) + shots.unanswered,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "send_lag_p99_ms": round(shots.lag_p99 * 1e3, 3),
        "generator_cpu_us_per_request": round(shots.cpu_seconds / max(1, len(lat)) * 1e6, 1),
    }


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
    parser.add_argument("--rates", default="250,500,1000", help="open-loop offered rates through HAProxy (rps)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the closed-loop wrk runs")
    parser.add_argument("--per-process", default="1,5",
                        help="instances per process to measure, comma-separated (1: a process each)")
    args = parser.parse_args()
    if not args.no_wrk and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    scenario = staging_scenario(parse_scenario(SCENARIO.format(instances=args.instances, service_ms=args.service_ms)))
    configs = {}
    for per in (int(x) for x in args.per_process.split(",")):
        configs[f"per_process_{per}"] = measure(scenario, args, per)
        time.sleep(1.0)
    out = {"instances": args.instances, "service_time_ms": args.service_ms, "seconds": args.seconds, **configs,
           "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
    print(json.dumps(out, indent=2))


def measure(scenario, args, per_process: int) -> dict:
    """Open- (and closed-) loop figures of one staging configuration."""
    via_haproxy = direct = None
    with tempfile.TemporaryDirectory(prefix="simlab-bench-") as state:
        st = Staging.up(scenario, state, per_process=per_process)
        try:
            haproxy_pid = [st.services["haproxy"].pid]
            instance_pids = sorted({m.record.pid for m in st.members.values()})
            one = next(iter(st.members.values())).record
            haproxy_port = int(st.url.rsplit(":", 1)[1])
            open_loop(haproxy_port, 200, 2)  # warm-up: connections, Python caches
            time.sleep(1.0)
            rates = []
            for rate in (float(r) for r in args.rates.split(",")):
                before = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
                via = open_loop(haproxy_port, rate, args.seconds)
                after = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
                served = max(1.0, via["achieved_rps"] * args.seconds)
                via["haproxy_cpu_us_per_request"] = round((after[0] - before[0]) / served * 1e6, 1)
                via["instance_cpu_us_per_request"] = round((after[1] - before[1]) / served * 1e6, 1)
                time.sleep(1.0)
                direct = open_loop(one.port, rate / args.instances, args.seconds)
                rates.append({
                    "offered_rps": rate, "via_haproxy": via, "direct_one_instance": direct,
                    "added_p99_ms": round(via["p99_ms"] - args.service_ms, 3),
                    "direct_added_p99_ms": round(direct["p99_ms"] - args.service_ms, 3),
                    "haproxy_added_p99_ms": round(via["p99_ms"] - direct["p99_ms"], 3),
                })
                time.sleep(1.0)
            if args.no_wrk:
                raise _Done
            wrk(st.url + "/", args.connections, 2, 1)  # warm-up
            time.sleep(1.0)
            before = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
            via_haproxy = wrk(st.url + "/", args.connections, args.seconds, 1)
            after = cpu_seconds(haproxy_pid), cpu_seconds(instance_pids)
            served = via_haproxy["rps"] * args.seconds
            # CPU per request does not depend on what else runs on the machine; latency and rps do.
            via_haproxy["haproxy_cpu_us_per_request"] = round((after[0] - before[0]) / served * 1e6, 1)
            via_haproxy["instance_cpu_us_per_request"] = round((after[1] - before[1]) / served * 1e6, 1)
            per_instance = max(1, round(args.connections / args.instances))
            direct = wrk(f"http://127.0.0.1:{one.port}/", per_instance, args.seconds, 1)
        except _Done:
            pass
        finally:
            st.down()
    service = args.service_ms
    at_1000 = next((r for r in rates if r["offered_rps"] >= 1000), None)
    out = {
        "processes": len(instance_pids),
        "open_loop": rates,
        "open_loop_target_met": bool(at_1000 and at_1000["via_haproxy"]["achieved_rps"] >= 0.99 * at_1000["offered_rps"]
                                     and at_1000["added_p99_ms"] < 5.0 and at_1000["via_haproxy"]["errors"] == 0),
    }
    if via_haproxy is not None:  # closed loop (wrk), the keys of earlier runs
        out.update({
            "connections": args.connections, "via_haproxy": via_haproxy, "direct_one_instance": direct,
            "rps": via_haproxy["rps"],
            "added_p99_ms": round(via_haproxy["p99_ms"] - service, 3),
            "haproxy_added_p99_ms": round(via_haproxy["p99_ms"] - direct["p99_ms"], 3),
            "target_met": via_haproxy["rps"] >= 1000 and via_haproxy["p99_ms"] - service < 5.0,
        })
    return out


class _Done(Exception):
    """Skip the closed-loop runs."""


if __name__ == "__main__":
    main()
