"""What calibration buys: prediction error on the shipped staging scenarios, before and after `simlab calibrate`.

For each scenario (experiments/staging-*.yaml, their staging form) on a real local staging:

1. calibrate live: `simlab calibrate`'s measurement of that staging (service time, capacity, start-up);
2. observe: `--deploys` deploys with load (the same scenario, the same seed; what differs is the real world);
3. calibrate from a recording: `simlab calibrate --from` the first deploy's directory (Locust's latencies, so
   the round trip through Locust and HAProxy stays in the fitted service time; start-up from the timeline);
4. predict: `--runs` request-engine replications (seeds 0..runs-1) of the scenario as written ("before") and
   with each fragment overlaid ("live", "recorded"), as `simlab run/compare --calibration` would run it;
5. compare: each mean prediction against the mean of the *other* deploys (not the one the recording came
   from) for bad requests, detection time (seconds after the release), p99 latency of successful requests and
   min capacity (fewest ready instances / fleet).

Each error comes with its standard error: the observed mean's (the held-out deploys' spread; for p99 at least
each deploy's own sampling noise, a bootstrap of its requests) and the prediction's (the runs' spread /
sqrt(runs)), combined. A difference between two errors smaller than about twice that says nothing about which
prediction is better.

Prints JSON (every number) and a Markdown table of absolute errors (the README's).

    .venv/bin/python benchmarks/calibration_value.py [--deploys 4] [--runs 30] [--scenarios staging-canary-bad,...]
        [--samples 4000] [--level-seconds 2]

Takes about 25 minutes with the defaults: the deploys run on the wall clock (90-120 s each). For a quick check
(tests/staging/test_staging_benchmarks.py), `--scenarios` also takes paths to scenario files (a short one), and
`--samples`/`--level-seconds` shorten the live calibration (`simlab calibrate`'s options of those names).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from simlab.calibration.calibrate import calibrate_live, calibrate_recorded
from simlab.calibration.fragment import dump, overlay
from simlab.scenario import load_scenario
from simlab.scenario.loading import staging_scenario
from simlab.simulation import simulate
from simlab.staging.deployer import deploy
from simlab.staging.supervisor import Staging

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("bad", "detected_at_s", "latency_p99_ms", "min_capacity")
SCENARIOS = ("staging-canary-bad", "staging-canary-good", "staging-failures")


def _kept(values: list) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean(values: list) -> float | None:
    kept = _kept(values)
    return statistics.fmean(kept) if kept else None


def se(values: list) -> float | None:
    """Standard error of the mean of `values` (None with fewer than two)."""
    kept = _kept(values)
    return statistics.stdev(kept) / math.sqrt(len(kept)) if len(kept) > 1 else None


def predicted(s, runs: int) -> dict:
    """Mean of each figure over `runs` request-engine replications (and its standard error), how many detected."""
    summaries = [simulate(s, seed=i, engine="request").summary.to_dict() for i in range(runs)]
    out = {k: mean([x.get(k) for x in summaries]) for k in FIGURES}
    out["se"] = {k: se([x.get(k) for x in summaries]) for k in FIGURES}
    out["detected_share"] = sum(x.get("detected_at_s") is not None for x in summaries) / runs
    out["outcomes"] = sorted({x["outcome"] for x in summaries})
    return out


def p99_se(out: Path, boots: int = 300) -> float | None:
    """Bootstrap standard error (ms) of one deploy's p99 of successful user requests, from Locust's records."""
    import numpy as np

    from simlab.staging.load import classify, read_records, user_requests

    rec = user_requests(read_records(out / "load"))
    ok = rec["latency"][classify(rec, 1e9)["ok"]] * 1e3
    if len(ok) < 100:
        return None
    rng = np.random.default_rng(0)
    return float(np.std([np.percentile(rng.choice(ok, len(ok)), 99) for _ in range(boots)]))


def observed_se(held_out: list[dict], dirs: list[Path]) -> dict:
    """Standard error of the held-out mean of each figure: from the deploys' spread (None from one deploy); for
    p99 the larger of that and each deploy's own sampling noise (bootstrapped), since a spread of three deploys
    is itself a rough figure. Both are kept under `p99_parts`."""
    out = {k: se([x.get(k) for x in held_out]) for k in FIGURES}
    boot = [p99_se(d) for d in dirs]
    spread = out["latency_p99_ms"]
    sampling = math.sqrt(sum(b * b for b in boot)) / len(boot) if all(b is not None for b in boot) else None
    out["latency_p99_ms"] = max((v for v in (spread, sampling) if v is not None), default=None)
    out["p99_parts"] = {"spread": spread, "sampling": sampling}
    return out


def scenario_file(entry: str) -> Path:
    """A shipped scenario's name (experiments/<name>.yaml) or a scenario file's path."""
    return Path(entry) if entry.endswith((".yaml", ".yml")) else ROOT / "experiments" / f"{entry}.yaml"


def one_scenario(entry: str, deploys: int, runs: int, work: Path, samples: int = 4000,
                 level_seconds: float = 2.0) -> dict:
    path = scenario_file(entry)
    name = path.stem
    raw = load_scenario(path)
    staged = staging_scenario(raw)
    state = work / name / "state"
    t0 = time.monotonic()
    st = Staging.up(staged, state)
    try:
        lines: list[str] = []
        fragment = calibrate_live(raw, state, samples=samples, level_seconds=level_seconds, progress=lines.append)
        observed = []
        for i in range(deploys):
            out = work / name / f"deploy-{i}"
            result = deploy(staged, state, with_load=True, out=out)
            result.write(out)  # summary, timeline and events beside Locust's records, as `deploy --out` writes them
            observed.append(result.summary.to_dict())
    finally:
        st.down()
    recorded = calibrate_recorded(raw, [work / name / "deploy-0"], progress=lines.append)
    predictions = {"before": predicted(staged, runs)}
    written = {}
    for when, frag in (("live", fragment), ("recorded", recorded)):
        path = work / name / f"calibration-{when}.yaml"
        path.write_text(dump(frag, f"benchmarks/calibration_value.py: {name}, {when}"))
        predictions[when] = predicted(staging_scenario(overlay(raw, path)), runs)
        written[when] = {k: v for k, v in frag.items() if k != "calibration"}
    held_out = observed[1:] or observed
    dirs = [work / name / f"deploy-{i}" for i in range(deploys)]
    obs = {k: mean([x.get(k) for x in held_out]) for k in FIGURES}
    obs["se"] = observed_se(held_out, dirs[1:] or dirs)
    obs["each"] = [{k: x.get(k) for k in (*FIGURES, "outcome")} for x in observed]
    errors = {k: {when: (None if obs[k] is None or p[k] is None else abs(p[k] - obs[k]))
                  for when, p in predictions.items()} for k in FIGURES}
    error_se = {k: {when: math.sqrt((obs["se"][k] or 0.0) ** 2 + (p["se"][k] or 0.0) ** 2)
                    for when, p in predictions.items()} for k in FIGURES}
    return {"scenario": name, "observed": obs, "predicted": predictions, "absolute_error": errors,
            "error_se": error_se, "calibration_log": lines, "written": written,
            "seconds": round(time.monotonic() - t0, 1)}


def cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


WHEN = ("before", "live", "recorded")


def table(results: list[dict]) -> str:
    """Observed (± its standard error), predicted (before, after live, after recorded calibration), the absolute
    errors and the standard error of an error (observation and prediction noise together)."""
    rows = ["| scenario | figure | observed ± se | predicted: before / live / recorded | "
            "error: before / live / recorded | se of an error |", "|---|---|---|---|---|---|"]
    for r in results:
        for k in FIGURES:
            digits = 2 if k == "min_capacity" else 1
            p, e, o = r["predicted"], r["absolute_error"][k], r["observed"]
            noise = max((v for v in r["error_se"][k].values() if v is not None), default=None)
            rows.append(f"| {r['scenario']} | {k} | {cell(o[k], digits)} ± {cell(o['se'][k], digits)} | "
                        + " / ".join(cell(p[w][k], digits) for w in WHEN) + " | "
                        + " / ".join(cell(e[w], digits) for w in WHEN) + f" | {cell(noise, digits)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=4, help="deploys observed per scenario (the first is also "
                        "the recording calibrated from)")
    parser.add_argument("--runs", type=int, default=30, help="simulated replications per prediction")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="names in experiments/ or scenario files (.yaml), comma-separated")
    parser.add_argument("--samples", type=int, default=4000, help="latencies the live calibration samples")
    parser.add_argument("--level-seconds", type=float, default=2.0,
                        help="seconds of each load level of the live calibration's capacity search")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simlab-cal-") as tmp:
        results = [one_scenario(entry, args.deploys, args.runs, Path(tmp), args.samples, args.level_seconds)
                   for entry in args.scenarios.split(",")]
    print(json.dumps({"deploys": args.deploys, "runs": args.runs, "load_average_1m": os.getloadavg()[0],
                      "results": results}, indent=2, default=str))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
