"""`simlab deploy --target external`: the local staging driven only through command templates, as a team's would be."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from simlab.control.recording import replay_file
from simlab.staging import procs
from simlab.staging.supervisor import Staging
from staging_helpers import DEPLOY, deploy_scenario

SECRET = "tok-5c1e7-do-not-print"
CTL = f"{sys.executable} -m simlab.staging.target_ctl --dir {{state}}"


def _scenario(path: Path, url: str, prometheus: str, state: Path, env: str = "SIMLAB_TEST_TOKEN") -> Path:
    ctl = CTL.format(state=state)
    path.write_text(DEPLOY + textwrap.dedent(f"""\
        staging:
          duration: 24s
          release_at: 3s
          strategy: {{steps: [{{weight: 50, bake: 4s}}, {{weight: 100}}]}}
          target:
            url: {url}
            prometheus: {prometheus}
            env: [{env}]
            total_from: haproxy
            commands:
              start_new_version: "{ctl} --require-env {env} scale new {{count}} --release-epoch {{release_epoch}}"
              scale: "{ctl} --require-env {env} scale {{version}} {{count}}"
              set_weight: "{ctl} set-weight {{percent}}"
              promote: "{ctl} promote --show-env {env}"
              rollback: "{ctl} rollback --show-env {env}"
              status: "{ctl} status"
        """))
    return path


def _simlab(*args, env=None):
    return subprocess.run([sys.executable, "-m", "simlab", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_a_canary_through_commands_is_promoted_and_the_credential_never_written(tmp_path):
    local = tmp_path / "local"
    st = Staging.up(deploy_scenario(), local)
    try:
        path = _scenario(tmp_path / "s.yaml", st.url, st.prometheus_url, local)
        out, record = tmp_path / "out", tmp_path / "observations.jsonl"
        env = {**os.environ, "SIMLAB_TEST_TOKEN": SECRET}
        run = _simlab("deploy", path, "--target", "external", "--dir", tmp_path / "ext", "--load",
                      "--load-workers", "1", "--out", out, "--record", record, "--json", env=env)
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.splitlines()[-1])
        assert summary["outcome"] == "promoted" and summary["failed"] == 0 and summary["requests"] > 400
        # The commands did the work: only the new version runs, and it takes all traffic.
        after = Staging.open(local)
        assert {m.record.version for m in after.members.values() if not m.stopping} == {"new"}
        assert after.ready_counts() == {"old": 0, "new": 2}
        assert "promote" in (local / "target-milestones.log").read_text()
        # Locust ran as master and worker; its per-request records were kept with the results.
        assert (out / "load" / "locust-worker-0.log").exists()
        assert len(list((out / "load" / "records").glob("requests-*.jsonl"))) == 1
        assert replay_file(record).outcome == "promoted"
        # The promote command printed the credential: simlab masked it in its log and wrote it nowhere.
        assert "***" in (tmp_path / "ext" / "external-commands.log").read_text()
        leaks = [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
        assert leaks == [] and SECRET not in run.stdout + run.stderr
    finally:
        st = Staging.open(local)
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)


def test_a_non_loopback_target_needs_allow_host_and_credentials_come_from_the_environment(tmp_path):
    path = _scenario(tmp_path / "s.yaml", "http://10.20.30.40:8080", "http://127.0.0.1:9", tmp_path / "none")
    run = _simlab("deploy", path, "--target", "external", "--dir", tmp_path / "ext")
    assert run.returncode == 2 and "--allow-host 10.20.30.40" in run.stderr
    env = {k: v for k, v in os.environ.items() if k != "SIMLAB_TEST_TOKEN"}
    run = _simlab("deploy", path, "--target", "external", "--dir", tmp_path / "ext", "--allow-host", "10.20.30.40",
                  env=env)
    assert run.returncode == 2 and "set SIMLAB_TEST_TOKEN in the environment" in run.stderr
