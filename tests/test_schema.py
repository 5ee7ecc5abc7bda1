"""`simlab schema`: a JSON Schema that accepts the scenarios simlab accepts, as people write them, and rejects typos.

The schema is what an editor (YAML language server) or a CI linter checks a
scenario against, so it must never reject a file `simlab check` accepts, and
should reject what a newcomer most often gets wrong: a misspelt key, a
duration in unknown units, a value of the wrong type.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simlab.cli import main
from simlab.errors import ScenarioError
from simlab.scenario import load_scenario, validate_scenario

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
CHECKOUT = yaml.safe_load((EXPERIMENTS / "checkout-canary.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator for what `simlab schema` prints (run through the CLI, as a user runs it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    schema = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


def problems(validator, data) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def loads(data) -> bool:
    try:
        validate_scenario(copy.deepcopy(data), base_dir=EXPERIMENTS)
    except ScenarioError:
        return False
    return True


# --- every file in experiments/ ---------------------------------------------------------------

def kind_of(path: Path) -> str:
    """What a file in experiments/ is: a scenario, a variants file (for `compare --variants`), a chaos experiment,
    a CI job (experiments/ci/, GitHub Actions), Argo Rollouts / Flagger manifests (experiments/imports/, for
    `simlab import`) or an optimizer's search file (`simlab optimize --search`)."""
    if path.parent.name == "ci":
        return "ci job" if "jobs" in (yaml.safe_load(path.read_text()) or {}) else "unknown"
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return "chaos" if {"steady-state-hypothesis", "method"} <= set(data) else "unknown"
    if path.parent.name == "imports":
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        kubernetes = docs and all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
        return "manifests" if kubernetes else "unknown"
    data = yaml.safe_load(path.read_text())
    if set(data) == {"variants"}:
        return "variants"
    if set(data) == {"knobs"}:
        return "search"
    if {"steady-state-hypothesis", "method"} <= set(data):
        return "chaos"
    return "scenario" if {"name", "fleet", "traffic"} <= set(data) else "unknown"


FILES = sorted(p.relative_to(EXPERIMENTS).as_posix() for p in EXPERIMENTS.rglob("*") if p.is_file())


def test_every_file_in_experiments_is_a_scenario_a_variants_file_or_a_chaos_experiment():
    kinds = {name: kind_of(EXPERIMENTS / name) for name in FILES}
    assert "unknown" not in kinds.values(), kinds
    assert list(kinds.values()).count("scenario") >= 4 and "variants" in kinds.values() and "chaos" in kinds.values()


@pytest.mark.parametrize("name", [n for n in FILES if kind_of(EXPERIMENTS / n) == "scenario"])
def test_every_bundled_scenario_passes_the_schema(validator, name):
    data = yaml.safe_load((EXPERIMENTS / name).read_text())
    load_scenario(EXPERIMENTS / name)  # the loader accepts it ...
    assert problems(validator, data) == []  # ... so must the schema, as written
    canonical = load_scenario(EXPERIMENTS / name).model_dump(mode="json")
    assert problems(validator, canonical) == []  # and in the canonical form (seconds, mappings)


@pytest.mark.parametrize("name", [n for n in FILES if kind_of(EXPERIMENTS / n) == "variants"])
def test_every_bundled_variant_applied_to_its_scenario_passes_the_schema(validator, name):
    """A variants file is not a scenario: each variant's `set` paths, applied to checkout-canary, make one."""
    from simlab.experiment.overrides import load_variants, parse_path

    variants, _ = load_variants(EXPERIMENTS / name)
    assert problems(validator, yaml.safe_load((EXPERIMENTS / name).read_text()))  # not a scenario itself
    for variant in variants:
        data = copy.deepcopy(CHECKOUT)
        for path, value in variant.overrides.items():
            *parents, last = parse_path(path)
            cursor = data
            for part in parents:
                cursor = cursor[part]
            cursor[last] = value
        assert loads(data), variant.name
        assert problems(validator, data) == [], variant.name


@pytest.mark.parametrize("name", [n for n in FILES if kind_of(EXPERIMENTS / n) == "chaos"])
def test_a_chaos_toolkit_experiment_is_not_a_scenario(validator, name):
    assert problems(validator, json.loads((EXPERIMENTS / name).read_text()))


def test_the_documented_scenarios_pass_the_schema(validator):
    text = (ROOT / "docs" / "scenario.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if b.startswith("name:")]
    assert len(blocks) >= 2
    for block in blocks:
        assert problems(validator, yaml.safe_load(block)) == []


# --- every accepted form of a value -----------------------------------------------------------

def with_value(path: tuple, value) -> dict:
    """checkout-canary with one value replaced (a missing mapping on the way is created)."""
    data = copy.deepcopy(CHECKOUT)
    cursor = data
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {}) if isinstance(part, str) else cursor[part]
    cursor[path[-1]] = value
    return data


ACCEPTED = {
    "duration as seconds": (("fleet", "startup"), 20),
    "duration as a float": (("fleet", "startup"), 2.5),
    "duration as a string of seconds": (("fleet", "startup"), "90"),
    "duration in ms": (("traffic", "timeout"), "250ms"),
    "duration in hours": (("duration",), "1h"),
    "duration in days": (("slo", "window"), "7d"),
    "duration in parts": (("strategy", "steps", 0, "bake"), "1m30s"),
    "duration in parts with a space": (("strategy", "steps", 0, "bake"), "1h 30m"),
    "fractional duration": (("rollback", "on_call", "ack"), "1.5h"),
    "service time shorthand": (("fleet", "service_time"), "40ms"),
    "service time as a number": (("fleet", "service_time"), 0.04),
    "constant": (("fleet", "service_time"), {"dist": "constant", "value": "40ms"}),
    "exponential": (("fleet", "service_time"), {"dist": "exponential", "mean": "40ms"}),
    "lognormal mean+sigma": (("fleet", "service_time"), {"dist": "lognormal", "mean": 0.04, "sigma": 0.5}),
    "lognormal median+p95": (("fleet", "service_time"), {"dist": "lognormal", "median": "30ms", "p95": "90ms"}),
    "empirical samples": (("fleet", "service_time"), {"dist": "empirical", "samples": ["30ms", 0.05, "1s"]}),
    "pattern by name": (("traffic", "pattern"), "diurnal"),
    "pattern as a mapping": (("traffic", "pattern"), {"kind": "diurnal", "peak_to_trough": 2, "peak_at": "14h"}),
    "rolling with percentages": (("strategy",), {"kind": "rolling", "batch": "25%", "max_surge": 2, "max_unavailable": "0%"}),
    "blue_green": (("strategy",), {"kind": "blue_green", "warmup": "2m", "keep_old": "30m"}),
    "uncertain rate": (("release", "defects", 0, "rate"), {"dist": "lognormal", "median": 0.02, "p95": 0.3}),
    "uncertain add": (("release", "defects"), [{"kind": "latency", "add": {"dist": "uniform", "low": "20ms", "high": "200ms"}}]),
    "uncertain mtbf": (("release", "defects"), [{"kind": "crash", "mtbf": {"dist": "choice", "values": ["5m", "30m", "2h"],
                                                                       "weights": [0.2, 0.5, 0.3]}}]),
    "uncertain onset": (("release", "defects", 0, "onset"), {"after": {"dist": "uniform", "low": "1m", "high": "10m"}}),
    "latency bound as a number": (("analysis", "metrics", 1, "max"), 0.5),
    "staging block": (("staging",), {"duration": "5m", "instances": 4, "fleet": {"startup": "2s"}}),
    "no analysis": (("analysis",), None),
    "decide block": (("decide",), {"objective": "bad_requests_added", "max_deploy_duration": "30m",
                                   "max_false_rollback": 0.05, "max_bad_promoted": 0.05}),
    "decide block with defaults": (("decide",), {}),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_every_accepted_form_passes_the_loader_and_the_schema(validator, case):
    data = with_value(*ACCEPTED[case])
    assert loads(data), case
    assert problems(validator, data) == []


REJECTED = {
    "misspelt top-level key": (("duratoin",), "1h"),
    "misspelt fleet key": (("fleet", "instancs"), 20),
    "misspelt key in a list item": (("strategy", "steps", 0, "bake_time"), "5m"),
    "misspelt key in a defect": (("release", "defects", 0, "rat"), 0.1),
    "misspelt key in a distribution": (("fleet", "service_time", "p90"), "100ms"),
    "duration in unknown units": (("fleet", "startup"), "20 sec"),
    "duration in words": (("duration",), "1 hour"),
    "negative duration": (("traffic", "timeout"), "-2s"),
    "negative seconds": (("fleet", "startup"), -1),
    "zero positive duration": (("monitoring", "scrape_interval"), "0s"),
    "duration as a boolean": (("fleet", "startup"), True),
    "count as words": (("fleet", "instances"), "twenty"),
    "count as a fraction": (("fleet", "workers"), 2.5),
    "count below its minimum": (("fleet", "instances"), 0),
    "unknown load balancer": (("fleet", "load_balancer"), "nearest"),
    "unknown strategy kind": (("strategy", "kind"), "canery"),
    "unknown defect kind": (("release", "defects", 0, "kind"), "errors"),
    "unknown distribution": (("fleet", "service_time", "dist"), "gamma"),
    "probability above 1": (("release", "bad_probability"), 1.5),
    "defects not a list": (("release", "defects"), {"kind": "error_rate", "rate": 0.05}),
    "percentage above 100": (("strategy",), {"kind": "rolling", "batch": "150%"}),
    "pattern needing a file, by name": (("traffic", "pattern"), "replay"),
    "error rate bound as a duration": (("analysis", "metrics", 0, "max"), "10ms"),
    "unknown key in the staging block": (("staging", "instancs"), 4),
    "unknown decide objective": (("decide", "objective"), "bad_reqs"),
    "misspelt key in the decide block": (("decide", "max_false_rollbacks"), 0.1),
    "decide share above 1": (("decide", "max_false_rollback"), 5),
    "decide duration in words": (("decide", "max_deploy_duration"), "half an hour"),
}


@pytest.mark.parametrize("case", REJECTED)
def test_a_scenario_with_an_error_fails_the_loader_and_the_schema(validator, case):
    data = with_value(*REJECTED[case])
    assert not loads(data), case
    assert problems(validator, data), case


# --- schema and loader agree on durations -----------------------------------------------------

NUMBER = st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:g}"),
                   st.from_regex(r"\A[0-9]{0,3}\.[0-9]{1,3}\Z"))
PART = st.tuples(st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,2})?\Z"), st.sampled_from(["ms", "s", "m", "h", "d"]))
WRITTEN = st.one_of(
    NUMBER,
    st.lists(PART, min_size=1, max_size=3).flatmap(
        lambda parts: st.sampled_from(["", " "]).map(lambda sep: sep.join(n + u for n, u in parts))),
    st.text(alphabet="0123456789.+-emsdhx", max_size=8),  # mostly nonsense
)
DURATION_FIELDS = [("fleet", "startup"), ("strategy", "steps", 1, "bake"), ("rollback", "on_call", "ack"),
                   ("traffic", "timeout"), ("slo", "latency_threshold"), ("failures", 0, "mtbf")]  # last three positive


def outside_the_bounds(text: str) -> bool:
    from simlab.scenario.types import MAX_DURATION, MIN_DURATION
    from simlab.units import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError:
        return False
    return seconds > MAX_DURATION or 0 < seconds < MIN_DURATION


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=WRITTEN, field=st.sampled_from(DURATION_FIELDS))
def test_schema_and_loader_agree_on_every_written_duration(validator, text, field):
    # Loader rules the schema does not copy: a minus zero is a valid duration; a string of more than
    # MAX_DURATION (a year) or of less than MIN_DURATION (1µs) but not 0 is not.
    assume(not re.fullmatch(r"-[0.]*", text) and not re.search(r"[eE][+-]?\d{3}", text))
    assume(not outside_the_bounds(text))
    data = with_value(field, text)
    assert loads(data) == (problems(validator, data) == []), text


def test_the_documented_ci_check_runs(tmp_path):
    """docs/scenario.md's shell lines that write the schema and validate a scenario with it, run as written."""
    import os
    import subprocess
    import sys

    text = (ROOT / "docs" / "scenario.md").read_text()
    block = re.search(r"Outside an editor.*?```sh\n(.*?)```", text, re.DOTALL).group(1)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "checkout-canary.yaml").write_text((EXPERIMENTS / "checkout-canary.yaml").read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (tmp_path / "experiments" / "checkout-canary.yaml").write_text("name: x\nduratoin: 1h\n")
    done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "duratoin" in done.stderr
