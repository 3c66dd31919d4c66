"""`pivot emit sh`: golden text, and real bash giving what `pivot run -j 1` gives."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import Workspace
from tests.emit_helpers import results, scrub, write_example


def _bash(ws, script: str = "plan.sh", cwd: str = ".") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ws.root / script)], cwd=ws.root / cwd, capture_output=True, text=True)


def test_script_text_is_stable(ws, snapshot):
    write_example(ws)
    text = ws.pivot("emit", "sh").stdout
    assert scrub(text, ws.root) == snapshot


@pytest.mark.slow
def test_script_gives_what_pivot_run_gives(ws, tmp_path):
    write_example(ws)
    twin = tmp_path / "twin"
    shutil.copytree(ws.root, twin)

    ws.pivot("emit", "sh", "-o", "plan.sh")
    assert os.access(ws.root / "plan.sh", os.X_OK)
    proc = _bash(ws, cwd="sub")  # the root is found from the script's location
    assert proc.returncode == 0, proc.stderr
    assert "Pipelines are up to date" in ws.pivot("status").stdout

    Workspace(twin).pivot_proc("run", "-j", "1")
    assert results(ws.root) == results(twin)


@pytest.mark.slow
def test_second_script_reruns_only_what_changed_over_read_only_outputs(ws):
    write_example(ws)
    ws.pivot("run", "-j", "1")
    (ws.root / "params.yaml").write_text("lr: 0.2\nother: 1\n")
    text = ws.pivot("emit", "sh").stdout
    assert "# train" in text and "# prep" not in text and "# count" not in text
    assert "#   command changed" in text  # ${lr} is interpolated into it
    (ws.root / "plan.sh").write_text(text)
    proc = _bash(ws)
    assert proc.returncode == 0, proc.stderr
    assert "lr=0.2" in ws.read("model.txt")
    assert "Pipelines are up to date" in ws.pivot("status").stdout


def test_no_record_leaves_out_commit_and_up_to_date_stages_are_listed(ws):
    write_example(ws)
    ws.pivot("run", "-j", "1")
    assert "# Nothing to run." in ws.pivot("emit", "sh").stdout
    text = ws.pivot("emit", "sh", "--all", "--no-record", "train").stdout
    assert "commit" not in text.split("_pivot_stage=\ntrap")[1]
    assert "#   forced" in text
    assert "# sub/dvc.yaml:report" not in text  # not selected


@pytest.mark.slow
def test_cd_does_not_leak_into_the_next_command(ws):
    ws.write("d/keep.txt", "x")
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd:
              - cd d && pwd > ../first.txt
              - pwd > second.txt  # a comment must not swallow the subshell
            outs: [first.txt, second.txt]
        """)
    ws.pivot("emit", "sh", "-o", "plan.sh")
    assert _bash(ws).returncode == 0
    assert ws.read("second.txt").strip() == str(ws.root)
    assert ws.read("first.txt").strip() == str(ws.root / "d")


@pytest.mark.slow
def test_failure_stops_the_script_and_names_the_stage(ws):
    ws.write("dvc.yaml", """\
        stages:
          bad:
            cmd: echo partial > out.txt; exit 7
            outs: [out.txt]
          after:
            cmd: echo never > after.txt
            deps: [out.txt]
            outs: [after.txt]
        """)
    ws.pivot("emit", "sh", "-o", "plan.sh")
    proc = _bash(ws)
    assert proc.returncode == 7
    assert "error: stage bad failed (exit 7)" in proc.stderr
    assert not (ws.root / "after.txt").exists()
    assert not (ws.root / ".pivot" / "locks" / "bad.json").exists()


def test_script_refuses_to_run_outside_the_project(ws, tmp_path):
    write_example(ws)
    text = ws.pivot("emit", "sh").stdout
    proc = subprocess.run(["bash", "-c", text], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "is not the project root: it has no dvc.yaml" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sp ace.txt", "d$llar.txt", "q'uote.txt", 'dq"uote.txt', "gl*b?.txt", "ünï.txt"])
def test_awkward_output_paths(ws, name):
    cmd = _yaml("printf x > " + _sh(name))
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: " + cmd + "\n    outs:\n      - " + _yaml(name) + "\n")
    ws.pivot("emit", "sh", "-o", "plan.sh")
    ws.write(name, "old")
    os.chmod(ws.root / name, 0o444)  # as cached outputs are
    proc = _bash(ws)
    assert proc.returncode == 0, proc.stderr
    assert ws.read(name) == "x"


def _yaml(value: str) -> str:
    import json

    return json.dumps(value)


def _sh(value: str) -> str:
    from pivot.backends.escape import sh_quote

    return sh_quote(value)
