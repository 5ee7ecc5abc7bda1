"""The hand-made results directories in tests/helpers/reports.py match the documented file formats."""
from __future__ import annotations

import pandas as pd

from simlab import SUMMARY_KEYS
from tests.helpers.reports import VARIANTS, write_compare_dir, write_sweep_dir


def test_fixtures_match_the_documented_formats(tmp_path):
    compare = write_compare_dir(tmp_path / "cmp")
    table = pd.read_csv(compare / "compare.csv")
    assert list(table["variant"]) == list(VARIANTS)
    runs = pd.read_parquet(compare / "runs.parquet")
    assert set(SUMMARY_KEYS) | {"variant", "run", "run_seed", "bad_release"} <= set(runs.columns)
    sweep = write_sweep_dir(tmp_path / "sw")
    assert list(pd.read_csv(sweep / "table.csv").columns[:3]) == ["strategy.steps[0].bake", "analysis.interval", "runs"]
