"""Version indices every engine array and ledger uses: OLD, NEW and BASELINE (a canary's baseline: fresh instances
of the old version, strategy.canary.baseline), and NO_BACKEND for a request no instance took.

Arrays sized by version have `version_count(scenario)` rows: 2 (OLD, NEW) unless the scenario runs a baseline, so a
run without one carries the same arrays, in the same order, as before the baseline existed.
"""

OLD, NEW, BASELINE, NO_BACKEND = 0, 1, 2, 3
VERSION_NAMES = ("old", "new", "baseline")  # name of each version index, as in the timeline's columns and controller's counts
RUNS = (OLD, NEW, OLD)  # the code each version index runs: the baseline serves as the old version does (no defect)


def index(name: str) -> int:
    """The index of a version named as the controller names it ('old', 'new' or 'baseline')."""
    return VERSION_NAMES.index(name)


def version_count(scenario) -> int:
    """How many version slots a run of `scenario` needs: 3 with a canary baseline, else 2."""
    return 3 if getattr(scenario.strategy, "baseline", False) and scenario.release is not None else 2
