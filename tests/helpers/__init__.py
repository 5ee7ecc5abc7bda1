"""Helpers the test modules share; nothing here is collected as a test.

- `control`: a fake driver for the pure rollout controller (FakeFleet, ScriptedMetrics, drive, build_scenario).
- `scenarios`: small engine scenarios (`scenario("rolling", **{"release.defects": [...]})`).
- `reports`: hand-made compare/sweep results directories, a PNG size reader and the headless-Chromium check.

Fixtures (the one simulated bad canary several modules report on) are in tests/conftest.py.
"""
