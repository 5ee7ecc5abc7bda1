"""What a simulation will cost before it starts: the CPU time and memory it needs, from the scenario alone.

The request engine's cost is its requests: every request and attempt is an
event; its memory is per simulated second (latency histograms, ledgers,
the timeline), and its fleet adds a health-check event per instance and
interval. The fluid engine's cost is its
ticks (one per simulated second, for a batch of runs in lockstep) and the
instances it tracks; its memory is arrays of one value per simulated second
(rates, arrival draws, and the timeline of a recorded run) and a ring of
monitoring windows per run. Both pay per crash and per controller wake-up.

The costs per unit were measured on this project's 2-core machines
(`benchmarks/footprint.py` prints them). They hold within a factor of about
two, which is all a refusal needs: what it exists to refuse is orders of
magnitude beyond a limit, and a run near a limit can be let through with
`--max-work` or `--no-limits`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from simlab.errors import ScenarioError
from simlab.units import format_duration

# request engine (measured: benchmarks/footprint.py); it keeps latencies per second, not per request
REQUEST_CPU_PER_ATTEMPT = 3.5e-6
REQUEST_CPU_PER_BUSY_SECOND = 0.3e-6  # each second an attempt keeps a worker busy is booked one by one,
# also after the run's end (engines/request/engine.py, _add_work)
REQUEST_BYTES_PER_ATTEMPT = 200  # attempts in flight only: at most every worker's and every queue's
REQUEST_CPU_PER_SECOND = 25e-6  # the controller, monitoring and the per-second ledgers
REQUEST_CPU_PER_CHECK = 2e-6
REQUEST_BYTES_PER_SECOND = 3000  # per-second ledgers and latency histograms (fuller at higher rates), the timeline
REQUEST_BYTES_PER_TASK = 20e6  # its tables and modules, in each process that runs one
REQUEST_BYTES_PER_INSTANCE = 3000
# fluid engine
FLUID_CPU_PER_TICK = 450e-6  # a tick of a batch, whatever its size ...
FLUID_CPU_PER_RUN_TICK = 8e-6  # ... and per run in it ...
FLUID_CPU_PER_RECORDED_TICK = 150e-6  # ... and per run that keeps its timeline (`simlab run`)
FLUID_CPU_PER_INSTANCE_SECOND = 0.01e-6  # instances are arrays (a transition per row, not an object)
FLUID_BYTES_PER_SECOND = 150  # rates sampled 16 times a second, while they are averaged
FLUID_BYTES_PER_RUN_SECOND = 8  # arrival draws
FLUID_BYTES_PER_RECORDED_SECOND = 2200  # the timeline of a recorded run
FLUID_BYTES_PER_RING_SECOND = 220  # monitoring windows: 3x3 cumulative counts and latency states per second
FLUID_BYTES_PER_INSTANCE = 250
FLUID_BYTES_PER_TASK = 60e6
# both
CPU_PER_EVENT = 20e-6  # a crash, an OOM kill, a restart
CPU_PER_WAKEUP = 30e-6  # a controller wake-up beyond one a second (alert checks, analyses)
SHORTEST = 1e-6  # seconds: no interval counts as shorter (a zero-length interval would be infinitely many events)

DEFAULT_MAX_WORK = 86400.0
"""CPU seconds a command may need before simlab refuses to start it (`--max-work` raises it)."""
MEMORY_SHARE = 0.8
"""Of the memory available when the command starts."""


@dataclass(frozen=True)
class Footprint:
    """The estimated cost of simulating `runs` runs of each of `points` scenarios on `engine`."""

    engine: str
    runs: int  # all runs, every point
    requests: float  # simulated requests, all runs
    seconds: float  # simulated seconds of the longest run
    instances: int  # the largest fleet
    cpu: float  # CPU seconds, all runs
    memory: float  # peak bytes: the runs in memory at once


@dataclass(frozen=True)
class Limits:
    cpu: float | None  # CPU seconds; None: no limit
    memory: float | None  # bytes; None: no limit
    memory_basis: str = ""  # how the memory limit was found, for the message


def expected_requests(scenario) -> float:
    """Requests offered over one run: the base rate, its pattern's mean and its spikes (no numpy, no arrays)."""
    traffic, duration = scenario.traffic, scenario.duration
    pattern = traffic.pattern
    mean, peak = 1.0, 1.0
    if pattern.kind == "diurnal":
        amplitude = (pattern.peak_to_trough - 1.0) / (pattern.peak_to_trough + 1.0)
        w = 2 * math.pi / pattern.period
        integral = duration + amplitude / w * (math.sin(w * (duration - pattern.peak_at)) + math.sin(w * pattern.peak_at))
        mean, peak = integral / duration, 1.0 + amplitude
    elif pattern.kind == "replay" and pattern.rates:
        average = sum(pattern.rates) / len(pattern.rates)
        peak = max(pattern.rates) / average if average > 0 else 0.0
        mean = 1.0 if average > 0 else 0.0
    requests = traffic.rps * mean * duration
    for spike in traffic.spikes:
        overlap = max(0.0, min(spike.at + spike.duration, duration) - spike.at)
        requests += traffic.rps * peak * max(spike.multiplier - 1.0, 0.0) * overlap
    return requests


def _attempts(scenario) -> float:
    retries = scenario.traffic.retries
    return expected_requests(scenario) * (1.0 + (retries.budget if retries.max > 0 else 0.0))


def _request_span(scenario) -> float:
    """Simulated seconds of a request-engine run: the run, then the drain of the requests still in flight
    (simlab/engines/request/engine.py: every attempt of a request may time out and back off)."""
    retries, traffic = scenario.traffic.retries, scenario.traffic
    return scenario.duration + (retries.max + 1) * (traffic.timeout + retries.backoff * 2**retries.max) + 2


def _mean_service(scenario) -> float:
    """Mean seconds an attempt keeps a worker busy: the service time, slowed by every latency defect and dependency."""
    spec = scenario.fleet.service_time
    if spec.dist == "constant":
        mean = spec.value
    elif spec.dist == "exponential":
        mean = spec.mean
    elif spec.dist == "lognormal":
        mu, sigma = spec.mu_sigma()
        mean = math.exp(mu + sigma * sigma / 2)
    else:
        mean = sum(spec.samples) / len(spec.samples)
    defects = scenario.release.defects if scenario.release is not None else ()
    for d in defects:
        if d.kind == "latency":
            mean = mean * _typical(d.multiplier) + _typical(d.add)
        elif d.kind == "memory_leak":
            mean *= _typical(d.max_slowdown)
    return mean + sum(f.add_latency for f in scenario.failures if f.kind == "dependency")


def _typical(value) -> float:
    """A number, or the mean of a defect parameter's distribution."""
    if isinstance(value, (int, float)):
        return float(value)
    if value.dist == "uniform":
        return (value.low + value.high) / 2
    if value.dist == "choice":
        weights = value.weights or [1.0] * len(value.values)
        return sum(v * w for v, w in zip(value.values, weights)) / sum(weights)
    mu, sigma = value.mu_sigma()
    return math.exp(mu + sigma * sigma / 2)


def _instance_seconds(scenario) -> float:
    """Instance-seconds of one run: at most the fleet twice over (old and new side by side) once a release starts."""
    return scenario.fleet.instances * scenario.duration * (2.0 if scenario.release is not None else 1.0)


def _shortest(value) -> float:
    """A number, or the smallest value a defect parameter's distribution is likely to draw."""
    if isinstance(value, (int, float)):
        return float(value)
    if value.dist == "uniform":
        return value.low
    if value.dist == "choice":
        return min(value.values)
    mu, sigma = value.mu_sigma()
    return math.exp(mu - 3 * sigma)


def _events(scenario) -> float:
    """Crashes, OOM kills and restarts in one run."""
    per_second = 0.0
    for failure in scenario.failures:
        if failure.kind == "instance_crash":
            per_second += 1.0 / max(failure.mtbf + failure.restart, SHORTEST)
    if scenario.release is not None:
        for defect in scenario.release.defects:
            if defect.kind == "crash":
                per_second += 1.0 / max(_shortest(defect.mtbf) + scenario.fleet.startup, SHORTEST)
            elif defect.kind == "memory_leak":
                per_second += 1.0 / max(_shortest(defect.oom_after) + scenario.fleet.startup, SHORTEST)
            elif defect.kind == "crash_loop":
                per_second += 1.0 / max(scenario.fleet.startup, 1.0)
    return _instance_seconds(scenario) * per_second


def _control(scenario) -> float:
    """CPU of the controller's wake-ups beyond one a second (alert checks every scrape, analyses)."""
    intervals = [scenario.monitoring.scrape_interval]
    if scenario.analysis is not None:
        intervals.append(scenario.analysis.interval)
    per_second = sum(1.0 / max(i, SHORTEST) for i in intervals if i < 1.0)
    return scenario.duration * per_second * CPU_PER_WAKEUP


def _ring_seconds(scenario) -> float:
    mon, alert = scenario.monitoring, scenario.slo.alert
    return mon.delay + mon.scrape_interval + max(mon.window, alert.long_window, alert.short_window)


def footprint(points: Sequence, engine: str, runs: int = 1, batch: int = 1, parallel: int = 1,
              record: bool = False) -> Footprint:
    """The cost of `runs` runs of every scenario in `points` on `engine` ("request" or "fluid").

    `batch`: fluid runs simulated in lockstep in one task; `parallel`: tasks in memory at once;
    `record`: a single fluid run that keeps its per-second timeline (`simlab run`).
    """
    cpu = memory = requests = seconds = 0.0
    tasks = 0
    for s in points:
        extra = runs * (_events(s) * CPU_PER_EVENT + _control(s))
        seconds = max(seconds, s.duration)
        attempts = _attempts(s)
        requests += runs * expected_requests(s)
        if engine == "request":
            span = _request_span(s)
            checks = _instance_seconds(s) * span / s.duration / max(s.fleet.health_check.interval, SHORTEST)
            service, workers = _mean_service(s), 2 * s.fleet.instances * s.fleet.workers
            # busy seconds: as many as the attempts ask for, at most what every worker can give (to the last
            # attempt's end, which may be long after the run)
            busy = min(attempts * service, workers * (span + service)) * REQUEST_CPU_PER_BUSY_SECOND
            cpu += runs * (attempts * REQUEST_CPU_PER_ATTEMPT + busy + checks * REQUEST_CPU_PER_CHECK
                           + span * REQUEST_CPU_PER_SECOND) + extra
            in_flight = min(attempts, 2 * s.fleet.instances * (s.fleet.workers + s.fleet.queue_limit))
            per_task = (REQUEST_BYTES_PER_TASK + in_flight * REQUEST_BYTES_PER_ATTEMPT + span * REQUEST_BYTES_PER_SECOND
                        + s.fleet.instances * REQUEST_BYTES_PER_INSTANCE)
            tasks += runs
        else:
            size = max(1, min(batch, runs))
            batches = math.ceil(runs / size)
            ticks = math.ceil(s.duration)
            per_tick = FLUID_CPU_PER_TICK + size * (FLUID_CPU_PER_RUN_TICK + (FLUID_CPU_PER_RECORDED_TICK if record else 0))
            cpu += batches * ticks * per_tick + runs * _instance_seconds(s) * FLUID_CPU_PER_INSTANCE_SECOND + extra
            per_second = FLUID_BYTES_PER_SECOND + size * (FLUID_BYTES_PER_RUN_SECOND
                                                          + (FLUID_BYTES_PER_RECORDED_SECOND if record else 0))
            per_run = _ring_seconds(s) * FLUID_BYTES_PER_RING_SECOND + s.fleet.instances * FLUID_BYTES_PER_INSTANCE
            per_task = FLUID_BYTES_PER_TASK + ticks * per_second + size * per_run
            tasks += batches
        memory = max(memory, per_task)
    instances = max((s.fleet.instances for s in points), default=0)
    return Footprint(engine, runs * len(points), requests, seconds, instances, cpu,
                     memory * max(1, min(parallel, tasks)))


def available_memory() -> tuple[int | None, str]:
    """(bytes of memory this process may still use, where that figure comes from); (None, ...) if unknown."""
    found: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "available"))
    except (OSError, ValueError, IndexError):
        try:
            found.append((os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free"))
        except (OSError, ValueError, AttributeError):
            pass
    try:  # a container's own limit (cgroup v2), when lower than the machine's
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append((int(limit) - int((cgroup / "memory.current").read_text()), "left under the cgroup's limit"))
    except (OSError, ValueError):
        pass
    if not found:
        return None, "unknown"
    return min(found)


def machine_limits(max_work: float | None = None, no_limits: bool = False) -> Limits:
    """The limits of this machine now: `max_work` CPU seconds (default DEFAULT_MAX_WORK), most of its free memory."""
    if no_limits:
        return Limits(None, None)
    available, basis = available_memory()
    memory = None if available is None else MEMORY_SHARE * available
    where = f"{MEMORY_SHARE:.0%} of the {_bytes(available)} {basis}" if available is not None else ""
    return Limits(DEFAULT_MAX_WORK if max_work is None else max_work, memory, where)


def _bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2g} {unit}" if n / scale < 100 else f"{n / scale:,.0f} {unit}"
    return f"{n:.0f} bytes"


def _count(n: float) -> str:
    return f"{n:,.0f}" if n < 1e7 else f"{n:.2g}"


def _cpu(seconds: float) -> str:
    years = seconds / (365 * 86400)
    return format_duration(seconds) if years < 1 else f"{years:,.0f} years" if years < 1e6 else f"{years:.2g} years"


def what(fp: Footprint) -> str:
    """What a footprint simulates, in the field's words."""
    runs = f"{fp.runs:,} run{'s' if fp.runs != 1 else ''}"
    if fp.engine == "request":
        spread = "in 1 run" if fp.runs == 1 else f"over {runs}"
        return f"the request engine would simulate about {_count(fp.requests)} requests {spread}"
    return f"the fluid engine would simulate {runs} of {fp.seconds:,.0f} s on {fp.instances:,} instances"


def describe(fp: Footprint, limits: Limits) -> str:
    """One line for `simlab check`: what the runs need and the limits they are within."""
    runs = "one run" if fp.runs == 1 else f"{fp.runs:,} runs"
    verb = "needs" if fp.runs == 1 else "need"
    line = f"{runs} on the {fp.engine} engine {verb} about {_cpu(fp.cpu)} of CPU and {_bytes(fp.memory)} of memory"
    if limits.cpu is None and limits.memory is None:
        return line + " (no limits)"
    cpu = _cpu(limits.cpu) if limits.cpu is not None else "none"
    return line + f" (limits: {cpu} of CPU, {_bytes(limits.memory)} of memory)"


def check_footprint(fp: Footprint, limits: Limits, source: str) -> None:
    """Raise ScenarioError (one line: the estimate, the limit, the flags) if `fp` exceeds a limit."""
    over = []
    if limits.cpu is not None and fp.cpu > limits.cpu:
        over.append(f"about {_cpu(fp.cpu)} of CPU, more than the limit of {_cpu(limits.cpu)}")
    if limits.memory is not None and fp.memory > limits.memory:
        over.append(f"about {_bytes(fp.memory)} of memory, more than the limit of {_bytes(limits.memory)} "
                    f"({limits.memory_basis})")
    if over:
        raise ScenarioError(f"{source}: too large to simulate here: {what(fp)}: {', and '.join(over)}; "
                            f"raise the CPU limit with --max-work DURATION or lift both with --no-limits")
