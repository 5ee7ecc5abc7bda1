"""Which service-time distribution measured latencies follow: maximum-likelihood fits compared by AIC, checked by KS.

A request's latency at low load is its service time plus an overhead (the
HTTP round trip, the server's own handling), measured separately as the
latency of a request that does no work. The overhead is not a constant: on
a busy machine it spreads by as much as a short service time. So each family
is fitted to the latencies as the *sum* of a service time and an overhead
drawn from the measured overheads (the likelihood of the convolution, over 48
quantiles of the overhead), not to latencies minus the mean overhead, which
would leave the shortest requests near or below zero and favour the wrong
shape. With no overhead measured (a recording), the overhead is an unknown
constant fitted with the family (a shift, at most 0.9x the shortest latency):
a plain fit to latencies that carry a round trip thins the tail (a log-normal
through Locust's latencies: p99 4 ms, 5%, short).

Candidates are the scenario's families (constant, exponential, log-normal,
empirical) and the gamma, which the scenario format writes as its quantiles
(an `empirical` spec). The rule, in order:

1. constant, when the latencies spread no more than the overhead itself
   (standard deviation within 1.5x the overhead's, or under 5% of the mean
   when no overhead was measured): a fitted shape would describe the noise;
2. else the exponential, log-normal or gamma with the lowest AIC
   (2k - 2 log L; an exponential is a gamma of shape 1, so the gamma must
   earn its extra parameter);
3. that fit is kept unless its Kolmogorov-Smirnov distance to the latencies
   exceeds both 0.05 and the 1% critical value (1.63/sqrt(n)); then no family
   fits and the empirical quantiles (latencies less the mean overhead) are
   written instead.

What is written (`spec`) is the service time *as users see it*: the fitted
one plus the overhead their requests meet on the way (`path` overheads, e.g.
a request that does no work sent through the balancer; a recording's fitted
shift), since the scenario has no key for a time that adds to latency without
holding a worker. A log-normal is written by its mean and p99 (of the sum,
computed exactly from the mixture), the other families as quantiles.

SciPy does the optimisation (Nelder-Mead on log parameters from the plain
fits of `scipy.stats`) and the special functions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

QUANTILES = 150
"""Values an empirical (or gamma) spec is written with: the midpoints of 150 equal-probability bins. The 149th is
the 0.99 quantile and the simulator's draws put their 99th percentile inside its bin; with 200 midpoints it fell
on the edge between the 0.9875 and 0.9925 quantiles, and a run's p99 jumped between them (sd 5.3 ms against
1.9 ms for a log-normal of p99 80 ms, 5,400 draws)."""
OVERHEAD_POINTS = 48
KS_FLOOR = 0.05
CONSTANT_CV = 0.05
CONSTANT_NOISE = 1.5
SHIFT_CAP = 0.9
FAMILIES = ("exponential", "lognormal", "gamma")


@dataclass(frozen=True)
class Candidate:
    """One family fitted by maximum likelihood: its parameters, likelihood, AIC, KS distance and p-value.

    `mean` and `p99` are the fitted service time's (with its shift, if one was fitted)."""

    dist: str
    params: dict
    loglik: float | None
    aic: float | None
    ks: float
    ks_p: float
    mean: float
    p99: float

    def row(self) -> dict:
        return {"dist": self.dist, **{k: _round(v) for k, v in self.params.items()},
                "aic": _round(self.aic, 7), "ks": _round(self.ks), "ks_p": _round(self.ks_p),
                "mean_ms": _round(self.mean * 1e3), "p99_ms": _round(self.p99 * 1e3)}


@dataclass(frozen=True)
class ServiceFit:
    """The chosen distribution, why, every candidate's quality, and `spec`: what is written (the service time as
    users see it, with `path_mean` seconds of overhead on average; its mean and p99 `seen_mean`, `seen_p99`)."""

    chosen: str
    why: str
    spec: dict
    candidates: tuple[Candidate, ...]
    n: int
    overhead_mean: float
    path_mean: float = 0.0
    seen_mean: float = math.nan
    seen_p99: float = math.nan

    @property
    def best(self) -> Candidate:
        return next(c for c in self.candidates if c.dist == self.chosen)


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def ms(seconds: float) -> str:
    """A duration as the scenario reads it, to the microsecond: `20.137ms`."""
    return f"{seconds * 1e3:.3f}ms"


def _frozen(dist: str, params: dict):
    from scipy import stats

    if dist == "exponential":
        return stats.expon(scale=params["mean_s"])
    if dist == "lognormal":
        return stats.lognorm(params["sigma"], scale=math.exp(params["mu"]))
    return stats.gamma(params["shape"], scale=params["scale_s"])


def _params(dist: str, theta: np.ndarray) -> dict:
    a = math.exp(theta[0])
    if dist == "exponential":
        return {"mean_s": a}
    if dist == "lognormal":
        return {"mu": math.log(a), "sigma": math.exp(theta[1])}
    return {"shape": math.exp(theta[1]), "scale_s": a}


def _logpdf(dist: str, params: dict, y: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    out = np.full(y.shape, -np.inf)
    pos = y > 0
    v = y[pos]
    if dist == "exponential":
        m = params["mean_s"]
        out[pos] = -math.log(m) - v / m
    elif dist == "lognormal":
        mu, s = params["mu"], params["sigma"]
        out[pos] = -np.log(v * s * math.sqrt(2 * math.pi)) - (np.log(v) - mu) ** 2 / (2 * s * s)
    else:
        k, theta = params["shape"], params["scale_s"]
        out[pos] = (k - 1) * np.log(v) - v / theta - gammaln(k) - k * math.log(theta)
    return out


def _loglik(dist: str, params: dict, x: np.ndarray, o: np.ndarray) -> float:
    """log L of latencies `x` as service time + an overhead drawn uniformly from `o`."""
    from scipy.special import logsumexp

    with np.errstate(divide="ignore", invalid="ignore"):
        dens = logsumexp(_logpdf(dist, params, x[None, :] - o[:, None]), axis=0) - math.log(len(o))
    return float(np.sum(np.maximum(dens, -700.0)))


def _start(dist: str, y: np.ndarray) -> list[float]:
    """Log parameters of the plain fit to latencies less the mean overhead, where the optimiser starts."""
    from scipy import stats

    if dist == "exponential":
        return [math.log(y.mean())]
    if dist == "lognormal":
        shape, _, scale = stats.lognorm.fit(y, floc=0)
        return [math.log(scale), math.log(shape)]
    a, _, scale = stats.gamma.fit(y, floc=0)
    return [math.log(scale), math.log(a)]


def _shift(t: float, x: np.ndarray) -> float:
    """The shift parameter `t` as seconds in (0, SHIFT_CAP x the shortest latency)."""
    return SHIFT_CAP * float(x.min()) / (1.0 + math.exp(-t))


def _fit(dist: str, x: np.ndarray, o: np.ndarray) -> Candidate:
    """One family by maximum likelihood: through the measured overheads `o`, or with a fitted shift when `o` is [0]."""
    from scipy import optimize, stats

    shifted = len(o) == 1 and o[0] == 0.0
    y = np.maximum(x - o.mean(), max(1e-6, 0.01 * float(np.median(x))))
    if shifted:
        def nll(t):
            return -_loglik(dist, _params(dist, t[:-1]), x - _shift(t[-1], x), o)

        tries = []
        for share in (0.1, 0.5):  # the likelihood can have a second hump near the shortest latency
            t0 = math.log(share / (SHIFT_CAP - share))
            start = _start(dist, np.maximum(y - _shift(t0, x), 1e-6)) + [t0]
            tries.append(optimize.minimize(nll, start, method="Nelder-Mead",
                                           options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 800}))
        theta = min(tries, key=lambda r: r.fun).x
        shift = _shift(theta[-1], x)
        theta = theta[:-1]
    else:
        theta = _start(dist, y)
        shift = 0.0
        if len(o) > 1:
            theta = optimize.minimize(lambda t: -_loglik(dist, _params(dist, t), x, o), theta, method="Nelder-Mead",
                                      options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 400}).x
    params = _params(dist, np.asarray(theta))
    through = np.array([shift]) if shifted else o
    loglik = _loglik(dist, params, x, through)
    frozen = _frozen(dist, params)
    cdf = lambda v: frozen.cdf(np.asarray(v)[None, :] - through[:, None]).mean(axis=0)  # noqa: E731
    ks = stats.kstest(x, cdf)
    k = len(theta) + shifted
    if shifted:
        params = {**params, "shift_s": shift}
    return Candidate(dist, params, loglik, 2 * k - 2 * loglik, float(ks.statistic), float(ks.pvalue),
                     float(frozen.mean()) + shift, float(frozen.ppf(0.99)) + shift)


def quantiles(values: np.ndarray | None = None, ppf=None) -> list[float]:
    """The midpoints of QUANTILES equal-probability bins, of samples or of a distribution's `ppf`."""
    q = (np.arange(QUANTILES) + 0.5) / QUANTILES
    points = ppf(q) if ppf is not None else np.quantile(values, q)
    return [float(f"{v:.6g}") for v in points]


def spec_of(c: Candidate, y: np.ndarray) -> dict:
    """The scenario's `service_time` for a candidate as fitted (gamma and empirical as quantiles)."""
    if c.dist == "constant":
        return {"dist": "constant", "value": ms(c.params["value_s"])}
    if c.dist == "exponential":
        return {"dist": "exponential", "mean": ms(c.params["mean_s"])}
    if c.dist == "lognormal":
        return {"dist": "lognormal", "median": ms(math.exp(c.params["mu"])), "sigma": round(c.params["sigma"], 4)}
    if c.dist == "gamma":
        return {"dist": "empirical", "samples": quantiles(ppf=_frozen("gamma", c.params).ppf)}
    return {"dist": "empirical", "samples": quantiles(y)}


def _mixture_ppf(c: Candidate, o: np.ndarray):
    """The quantile function of the candidate's service time plus an overhead drawn uniformly from `o`."""
    from scipy.optimize import brentq

    frozen = _frozen(c.dist, c.params)

    def one(q: float) -> float:
        lo, hi = float(frozen.ppf(q)) + float(o.min()), float(frozen.ppf(q)) + float(o.max())
        if hi - lo < 1e-9:
            return lo
        return brentq(lambda v: float(frozen.cdf(v - o).mean()) - q, lo, hi, xtol=1e-9)

    return lambda qs: np.array([one(float(q)) for q in np.atleast_1d(qs)])


def seen(c: Candidate, y: np.ndarray, path: np.ndarray) -> tuple[dict, float, float]:
    """What to write for candidate `c` when users' requests also meet the overheads `path` (seconds, drawn uniformly;
    a fitted shift counts as one): (spec, mean, p99) of service time plus overhead. `y`: the latencies less the
    measured overhead, for an empirical candidate."""
    shift = c.params.get("shift_s", 0.0)
    o = np.asarray(path, dtype=float) + shift
    if not np.any(o):
        return spec_of(c, y), c.mean, c.p99
    if c.dist == "constant":
        value = c.params["value_s"] + float(o.mean())
        return {"dist": "constant", "value": ms(value)}, value, value
    if c.dist == "empirical":
        shifted = y + float(o.mean())
        return ({"dist": "empirical", "samples": quantiles(shifted)}, float(shifted.mean()),
                float(np.percentile(shifted, 99)))
    ppf = _mixture_ppf(c, o)
    mean, p99 = c.mean - shift + float(o.mean()), float(ppf(0.99)[0])
    if c.dist == "lognormal" and mean < p99 < mean * math.exp(2.3263478740408408**2 / 2):
        return {"dist": "lognormal", "mean": ms(mean), "p99": ms(p99)}, mean, p99
    return {"dist": "empirical", "samples": quantiles(ppf=ppf)}, mean, p99


def fit_service_time(latencies, overheads=None, path=None) -> ServiceFit:
    """Fit and choose the service-time distribution of `latencies` (seconds) given measured `overheads` (seconds),
    and write it as users see it: plus the `path` overheads (seconds) their requests meet (none: as fitted)."""
    x = np.asarray(latencies, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 20:
        raise ValueError(f"expected at least 20 latencies to fit a service time, found {len(x)}")
    o_all = np.asarray(overheads if overheads is not None and len(overheads) else [0.0], dtype=float)
    o = np.quantile(o_all, (np.arange(OVERHEAD_POINTS) + 0.5) / OVERHEAD_POINTS) if len(o_all) > 1 else o_all
    y = np.maximum(x - o.mean(), 1e-6)  # latencies less the mean overhead: the constant and empirical forms
    noise = float(o_all.std()) if len(o_all) > 1 else 0.0
    fitted = [_fit(dist, x, o) for dist in FAMILIES]
    floor = CONSTANT_NOISE * noise if noise else CONSTANT_CV * float(y.mean())
    if float(x.std()) <= floor:
        value = float(np.median(y))
        what = f"{CONSTANT_NOISE:g}x the overhead's ({noise * 1e3:.3f}ms)" if noise else f"{CONSTANT_CV:.0%} of the mean"
        why = f"the latencies' spread ({x.std() * 1e3:.3f}ms) is within {what}: constant"
        best = Candidate("constant", {"value_s": value}, None, None, float("nan"), float("nan"), value, value)
        fitted.insert(0, best)
    else:
        best = min(fitted, key=lambda c: c.aic)
        why = f"lowest AIC of {', '.join(FAMILIES)}; KS distance {best.ks:.3f}"
        limit = max(KS_FLOOR, 1.63 / math.sqrt(len(x)))
        if best.ks > limit:
            why = (f"no family fits: the best by AIC ({best.dist}) is {best.ks:.3f} from the latencies by KS, "
                   f"over {limit:.3f}: empirical quantiles")
            best = Candidate("empirical", {}, None, None, float("nan"), float("nan"), float(y.mean()),
                             float(np.percentile(y, 99)))
            fitted.append(best)
    p = np.asarray(path if path is not None and len(path) else [0.0], dtype=float)
    p = np.quantile(p, (np.arange(OVERHEAD_POINTS) + 0.5) / OVERHEAD_POINTS) if len(p) > 1 else p
    spec, seen_mean, seen_p99 = seen(best, y, p)
    return ServiceFit(best.dist, why, spec, tuple(fitted), len(x), float(o.mean()),
                      float(p.mean()) + best.params.get("shift_s", 0.0), seen_mean, seen_p99)
