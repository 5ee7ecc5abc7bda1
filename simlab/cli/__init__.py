"""The `simlab` command line: parse, call the library, print. `main(argv)` returns the exit code."""
from simlab.cli.main import main

__all__ = ["main"]
