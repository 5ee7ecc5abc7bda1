"""`python -m simlab` and the `simlab` console script."""
import sys


def run() -> None:
    from simlab.cli import main

    sys.exit(main())


if __name__ == "__main__":
    run()
