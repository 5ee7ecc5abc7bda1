"""`simlab deploy --predict`: a real deploy, the simulation of the same staging scenario, and the report of both."""
from __future__ import annotations

import json
import re

from simlab.cli import main
from simlab.results import SUMMARY_KEYS
from staging_helpers import DEPLOY

BAD = "staging: {duration: 24s, release: {defects: [{kind: error_rate, rate: 0.3}]}}\n"


def test_deploy_with_predict_writes_the_prediction_and_a_key_by_key_report(tmp_path, capsys):
    path = tmp_path / "canary-bad.yaml"
    path.write_text(DEPLOY + BAD)
    out, state = tmp_path / "out", tmp_path / "state"
    code = main(["deploy", str(path), "--dir", str(state), "--load", "--out", str(out), "--predict"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert not (state / "state.json").exists()  # the deploy started staging, so it stopped it
    observed = json.loads((out / "summary.json").read_text())
    predicted = json.loads((out / "predicted" / "summary.json").read_text())
    assert (observed["engine"], predicted["engine"]) == ("staging", "request")
    assert predicted["seed"] == observed["seed"] == 5 and predicted["scenario"] == observed["scenario"]
    assert predicted["outcome"] == observed["outcome"] == "rolled_back"

    md = (out / "report" / "report.md").read_text()
    assert (out / "report" / "report.html").is_file() and (out / "report" / "overlay.png").is_file()
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| "))}
    for key in SUMMARY_KEYS:
        assert key in rows, key
        both = [observed[key], predicted[key]]
        if key == "deploy_duration_s":  # rolled back: neither promoted
            assert rows[key][:2] == ["-", "-"]
        else:
            assert None not in both and "-" not in rows[key][:2] and "" not in rows[key][:2], (key, rows[key])
    assert rows["failed"][:2] == [f"{predicted['failed']:,}", f"{observed['failed']:,}"]
    assert (f"The simulation predicted {predicted['failed']} failed requests, "
            f"staging observed {observed['failed']}") in md
    assert "| release started (canary) | +0.0s | release started (canary) | +0.0s | same, +0.0s |" in md

    assert "predicted (simulation, request engine, seed 5) next to observed (staging):" in printed
    assert re.search(rf"failed\s+{predicted['failed']}\s+{observed['failed']}\s", printed), printed
    assert f"report: {out / 'report' / 'report.html'}" in printed


def test_predict_without_out_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(DEPLOY)
    assert main(["deploy", str(path), "--dir", str(tmp_path / "state"), "--predict"]) == 2
    assert "--predict: expected --out DIR as well" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # refused before anything started
