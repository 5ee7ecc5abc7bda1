"""Version indices every engine array and ledger uses: OLD and NEW (and NO_BACKEND for a request no instance took)."""

OLD, NEW, NO_BACKEND = 0, 1, 2
VERSION_NAMES = ("old", "new")  # name of each version index, as in the timeline's columns and controller's counts
