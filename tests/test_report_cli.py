"""`simlab report`: which kind a directory is, where the files go, and exit code 2 with a clear message on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simlab.cli import main
from simlab.errors import ScenarioError
from simlab.report import detect_kind
from tests.helpers.reports import write_compare_dir, write_sweep_dir


def test_kind_comes_from_meta_json_or_the_files_present(tmp_path):
    assert detect_kind(write_compare_dir(tmp_path / "c")) == "compare"
    assert detect_kind(write_sweep_dir(tmp_path / "s")) == "sweep"
    (tmp_path / "c" / "meta.json").unlink()
    assert detect_kind(tmp_path / "c") == "compare"
    run = tmp_path / "r"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    (run / "timeline.csv").write_text("t\n")
    assert detect_kind(run) == "run"


def test_unknown_kind_in_meta_json_is_named(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "replicate"}))
    with pytest.raises(ScenarioError, match=r"kind is 'replicate'; simlab report knows run, compare, sweep"):
        detect_kind(tmp_path)


def test_cli_writes_both_files_and_says_where(tmp_path, capsys):
    results = write_compare_dir(tmp_path / "canary-vs-all")
    code = main(["report", str(results), "--out-root", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert code == 0
    target = tmp_path / "reports" / "canary-vs-all"
    assert f"compare report of {results}:" in out
    assert str(target / "report.html") in out and str(target / "report.md") in out
    assert (target / "report.html").stat().st_size > 10_000
    assert sorted(p.name for p in target.glob("*.png")) == ["bad_requests.png", "detect_recover.png"]


def test_cli_name_option_picks_the_report_directory(tmp_path, capsys):
    results = write_sweep_dir(tmp_path / "sweep")
    assert main(["report", str(results), "--name", "bake-vs-interval", "--out-root", str(tmp_path)]) == 0
    assert (tmp_path / "bake-vs-interval" / "report.md").is_file()


def test_missing_directory_exits_2_with_its_name(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert f"error: results directory {tmp_path / 'nope'} does not exist" in capsys.readouterr().err


def test_directory_of_something_else_exits_2_saying_what_was_expected(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a simlab results directory" in err
    assert "summary.json + timeline.csv" in err and "compare.csv" in err and "found notes.txt" in err


def test_importing_the_cli_and_reports_does_not_import_matplotlib():
    code = "import sys, simlab.cli, simlab.report, simlab.report.build; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
