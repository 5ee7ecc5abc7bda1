"""Entry point of the `simlab` command: the only place that exits or maps errors to exit codes.

Each command module registers its commands on `simlab.cli.app.app` when imported:
simulate (check, schema, run), experiment (compare, sweep), quality (analysis-quality), report, staging
(staging up/status/down/load, deploy, validate). None imports a heavy package at
module level, so `simlab --help` stays fast.
"""
from __future__ import annotations

import sys

# Imported for their commands, which register on app in this order (the order of `simlab --help`).
from simlab.cli import simulate  # noqa: F401  isort: skip
from simlab.cli import lint  # noqa: F401  isort: skip
from simlab.cli import experiment  # noqa: F401  isort: skip
from simlab.cli import quality  # noqa: F401  isort: skip
from simlab.cli import planning  # noqa: F401  isort: skip
from simlab.cli import report  # noqa: F401  isort: skip
from simlab.cli import staging  # noqa: F401  isort: skip
from simlab.cli import calibrate  # noqa: F401  isort: skip
from simlab.cli import locustfile  # noqa: F401  isort: skip
from simlab.cli import chaos  # noqa: F401  isort: skip
from simlab.cli import bridges  # noqa: F401  isort: skip
from simlab.cli import optimize  # noqa: F401  isort: skip
from simlab.cli.app import app
from simlab.errors import SimlabError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `simlab` command; returns the exit code (0 ok, 2 bad input, 1 other)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except SimlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click's usage errors (typer may bundle its own click) and anything unexpected
        kind = type(exc).__name__
        if kind == "Abort":
            return 130
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # UsageError, BadParameter, ClickException
            exc.show()
            return 2 if isinstance(exc.exit_code, int) and exc.exit_code == 2 else exc.exit_code
        raise
    # In non-standalone mode click returns an exit code (e.g. 130 for Ctrl-C) instead of exiting.
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
