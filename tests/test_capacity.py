"""simlab capacity: the search lands on the closed-form answer where the fleet is n independent M/M/1 queues, the
conditions take out what they say, and the command prints the answer and the size below it.

Random dispatch over single-worker instances splits a Poisson stream into n Poisson streams, one M/M/1 queue
each (both engines model it so; power-of-two and least-outstanding balancing couple the queues). Exponential
service of 100 ms (mu = 10/s) at 50 requests per second, a p99 target of 1 s: M/M/1's time in system is
exponential with rate mu - 50/n, its p99 ln(100)/(mu - 50/n) is 1,036 ms at 9 instances and 921 ms at 10, so
the answer is 10. About 1 s each.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from simlab.cli import main
from simlab.errors import ScenarioError
from simlab.planning import capacity
from simlab.planning.conditions import Conditions, judged, peak_rate, serving
from simlab.planning.theory import erlang_servers, mmc_quantile
from simlab.scenario import validate_scenario

ROOT = Path(__file__).resolve().parent.parent
MU, TARGET = 10.0, 1.0


def independent(rps: float) -> int:
    """The fewest instances whose M/M/1 queues (random dispatch, one worker each) keep p99 within TARGET."""
    return next(n for n in range(1, 1000) if mmc_quantile(1, rps / n, MU) <= TARGET)


def mmc(rps: float, **fleet) -> dict:
    return {"name": "mmc", "duration": "20m",
            "fleet": {"instances": 4, "zones": 3, "workers": 1, "queue_limit": 1000, "load_balancer": "random",
                      "service_time": {"dist": "exponential", "mean": "100ms"}, **fleet},
            "traffic": {"rps": rps, "timeout": "30s"}, "slo": {"availability": 99.0}}


def search(data: dict, runs: int = 8, **options):
    return capacity(validate_scenario(data), p99=f"{TARGET * 1000:g}ms", runs=runs, executor="serial", **options)


@pytest.mark.parametrize("rps, answer", [(50, 10), (80, 15)])
def test_independent_queues_are_sized_as_m_m_1_says(rps, answer):
    assert independent(rps) == answer  # 50 rps: 1,036 ms at 9, 921 ms at 10; 80 rps: 1,075 at 14, 987 at 15
    result = search(mmc(rps))
    assert result.instances == answer
    for n in (answer, answer - 1):  # the simulated p99 within 3% of the closed form, on both sides of the answer
        row = result.at(n)
        closed = mmc_quantile(1, rps / n, MU) * 1000
        assert row["runs"] == 16 and row["latency_p99_ms"] == pytest.approx(closed, rel=0.03)
        assert row["utilization"] == pytest.approx(rps / (n * MU), rel=0.02)
    assert result.at(answer)["holds"] and not result.at(answer - 1)["holds"]


def test_coupled_queues_never_need_more_instances_than_independent_ones_nor_fewer_than_one_pool():
    """Least-outstanding and power-of-two balance the same single-worker instances: between one pooled M/M/c
    (Erlang C: 6 servers) and independent M/M/1 queues (10)."""
    for balancer in ("least_outstanding", "power_of_two"):
        result = search(mmc(50, load_balancer=balancer))
        assert erlang_servers(50, MU, TARGET) <= result.instances <= independent(50), balancer
    assert result.at(result.instances)["holds"] and not result.at(result.instances - 1)["holds"]


def test_conditions_take_out_what_they_say():
    rolling = validate_scenario({**mmc(50), "strategy": {"kind": "rolling", "max_unavailable": "25%"}})
    both = Conditions(during_rollout=True, zone_down=True)
    assert serving(rolling, 12, Conditions(zone_down=True)) == 8  # zone 0 holds ceil(12 / 3) = 4
    assert serving(rolling, 12, Conditions(during_rollout=True)) == 9  # 25% of 12, rounded down
    assert serving(rolling, 12, both) == 5 and serving(rolling, 2, both) == 1
    canary = validate_scenario(mmc(50))
    assert serving(canary, 12, Conditions(during_rollout=True)) == 12  # a canary adds instances, takes none out
    diurnal = validate_scenario({**mmc(40), "traffic": {"rps": 40, "pattern": {"kind": "diurnal", "peak_to_trough": 3}},
                                 "failures": [{"kind": "dependency", "at": "1m", "duration": "1m", "error_rate": 0.5},
                                              {"kind": "instance_crash", "mtbf": "1h"}],
                                 "release": {"at": "5m"}})
    assert peak_rate(diurnal) == pytest.approx(60.0)  # mean 40, peak 3x the trough: 60 and 20
    world = judged(diurnal, 5, Conditions(at_peak=True), duration=600)
    assert (world.traffic.rps, world.traffic.pattern.kind, world.fleet.instances, world.duration) == (60.0, "constant", 5, 600)
    assert world.release is None and [f.kind for f in world.failures] == ["instance_crash"]


def test_combined_conditions_move_the_answer_to_the_size_whose_serving_instances_suffice():
    """10 serving instances hold at 50 rps; with the largest of 3 zones down and a rolling rollout taking one
    out, the smallest n with n - ceil(n/3) - 1 >= 10 is 17. The diurnal peak is 50 rps for a mean of 33.3."""
    data = {**mmc(50), "strategy": {"kind": "rolling", "max_unavailable": 1}}
    result = search(data, runs=4, duration="10m", zone_down=True, during_rollout=True)
    assert result.instances == 17 and result.at(17)["serving"] == 10 and result.at(16)["serving"] == 9
    assert result.to_dict()["conditions"] == ["during_rollout", "zone_down"]
    peaky = {**mmc(50 / 1.5), "traffic": {"rps": 50 / 1.5, "timeout": "30s",
                                          "pattern": {"kind": "diurnal", "peak_to_trough": 3, "peak_at": "12h"}}}
    assert search(peaky, runs=4, duration="10m", at_peak=True).instances == 10
    assert search(peaky, runs=4, duration="10m").instances < 10  # the first 20 minutes of the day are its trough


def test_what_no_fleet_can_meet_is_said_before_anything_runs():
    with pytest.raises(ScenarioError, match="fleet.zones of 2 or more"):
        search({**mmc(50), "fleet": {**mmc(50)["fleet"], "zones": 1}}, zone_down=True)
    with pytest.raises(ScenarioError, match="big_bang"):
        search({**mmc(50), "strategy": {"kind": "big_bang"}}, during_rollout=True)
    with pytest.raises(ScenarioError, match="service time alone has a p99 of 460.517 ms"):
        capacity(validate_scenario(mmc(50)), p99="400ms")


def test_the_result_renders_as_a_table_and_a_figure():
    result = search(mmc(50))
    html = result._repr_html_()
    assert "<table" in html and "10 instances keep p99" in html
    picture = result.plot()
    assert picture._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n" and len(picture.figure.axes) == 2


def test_the_command_prints_json_with_the_answer_and_the_size_below(tmp_path, capsys):
    path = tmp_path / "mmc.yaml"
    path.write_text(json.dumps(mmc(50)))
    code = main(["capacity", str(path), "--p99", "1s", "--runs", "8", "--executor", "serial", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["instances"] == 10 and out["below"]["instances"] == 9
    for point in (out, out["below"]):
        assert {"utilization", "latency_p99_ms", "availability", "latency_p99_ms_ci"} <= set(point)
        lo, hi = point["latency_p99_ms_ci"]
        assert lo <= point["latency_p99_ms"] <= hi and math.isfinite(hi)
    path.write_text(json.dumps({**mmc(50), "fleet": {**mmc(50)["fleet"], "zones": 1}}))
    assert main(["capacity", str(path), "--p99", "1s", "--zone-down", "--json"]) == 2
    assert "fleet.zones of 2 or more" in capsys.readouterr().err


def test_the_readme_capacity_answer_is_the_commands(capsys, monkeypatch):
    """The README's capacity example, run as shown: the same answer and size below (the figures beside them move
    with the engine, the sizes should not)."""
    import re
    import shlex

    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text()
    (command, shown), = re.findall(r"```\n\$ (simlab capacity [^\n]+)\n(.*?)```", readme, re.S)
    assert main(shlex.split(command)[1:]) == 0
    printed = capsys.readouterr().out
    sizes = re.compile(r"^(\d+) instances keep .*; (\d+) do not", re.M)
    assert sizes.findall(printed) == sizes.findall(shown) == [("8", "7")]
