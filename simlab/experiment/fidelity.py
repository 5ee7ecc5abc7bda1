"""The fluid engine's domain of validity: regimes, their truth, and a judge with confidence intervals over seeds.

Each case is a scenario and the figures to check on it. Truth is an exact queueing
result (simlab.queueing) where one exists, else the request engine (itself within
1% of exact results and of Ciw) over the same seeds. A figure passes when its
relative error is within the case's tolerance once the 95% confidence interval of
the difference (over seeds, of both engines where both are random) is allowed
for: |fluid − truth| − 1.96·se ≤ tol·|truth|. Used by benchmarks/fidelity.py (the
printed grid in docs/fluid-engine.md) and tests/test_fluid_fidelity.py.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from simlab import queueing as q

Z95 = 1.96
STEADY_MEAN, STEADY_QUANTILE = 0.03, 0.05  # the floors: means ±3%, p50/p99 ±5% in steady state
OVERLOAD_FRACTION, OVERLOAD_LATENCY = 0.10, 0.15  # failed/timed-out/rejected ±10%, latencies ±15% in overload
ROLLOUT_BAD = 0.15  # bad requests ±15% in rollouts; detection within one analysis interval


@dataclass(frozen=True)
class Figure:
    """One figure of a case: how to read it from a summary, its truth (a number, or None: the request engine)."""

    name: str
    read: Callable[[dict], float]
    tolerance: float  # relative; or absolute seconds when `absolute`
    truth: float | None = None
    absolute: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    regime: str
    scenario: dict[str, Any]
    figures: tuple[Figure, ...]
    seeds: int = 8
    ci_seeds: int | None = None  # seeds the test suite runs (None: `seeds`), where fewer still judge the figures


@dataclass
class Row:
    case: str
    regime: str
    figure: str
    truth: float
    truth_se: float
    truth_source: str
    request: float | None
    fluid: float
    fluid_se: float
    tolerance: float
    absolute: bool
    speedup: float | None = None
    error: float = field(init=False)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        diff = self.fluid - self.truth
        se = math.hypot(self.truth_se, self.fluid_se)
        self.error = diff if self.absolute else (diff / abs(self.truth) if self.truth else math.inf * (diff != 0))
        allowed = self.tolerance if self.absolute else self.tolerance * abs(self.truth)
        self.passed = abs(diff) - Z95 * se <= allowed + 1e-12


# -- figures read from a run's summary ------------------------------------------------------------------------
def _key(name: str, scale: float = 1.0) -> Callable[[dict], float]:
    return lambda s: math.nan if s[name] is None else float(s[name]) * scale


def _wait(service_mean_ms: float) -> Callable[[dict], float]:
    return lambda s: math.nan if s["latency_mean_ms"] is None else s["latency_mean_ms"] - service_mean_ms


def _share_of(name: str) -> Callable[[dict], float]:
    return lambda s: s[name] / s["requests"] if s["requests"] else math.nan


# -- scenarios ---------------------------------------------------------------------------------------------------
def station(*, workers: int, queue_limit: int, rps: float, service: dict, duration: float, timeout: str = "1h",
            instances: int = 1, balancer: str = "random", **traffic: Any) -> dict[str, Any]:
    """A fleet without a release: Poisson arrivals at `rps` over `instances` instances of `workers` workers each."""
    return {
        "name": "fidelity",
        "duration": duration,
        "fleet": {"instances": instances, "workers": workers, "queue_limit": queue_limit, "service_time": service,
                  "load_balancer": balancer, "zones": 1},
        "traffic": {"rps": rps, "timeout": timeout, **traffic},
        "slo": {"availability": 99.9, "latency_threshold": "500ms"},
    }


EXP20 = {"dist": "exponential", "mean": 0.02}
LOGNORMAL = {"dist": "lognormal", "mean": "40ms", "p99": "200ms"}


def _exact_cases() -> list[Case]:
    cases = []
    lam, mu, c = 150.0, 50.0, 4  # M/M/4, ρ = 0.75
    quantile = lambda p: _solve(lambda t: 1.0 - q.mmc_sojourn_tail(c, lam, mu, t) - p)  # noqa: E731
    cases.append(Case("M/M/4 rho 0.75", "steady", station(workers=c, queue_limit=100_000, rps=lam, service=EXP20,
                                                            duration=400), (
        Figure("latency mean ms", _key("latency_mean_ms"), STEADY_MEAN, 1000 * q.mmc_mean_response(c, lam, mu)),
        Figure("latency p50 ms", _key("latency_p50_ms"), STEADY_QUANTILE, 1000 * quantile(0.50)),
        Figure("latency p99 ms", _key("latency_p99_ms"), STEADY_QUANTILE, 1000 * quantile(0.99)),
    )))
    lam, d = 7.0, 0.1  # M/D/1, ρ = 0.7
    md1 = lambda p: d + _solve(lambda t: q.md1_wait_cdf(lam, d, t) - p)  # noqa: E731
    cases.append(Case("M/D/1 rho 0.7", "steady", station(workers=1, queue_limit=100_000, rps=lam, duration=3000,
                                                          service={"dist": "constant", "value": d}), (
        Figure("latency mean ms", _key("latency_mean_ms"), STEADY_MEAN, 1000 * (d + lam * d * d / (2 * (1 - lam * d)))),
        Figure("latency p50 ms", _key("latency_p50_ms"), STEADY_QUANTILE, 1000 * md1(0.50)),
        Figure("latency p99 ms", _key("latency_p99_ms"), STEADY_QUANTILE, 1000 * md1(0.99)),
    )))
    for lam in (15.0, 24.0, 29.7, 30.3, 36.0, 45.0):  # M/M/3/5 (3 workers, 2 places), μ = 10: ρ 0.5 … 1.5
        regime = "steady" if lam < 30 else "overload"
        cases.append(Case(f"M/M/3/5 rho {lam / 30:.2f}", regime, station(
            workers=3, queue_limit=2, rps=lam, service={"dist": "exponential", "mean": 0.1}, duration=24_000 / lam), (
            Figure("blocked share", _share_of("failed_rejected"), OVERLOAD_FRACTION, q.mmck_blocking(3, 5, lam, 10.0)),
        )))
    cases.append(Case("Erlang B c 4 a 3", "steady", station(
        workers=4, queue_limit=0, rps=30.0, service={"dist": "exponential", "mean": 0.1}, duration=800), (
        Figure("blocked share", _share_of("failed_rejected"), OVERLOAD_FRACTION, q.erlang_b(4, 3.0)),
    )))
    p_to, served = q.mm1_deadline(8.0, 10.0, 1.0)
    cases.append(Case("M/M/1 deadline 1s rho 0.8", "overload", station(
        workers=1, queue_limit=100_000, rps=8.0, service={"dist": "exponential", "mean": 0.1}, duration=3000,
        timeout="1s"), (
        Figure("timed-out share", _share_of("failed_timeout"), OVERLOAD_FRACTION, p_to),
        Figure("latency mean ms (served)", _key("latency_mean_ms"), OVERLOAD_LATENCY, 1000 * served),
    )))
    return cases


def _engine_cases() -> list[Case]:
    cases = []
    for balancer in ("random", "round_robin", "least_outstanding"):  # 4 × M/G/2, ρ 0.8
        sc = station(instances=4, workers=2, queue_limit=100_000, rps=160.0, service=LOGNORMAL, duration=600,
                     balancer=balancer)
        cases.append(Case(f"4 x M/G/2 lognormal {balancer}", "steady", sc, (
            Figure("latency mean ms", _key("latency_mean_ms"), STEADY_MEAN),
            Figure("wait mean ms", _wait(40.0), STEADY_MEAN),
            Figure("latency p50 ms", _key("latency_p50_ms"), STEADY_QUANTILE),
            Figure("latency p99 ms", _key("latency_p99_ms"), STEADY_QUANTILE),
        )))
    for name, service in (("exponential", {"dist": "exponential", "mean": "40ms"}),
                          ("constant", {"dist": "constant", "value": "40ms"})):
        sc = station(instances=4, workers=2, queue_limit=100_000, rps=160.0, service=service, duration=600,
                     balancer="round_robin")
        cases.append(Case(f"4 x M/{'M' if name == 'exponential' else 'D'}/2 round_robin", "steady", sc, (
            Figure("latency mean ms", _key("latency_mean_ms"), STEADY_MEAN),
            Figure("latency p50 ms", _key("latency_p50_ms"), STEADY_QUANTILE),
            Figure("latency p99 ms", _key("latency_p99_ms"), STEADY_QUANTILE),
        )))
    # ρ 0.7, then 1.2 for 60 s. Deep: 64 places hold 3.2 s of work, past the 2 s timeout (timeouts bind);
    # shallow: 4 places hold 0.2 s (rejections bind). 4 instances × 4 workers × 5/s = 80/s.
    for depth, places in (("deep", 64), ("shallow", 4)):
        for balancer in ("random", "least_outstanding"):
            sc = station(instances=4, workers=4, queue_limit=places, rps=56.0, duration=300, timeout="2s",
                         service={"dist": "exponential", "mean": "200ms"}, balancer=balancer,
                         spikes=[{"at": 60, "duration": 60, "multiplier": 1.2 / 0.7}])
            figures = [Figure("failed share", _share_of("failed"), OVERLOAD_FRACTION),
                       Figure("timed-out share" if depth == "deep" else "blocked share",
                              _share_of("failed_timeout" if depth == "deep" else "failed_rejected"), OVERLOAD_FRACTION),
                       Figure("slow share", _share_of("slow"), OVERLOAD_FRACTION),
                       Figure("latency mean ms", _key("latency_mean_ms"), OVERLOAD_LATENCY),
                       Figure("latency p99 ms", _key("latency_p99_ms"), OVERLOAD_LATENCY)]
            cases.append(Case(f"spike rho 1.2 60s, {depth} queue, {balancer}", "overload", sc, tuple(figures)))
    cases += _rollout_cases()
    return cases


def _dispatch_cases() -> list[Case]:
    """Power-of-two choices on a small and a mid fleet (4 and 16 instances × 2 workers) at ρ 0.5, 0.8, 0.95."""
    cases = []
    for n in (4, 16):
        for name, service in (("exponential", {"dist": "exponential", "mean": "40ms"}), ("lognormal", LOGNORMAL)):
            for rho in (0.5, 0.8, 0.95):
                rps = rho * n * 2 / 0.04
                duration = round(POWER_OF_TWO_REQUESTS * (2 if rho > 0.9 else 1) / rps)
                sc = station(instances=n, workers=2, queue_limit=100_000, rps=rps, service=service,
                             duration=duration, balancer="power_of_two")
                cases.append(Case(f"{n} x M/{'M' if name == 'exponential' else 'G'}/2 {name} power_of_two rho {rho}",
                                  "steady", sc, ci_seeds=3, figures=(
                    Figure("latency mean ms", _key("latency_mean_ms"), STEADY_MEAN),
                    Figure("wait mean ms", _wait(40.0), STEADY_MEAN),
                    Figure("latency p50 ms", _key("latency_p50_ms"), STEADY_QUANTILE),
                    Figure("latency p99 ms", _key("latency_p99_ms"), STEADY_QUANTILE),
                )))
    return cases


POWER_OF_TWO_REQUESTS = 60_000  # requests per run of a power-of-two case (twice that at ρ 0.95)


def _rollout_cases() -> list[Case]:
    base = station(instances=6, workers=4, queue_limit=20, rps=300.0, service=LOGNORMAL, duration=600,
                   timeout="2s", balancer="least_outstanding")
    base["fleet"].update({"zones": 3, "startup": "10s",
                          "health_check": {"interval": "2s", "unhealthy_after": 2, "healthy_after": 1}})
    base.update({
        "analysis": {"interval": "30s", "failure_limit": 2, "min_requests": 30,
                     "metrics": [{"metric": "error_rate", "max": 0.02}, {"metric": "latency_p99", "max": "1s"}]},
        "rollback": {"automatic": True, "duration": "20s", "on_call": {"ack": "2m"}},
        "monitoring": {"scrape_interval": "5s", "window": "30s", "delay": "10s"},
    })
    outage = copy.deepcopy(base)  # a zone (2 of 6 instances) down for 2 min at ρ 0.62 → 0.94 on the rest
    outage["failures"] = [{"kind": "zone_outage", "zone": 0, "at": "2m", "duration": "2m"}]
    canary = copy.deepcopy(base)
    canary["release"] = {"at": "2m", "defects": [{"kind": "error_rate", "rate": 0.2}]}
    canary["strategy"] = {"kind": "canary", "steps": [{"weight": 10, "bake": "2m"}, {"weight": 50, "bake": "2m"},
                                                      {"weight": 100}]}
    gap = copy.deepcopy(base)  # big bang: every instance replaced at once, 10 s start-up, at ρ 0.62
    gap["release"] = {"at": "2m", "defects": [{"kind": "latency", "multiplier": 1.5}]}
    gap["strategy"] = {"kind": "big_bang"}
    crashes = copy.deepcopy(base)  # crashes fail what an instance holds; clients retry within their budget
    crashes["failures"] = [{"kind": "instance_crash", "mtbf": "1m", "restart": "10s"}]
    crashes["traffic"]["retries"] = {"max": 1, "backoff": "100ms", "budget": 0.2}
    interval = 30.0
    return [
        Case("crashes every minute, retried", "transient", crashes, seeds=24, figures=(
            Figure("failed share", _share_of("failed"), OVERLOAD_FRACTION),
            Figure("bad requests", _key("bad"), ROLLOUT_BAD),
        )),
        Case("zone outage 2 of 6", "transient", outage, (
            Figure("bad requests", _key("bad"), ROLLOUT_BAD),
            Figure("latency p99 ms", _key("latency_p99_ms"), OVERLOAD_LATENCY),
        )),
        Case("canary bad release (20% errors)", "rollout", canary, (
            Figure("bad requests", _key("bad"), ROLLOUT_BAD),
            Figure("detected at s", _key("detected_at_s"), interval, absolute=True),
        )),
        Case("big bang capacity gap", "rollout", gap, (
            Figure("bad requests", _key("bad"), ROLLOUT_BAD),
            Figure("failed share", _share_of("failed"), OVERLOAD_FRACTION),
            Figure("latency p99 ms", _key("latency_p99_ms"), OVERLOAD_LATENCY),
        )),
    ]


def cases() -> list[Case]:
    return _exact_cases() + _engine_cases() + _dispatch_cases()


KNOWN_GAPS: set[tuple[str, str]] = set()
"""(case, figure) rows the fluid engine does not yet hold within tolerance; simlab.engines.fluid.domain flags
each one's regime, so `--engine auto` runs the request engine there. A row leaves this set when it passes."""


# -- running and judging --------------------------------------------------------------------------------------
def _solve(f: Callable[[float], float], hi: float = 3.0) -> float:
    from scipy.optimize import brentq

    return float(brentq(f, 0.0, hi, xtol=1e-10))


def _stats(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, 0.0
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def run_case(case: Case, *, with_request: bool | None = None, seeds: int | None = None) -> list[Row]:
    """Both engines on seeds 0..n-1 (the request engine only where a figure has no exact truth, or if asked)."""
    from simlab.scenario import validate_scenario
    from simlab.simulation import simulate

    scenario = validate_scenario(copy.deepcopy(case.scenario))
    n = seeds or case.seeds
    need_request = any(f.truth is None for f in case.figures) if with_request is None else with_request
    t0 = time.perf_counter()
    fluid = [simulate(scenario, seed=s, engine="fluid").summary.values for s in range(n)]
    t_fluid = time.perf_counter() - t0
    request, t_request = None, None
    if need_request:
        t0 = time.perf_counter()
        request = [simulate(scenario, seed=s, engine="request").summary.values for s in range(n)]
        t_request = time.perf_counter() - t0
    speedup = t_request / t_fluid if t_request else None
    rows = []
    for f in case.figures:
        fl = _stats([f.read(s) for s in fluid])
        rq = _stats([f.read(s) for s in request]) if request else None
        if f.truth is not None:
            truth, truth_se, source = f.truth, 0.0, "exact"
        else:
            truth, truth_se, source = rq[0], rq[1], "request"
        rows.append(Row(case.name, case.regime, f.name, truth, truth_se, source, rq[0] if rq else None,
                        fl[0], fl[1], f.tolerance, f.absolute, speedup))
    return rows
