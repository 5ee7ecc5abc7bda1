"""simlab's test suite: a package, so test modules import shared helpers as `tests.helpers.<module>`.

tests/staging/ is not part of this package (no __init__.py): pytest imports its modules by their own
names, with tests/staging on sys.path.
"""
