"""The command line explains itself: `simlab <command> --help` renders for every command and group, lists each
option's choices and its default, shows flags as flags, and ends with one or two examples that parse; `simlab
--help` lists the commands in the order of the work."""
from __future__ import annotations

import shlex

import pytest
import typer

from simlab.cli.app import WORKFLOW, app
from simlab.cli.main import main
from simlab.scenario import STRATEGY_KINDS

CHOICES = {
    "--engine": ("request", "fluid", "auto"),
    "--executor": ("local", "dask", "serial"),
    "--strategy": STRATEGY_KINDS,
    "--strategies": STRATEGY_KINDS,
    "--target": ("local", "external"),
    "--sampler": ("tpe", "nsga2", "random"),
}


def tree():
    """(path of names, click command) of every command and group under `simlab`."""
    out = []

    def walk(command, path):
        if path:
            out.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = tree()


def help_of(capsys, path) -> str:
    assert main([*path, "--help"]) == 0
    return capsys.readouterr().out


def option_text(out: str, name: str) -> str:
    """The help lines of one option: its line in the Options section and the lines continuing it."""
    lines = out.split("\nOptions:\n", 1)[1].splitlines()
    def names(line: str) -> list[str]:  # "  -o, --out <path>  ..." -> ["-o", "--out"]
        return [w.split()[0] for w in line.strip().split("  ")[0].split(", ") if w.startswith("-")]

    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("-") and name in names(line))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if line.lstrip().startswith("-") or not line.startswith("      "):
            break
        block.append(line)
    return " ".join(block)


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_shows_choices_defaults_flags_and_ends_with_examples_that_parse(path, command, capsys):
    out = help_of(capsys, path)
    assert "<bool>" not in out, "flags show as flags"
    assert "Examples:" in out, f"simlab {' '.join(path)} --help should end with an example or two"
    examples = [line.strip() for line in out.split("Examples:", 1)[1].split("\n\n", 1)[0].strip().splitlines()]
    assert 1 <= len(examples) <= 2 and all(e.startswith(f"simlab {' '.join(path)}") for e in examples), examples
    for example in examples:  # parsed as the command would parse them (options and types), not run
        words = shlex.split(example.split(" > ")[0].split(" | ")[0])[1:]  # up to a shell redirection
        target, rest = typer.main.get_command(app), words
        while getattr(target, "commands", None) and rest and rest[0] in target.commands:
            target, rest = target.commands[rest[0]], rest[1:]
        with target.make_context(" ".join(words[: len(words) - len(rest)]), list(rest)):
            pass
    if getattr(command, "commands", None):
        return
    for param in command.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        name = max(param.opts, key=len)
        text = option_text(out, name)
        for choice in CHOICES.get(name, ()):
            assert choice in text, f"{name} of simlab {' '.join(path)} should list {choice}: {text}"
        if not param.is_flag and not param.required:
            assert "default" in text.lower(), f"{name} of simlab {' '.join(path)} should say its default: {text}"


def test_commands_are_listed_in_the_order_of_the_work(capsys):
    out = help_of(capsys, [])
    listed = [line.split()[0] for line in out.split("\nCommands:\n", 1)[1].splitlines() if line.startswith("  ")]
    rank = {name: i for i, name in enumerate(WORKFLOW)}
    assert listed == sorted(listed, key=lambda n: rank.get(n, len(rank)))
    assert listed[:3] == ["import", "check", "lint"] and listed.index("run") < listed.index("compare") \
        < listed.index("report") < listed.index("deploy")
