"""`simlab check` fed random and mutated scenarios: exit 0 or 2, a clear message, never a traceback, never slow.

The mutations start from the bundled scenarios in experiments/ and drop keys,
swap types, write huge, negative, NaN and infinite numbers, random strings and
deep nesting; random text and bytes stand for files that are not scenarios at
all. Hypothesis is derandomized, so CI runs the same examples every time
(10-25 s in all, by the machine's load). The bomb files that would hang or exhaust memory on a
regression run the real `simlab check` in a subprocess with an address-space
limit and a timeout.
"""
from __future__ import annotations

import contextlib
import copy
import io
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simlab.engines.fluid.domain  # noqa: F401  imported once here, not inside the first timed example
from simlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
SIMLAB = Path(sys.executable).with_name("simlab")
BUNDLED = [data for data in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "experiments").glob("*.yaml")))
           if isinstance(data, dict) and {"name", "fleet", "traffic"} <= set(data)]
DEEP = "__deep_{}__"
LINT = "lint error(s) in the rollout policy"
HUGE = "__huge__"  # written as 5,000 digits: more than Python converts to an int by default

NUMBERS = st.one_of(
    st.integers(-10**30, 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e-308, 1e12, 1e300, 1e308, -1e308, 2**63, 2**64, HUGE]),
)
STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["1e300d", "36500d", "1e400", "-5s", ".nan", ".inf", "yes", "0x10", "1_000", "~", "25%",
                     "150%", "1m30s", "soon", "2024-13-45", "*a", "&a", "!!python/object:os.system", "/dev/zero"]),
)
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans(), st.none())
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.sampled_from(["kind", "dist", "file", "at", "x", "mean", "rate"]), SCALARS, max_size=3),
    st.integers(1, 5000).map(DEEP.format),  # nesting this deep, written as brackets
)


def paths(data, prefix=()):
    """Every path to a value in nested dicts and lists."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from paths(value, prefix + (i,))


def mutate(data, path, how: str, value):
    if not path:
        return value if how == "replace" else data
    cursor = data
    for part in path[:-1]:
        cursor = cursor[part]
    last = path[-1]
    if how == "drop":
        del cursor[last]
    elif how == "replace":
        cursor[last] = value
    elif how == "as text":
        cursor[last] = str(cursor[last])
    elif how == "in a list":
        cursor[last] = [cursor[last]]
    elif how == "many":
        cursor[last] = [cursor[last]] * 500
    return data


@st.composite
def mutated_scenarios(draw) -> str:
    data = copy.deepcopy(draw(st.sampled_from(BUNDLED)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(paths(data))))
        how = draw(st.sampled_from(["drop", "replace", "replace", "replace", "as text", "in a list", "many"]))
        data = mutate(data, path, how, draw(VALUES))
    text = yaml.safe_dump(data, sort_keys=False)
    text = re.sub(r"__deep_(\d+)__", lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)
    return text.replace(HUGE, "9" * 5000)


DOCUMENTS = st.one_of(
    mutated_scenarios(),
    mutated_scenarios(),
    mutated_scenarios(),
    st.text(max_size=300),
    st.binary(max_size=300),
)
OPTIONS = st.sampled_from([[], [], ["--engine", "fluid"], ["--engine", "auto"], ["--runs", "100"]])


def check(content, options: list[str]) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", str(path), *options])
        return code, out.getvalue(), err.getvalue()


@settings(max_examples=150, derandomize=True, deadline=timedelta(seconds=5), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(content=DOCUMENTS, options=OPTIONS)
def test_check_exits_0_or_2_with_a_clear_message_and_never_a_traceback(content, options):
    code, out, err = check(content, options)  # an exception escaping main() fails here, with the example
    assert code in (0, 2) or (code == 1 and LINT in err), (code, out, err)
    assert "Traceback" not in out + err
    if code == 0:
        assert ": valid — " in out and err == ""
    elif code == 1:  # valid, but a rollout policy `simlab lint` finds errors in (tests/test_lint*.py)
        assert ": valid — " in out and err.count("\n") == 1
    else:
        first, *more = err.rstrip("\n").split("\n")
        assert first.startswith("error: ") and out == ""
        assert all(line.startswith("  - ") for line in more), err  # the problems of one invalid scenario


def test_the_mutations_start_from_valid_scenarios():
    """The fuzzer is not only feeding garbage: it mutates scenarios `simlab check` accepts."""
    codes = {check(text, [])[0] for text in [yaml.safe_dump(d) for d in BUNDLED]}
    assert 0 in codes and codes <= {0, 1}
    data = copy.deepcopy(BUNDLED[0])
    data["traffic"]["rps"] = True
    assert check(yaml.safe_dump(data), [])[0] == 2


# --- bombs, run as the real command -------------------------------------------------------------

def laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines + ["name: *a9", ""])


BOMBS = {
    "billion laughs": (laughs(), "aliases expand to more than 20,000 values by here"),
    "5,000 nested lists": ("name: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
    "5,000 nested mappings": ("name: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", "nested more than 64 levels deep"),
    "recursive anchor": ("a: &a [*a]\nname: x\n", "YAML alias *a refers to its own anchor &a"),
    "recursive merge key": ("a: &a {<<: *a}\nname: x\n", "YAML alias *a refers to its own anchor &a"),
    "1 GiB of zeros": (None, "expected a scenario file of at most 1 MiB, found a larger one"),
}


@pytest.mark.parametrize("case", BOMBS)
def test_a_bomb_is_refused_by_the_real_command_in_seconds_and_little_memory(tmp_path, case):
    text, needle = BOMBS[case]
    path = tmp_path / "bomb.yaml"
    if text is None:
        path = Path("/dev/zero")
    else:
        path.write_text(text)

    def cap() -> None:  # 1 GiB of address space: the billion laughs took 3 GB before it was bounded
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    start = time.monotonic()
    proc = subprocess.run([str(SIMLAB), "check", str(path)], capture_output=True, text=True, timeout=60,
                          preexec_fn=cap)
    seconds = time.monotonic() - start
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and needle in lines[0], proc.stderr
    assert seconds < 30


# --- the other YAML inputs: a variants file and Kubernetes manifests -----------------------------

@pytest.mark.parametrize("kind", ["variants", "manifest"])
def test_a_bomb_in_a_variants_file_or_a_manifest_is_refused_in_one_line(tmp_path, kind):
    from simlab.bridges.manifests import read_documents
    from simlab.errors import ScenarioError
    from simlab.experiment.overrides import load_variants

    path = tmp_path / f"bomb-{kind}.yaml"
    path.write_text(laughs() if kind == "variants" else "kind: Rollout\n---\n" + laughs())
    read = load_variants if kind == "variants" else read_documents
    start = time.monotonic()
    with pytest.raises(ScenarioError, match="aliases expand to more than 20,000 values by here") as caught:
        read(path)
    assert time.monotonic() - start < 10 and "\n" not in str(caught.value) and str(path) in str(caught.value)
