"""The committed examples in reports/examples/ are what the code produces today (`make examples` rewrites them).

Each example directory holds the results a command wrote and the report built
from them. The test reads the commands from the Makefile's `examples` recipe,
runs them again (the whole run example; the first block of runs of one strategy
for the compare example, which the lockstep fluid engine simulates exactly as in
the full compare) and compares the fresh results with the committed ones
exactly, then checks each committed report is the report of its committed
results and that the README quotes these results.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "reports" / "examples"
STALE = "the committed example is stale: run `make examples` (and update the README's figures if they changed)"


def make_examples_commands() -> list[list[str]]:
    """The `examples` recipe of the Makefile, variables expanded, one argv per line."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*[?:]?=\s*(.*?)\s*$", text, re.MULTILINE))
    recipe = re.search(r"^examples:.*\n((?:\t.*\n)+)", text, re.MULTILINE).group(1)

    def expand(line: str) -> str:
        for _ in range(5):
            line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), line)
        return line

    return [shlex.split(expand(line.strip())) for line in recipe.splitlines()]


def simlab_command(verb: str) -> list[str]:
    matches = [argv[2:] for argv in make_examples_commands() if argv[0].endswith("simlab") and argv[1] == verb]
    assert len(matches) == 1, f"make examples should run `simlab {verb}` once, found {len(matches)}"
    return matches[0]


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def with_out(args: list[str], out: Path) -> list[str]:
    args = list(args)
    args[args.index("--out") + 1] = str(out)
    return args


def example_dir(args: list[str]) -> Path:
    return ROOT / option(args, "--out")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Fresh results of the examples' commands: the run in a subprocess while the compare's first block runs here."""
    from simlab.experiment.comparison import compare
    from simlab.experiment.replication import FLUID_BLOCK

    tmp = tmp_path_factory.mktemp("examples")
    run_args = simlab_command("run")
    run = subprocess.Popen([sys.executable, "-m", "simlab", "run", *with_out(run_args, tmp / "run"), "--json"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        cmp_args = simlab_command("compare")
        engine = option(cmp_args, "--engine", "request")
        runs = min(int(option(cmp_args, "--runs", "100")), FLUID_BLOCK if engine == "fluid" else 3)
        strategy = (option(cmp_args, "--strategies") or "canary").split(",")[-1]
        result = compare(ROOT / cmp_args[0], strategies=[strategy], runs=runs, seed=int(option(cmp_args, "--seed", "0")),
                         engine=engine, executor="serial")
        _, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    return {"run": tmp / "run", "compare": result.runs}


def test_make_examples_writes_each_example_and_its_report_into_one_directory():
    commands = make_examples_commands()
    for verb in ("run", "compare"):
        out = option(simlab_command(verb), "--out")
        assert out.startswith("reports/examples/"), out
        report = [argv for argv in commands if argv[1:3] == ["report", out]]
        assert report and option(report[0], "--out-root") == str(Path(out).parent), report


def test_the_run_example_is_a_fresh_run(fresh):
    committed = example_dir(simlab_command("run"))
    assert json.loads((fresh["run"] / "summary.json").read_text()) == json.loads(
        (committed / "summary.json").read_text()), STALE
    for name in ("events.csv", "timeline.csv"):
        assert (fresh["run"] / name).read_text() == (committed / name).read_text(), f"{name}: {STALE}"


def test_the_compare_example_is_a_fresh_compare(fresh):
    args = simlab_command("compare")
    committed_dir = example_dir(args)
    meta = json.loads((committed_dir / "meta.json").read_text())
    assert (meta["runs"], meta["engine"], meta["seed"]) == (
        int(option(args, "--runs")), option(args, "--engine"), int(option(args, "--seed", "0"))), STALE
    runs = pd.read_parquet(committed_dir / "runs.parquet")
    new = fresh["compare"]
    variant = new["variant"].iloc[0]
    old = runs[(runs["variant"] == variant) & (runs["run"] < len(new))].reset_index(drop=True)
    pd.testing.assert_frame_equal(new.reset_index(drop=True), old, check_exact=True, check_dtype=False,
                                  obj=f"runs of {variant} ({STALE})")


def test_the_compare_table_is_the_aggregate_of_its_runs():
    from simlab.experiment.aggregate import table as aggregate_table

    d = example_dir(simlab_command("compare"))
    runs = pd.read_parquet(d / "runs.parquet")
    committed = pd.read_csv(d / "compare.csv")
    pd.testing.assert_frame_equal(aggregate_table(runs, ["variant"]).reset_index(drop=True), committed,
                                  check_dtype=False, rtol=1e-12, obj=f"compare.csv ({STALE})")


@pytest.mark.parametrize("verb", ["run", "compare"])
def test_each_committed_report_is_the_report_of_its_committed_results(verb, monkeypatch):
    from simlab.report import build_report
    from simlab.report.document import render_markdown

    monkeypatch.chdir(ROOT)  # the report names its source directory as given: reports/examples/...
    out = option(simlab_command(verb), "--out")
    assert render_markdown(build_report(out)) == (ROOT / out / "report.md").read_text(), STALE


# --- the README quotes the examples ---------------------------------------------------------

def readme_block(command: str) -> list[str]:
    """The lines of the README's console block that starts with `$ <command>`, without that line."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"$ {command}")
    block = text[start:text.index("```", start)]
    return block.splitlines()[1:]


def test_the_readme_run_output_is_the_run_example():
    from simlab.console import summary_lines
    from simlab.report.sources import load_run

    result = load_run(example_dir(simlab_command("run"))).result
    lines = readme_block("simlab run experiments/checkout-canary.yaml")
    for label, value in summary_lines(result):
        assert any(re.fullmatch(rf"│ {re.escape(label)}\s+│ {re.escape(value)}\s+│", line) for line in lines), \
            f"README's `simlab run` output shows another {label!r} than {value!r}: {STALE}"


def test_the_readme_compare_table_is_the_compare_example(capsys):
    from simlab.cli.experiment import print_table

    args = simlab_command("compare")
    d = example_dir(args)
    meta = json.loads((d / "meta.json").read_text())
    print_table(pd.read_csv(d / "compare.csv"), ["variant"],
                f"simlab compare: {meta['scenario']}, {meta['runs']} runs each, engine {meta['engine']}, seed {meta['seed']}")
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    shown = [line.rstrip() for line in readme_block(f"simlab compare {args[0]} --runs {meta['runs']} --engine "
                                                    f"{meta['engine']}")]
    assert shown[:len(printed)] == printed, f"README's compare table differs from the example's: {STALE}"
