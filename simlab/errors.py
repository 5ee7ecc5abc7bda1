"""The one exception root; only the CLI turns these into exit codes and text."""
from __future__ import annotations


class SimlabError(Exception):
    """Root of every error simlab raises on purpose."""

    exit_code = 1


class ScenarioError(SimlabError):
    """Bad input: a scenario or argument that does not validate (exit code 2).

    `problems` holds one line per problem, each naming where (file:line, the
    dotted field path), what was expected and what was found.
    """

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        super().__init__(message)

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class SimulationError(SimlabError):
    """The simulation reached a state it cannot continue from."""


class StagingError(SimlabError):
    """A staging process, port or binary did not behave."""


class PolicyError(SimlabError):
    """A rollout policy with lint errors (`simlab lint`, `simlab check`); the findings printed say which."""


class Interrupted(SimlabError):
    """Stopped by Ctrl-C, SIGINT or SIGTERM; the message says what was kept (exit code 130)."""

    exit_code = 130
