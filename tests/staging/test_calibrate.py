"""`simlab calibrate` on a real staging: the service time the staging runs is fitted back, from live load and from a
recorded deploy; the fragment overlays `run` and `compare`; the deploy prints its faults.

Tolerances. The shared staging's instances draw service times from a log-normal of mean 20 ms and p99 80 ms
(sigma 0.70). With 600 latencies the fitted mean's standard error is 0.80/sqrt(600) = 3.3% and the p99's
(mu + 2.33 sigma by maximum likelihood) 5.5%; on this busy machine a timer's wake-up adds 0.5-1 ms a request
(2-5% of 20 ms), which the staging really spends and the fit keeps. So: the family must be log-normal, the mean
within 15% and sigma within 15% (4.5 standard errors plus that bias), p99 within 25%.

What the fragment writes is that service time as users see it: plus the overhead of a request's way through
HAProxy (a `/healthz` sent through it), checked here against the evidence the fragment holds (the fitting itself
on known numbers: tests/test_calibration_fitting.py).
"""
from __future__ import annotations

import math
import re

import pytest
import yaml

from simlab.cli import main
from simlab.scenario.distributions import LogNormal
from simlab.staging.supervisor import Staging

TRUE_MU, TRUE_SIGMA = LogNormal(dist="lognormal", mean=0.020, p99=0.080).mu_sigma()


def lognormal_of(candidate: dict) -> tuple[float, float, float]:
    """(mean, p99, sigma) of the fitted log-normal in a fragment's evidence (`candidates`)."""
    mu, sigma = float(candidate["mu"]), float(candidate["sigma"])
    return math.exp(mu + sigma**2 / 2), math.exp(mu + 2.3263478740408408 * sigma), sigma


def ms(text: str) -> float:
    return float(text.removesuffix("ms"))


def test_calibrate_measures_the_staging_and_recovers_its_service_time(shared_staging, tmp_path, capsys):
    st, path = shared_staging
    fragment = tmp_path / "calibration.yaml"
    code = main(["calibrate", str(path), "--dir", str(st.dir), "-o", str(fragment), "--samples", "600",
                 "--level-seconds", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "service time: lognormal" in printed and f"wrote {fragment}" in printed
    assert "written as users see it, plus a request's way through HAProxy" in printed
    data = yaml.safe_load(fragment.read_text())
    fit = data["calibration"]["service_time"]
    assert fit["chosen"] == "lognormal", fit
    fitted = next(c for c in fit["candidates"] if c["dist"] == "lognormal")
    mean, p99, sigma = lognormal_of(fitted)
    assert abs(mean / 0.020 - 1) < 0.15 and abs(p99 / 0.080 - 1) < 0.25 and abs(sigma / TRUE_SIGMA - 1) < 0.15, \
        (mean, p99, sigma)
    aic = {c["dist"]: c["aic"] for c in fit["candidates"]}
    assert aic["lognormal"] < aic["gamma"] < aic["exponential"] and fit["latencies"] >= 500
    assert 0 < fit["overhead_ms"] < 10  # /healthz straight at an instance: the round trip, not the service
    # Written: that service time plus a request's way through HAProxy (/healthz through it: 0.5-10 ms here).
    spec = data["fleet"]["service_time"]
    assert spec["dist"] == "lognormal" and set(spec) == {"dist", "mean", "p99"}, spec
    assert 0.5 < fit["path_overhead_ms"] < 10
    assert ms(spec["mean"]) == pytest.approx(fit["fitted_mean_ms"] + fit["path_overhead_ms"], abs=0.002)
    assert ms(spec["p99"]) == pytest.approx(fit["written_p99_ms"], abs=0.002)
    assert fit["fitted_p99_ms"] < fit["written_p99_ms"] < fit["fitted_p99_ms"] + 4 * fit["path_overhead_ms"]

    capacity = data["calibration"]["capacity"]
    offered = [level["offered_rps"] for level in capacity["levels"]]
    assert len(offered) >= 2 and offered == sorted(offered)
    assert capacity["modelled_rps"] == pytest.approx(8 / (fit["fitted_mean_ms"] / 1e3), rel=0.01)
    assert 0 < capacity["per_instance_rps"] <= 1.05 * max(offered)

    startup = data["calibration"]["startup"]
    assert startup["instances_timed"] == 2 and startup["to_rotation_s"] > startup["to_ready_s"] > 0.5
    assert data["staging"]["fleet"]["startup"] == f"{startup['to_rotation_s'] - 0.375:.3f}s"  # (2 - 0.5) x 250ms
    assert len(st.members) == 3  # the instances it timed are gone again

    from simlab.calibration.fragment import overlay
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario

    overlaid = staging_scenario(overlay(load_scenario(path), fragment))
    assert overlaid.fleet.service_time.mean == pytest.approx(ms(spec["mean"]) / 1e3)
    assert overlaid.fleet.service_time.p99 == pytest.approx(ms(spec["p99"]) / 1e3)
    assert overlaid.fleet.startup == pytest.approx(startup["to_rotation_s"] - 0.375, abs=0.001)
    assert main(["run", str(path), "--calibration", str(fragment), "--json"]) == 0
    assert main(["compare", str(path), "--calibration", str(fragment), "--strategies", "canary", "--runs", "2",
                 "--executor", "serial", "--quiet"]) == 0


def test_calibrate_from_a_recorded_deploy_leaves_out_its_fault_and_its_release(shared_staging, tmp_path, capsys):
    st, path = shared_staging
    out = tmp_path / "deploy"
    code = main(["deploy", str(path), "--dir", str(st.dir), "--load", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    # deploy says when each injected fault starts and ends (the scenario's dependency, at 10 s for 2 s)
    started = re.search(r"\[\s*(\d+\.\d)s\] fault dependency_failure_started add_latency=0\.03", printed)
    ended = re.search(r"\[\s*(\d+\.\d)s\] fault dependency_failure_ended", printed)
    assert started and ended and 9.5 < float(started[1]) < 11.5 < float(ended[1]) < 13.5, printed

    fragment = tmp_path / "recorded.yaml"
    code = main(["calibrate", str(path), "--from", str(out), "-o", str(fragment)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    data = yaml.safe_load(fragment.read_text())
    evidence = data["calibration"]
    assert evidence["source"] == f"recorded: {out}"
    left = evidence["left_out"]
    assert left["fault_windows"] > 60 and left["new_version"] > 60 and left["warm_up"] > 0, left
    fit = evidence["service_time"]
    # Locust's latencies through HAProxy: the service time plus a round trip a recording cannot take out
    assert fit["latencies"] > 200 and 0.95 < fit["fitted_mean_ms"] / 20 < 1.5, fit
    assert 0.5 < evidence["startup"]["to_rotation_s"] < 10

    from simlab.report.figures_run import draw_timeline
    from simlab.report.sources import load_run

    run = load_run(out).result
    fig = draw_timeline(run.timeline, run.events)
    shaded = {(round(p.get_x() * 60), round((p.get_x() + p.get_width()) * 60))
              for p in fig.axes[0].get_children() if p.get_gid() == "fault:dependency_failure_started"}
    assert len(shaded) == 1 and 9 <= min(shaded)[0] <= 12 and min(shaded)[1] - min(shaded)[0] in (1, 2, 3), shaded

    # The user deploys next with PromQL of their own on the same staging. The recorded deploy promoted its
    # release, so no stable-version series was scraped any more: the preflight refused valid queries when it
    # looked before the fleet was reset to the stable version. Only the misspelt query may be refused now.
    queries = {"lb_responses": 'sum(rate(haproxy_server_http_responses_total{proxy="app",server=~"{{instance}}"}'
                               '[{{window}}]))',
               "served": 'sum(rate(simlab_requests_total{version="{{version}}"}[{{window}}]))',
               "misspelt": 'sum(rate(simlab_request_total{version="{{version}}"}[{{window}}]))'}
    assert Staging.open(st.dir).ready_counts()["old"] == 0  # promoted: the case the preflight got wrong
    data = yaml.safe_load(path.read_text())
    data["analysis"]["metrics"] = [{"metric": name, "query": q, "max": 1e9} for name, q in queries.items()]
    custom = tmp_path / "custom.yaml"
    custom.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["deploy", str(custom), "--dir", str(st.dir), "--load"]) == 2
    err = capsys.readouterr().err
    assert "analysis: 1 metric Prometheus" in err and "analysis.metrics[2].query" in err, err
    assert Staging.open(st.dir).ready_counts() == {"old": 3, "new": 0}


def test_bad_calibration_input_is_one_line_naming_where(tmp_path, capsys):
    from staging_helpers import SMALL

    scenario = tmp_path / "s.yaml"
    scenario.write_text(SMALL)
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet:\n  service_time: {dist: exponential, mean: 10ms}\n  workers: 0\ncalibration: {}\n")
    assert main(["run", str(scenario), "--calibration", str(bad)]) == 2
    assert f"{bad}:3: fleet.workers: expected a value at least 1, found 0" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["calibrate", str(scenario), "--from", str(empty)]) == 2
    assert f"--from {empty}: expected Locust's request records" in capsys.readouterr().err
