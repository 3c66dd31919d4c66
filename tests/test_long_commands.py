"""Commands longer than the kernel's limit on one argument (128 KiB on
Linux) run, under ``pivot run``, ``pivot emit sh`` and ``pivot emit ninja``
alike: the shell reads them from a file instead of ``-c`` text."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pivot.backends import execute
from tests.emit_helpers import NINJA

N_NAMES = 28_000  # 11 bytes a name: a 300 KB command line


def _long_command() -> str:
    names = " ".join(f"f{i:05d}.csv" for i in range(N_NAMES))
    return f"printf '%s\\n' {names} > listing.txt"


def _write(ws) -> str:
    cmd = _long_command()
    assert len(cmd.encode()) > 300_000
    ws.write("dvc.yaml", f"stages:\n  summary:\n    cmd: {cmd}\n    deps: [in.txt]\n    outs: [listing.txt]\n")
    ws.write("in.txt", "x\n")
    return cmd


def _listing_is_complete(root: Path) -> None:
    lines = (root / "listing.txt").read_text().splitlines()
    assert len(lines) == N_NAMES
    assert lines[0] == "f00000.csv" and lines[-1] == f"f{N_NAMES - 1:05d}.csv"


def test_run_commands_runs_a_300_kb_command_with_its_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "summary.log"
    log.parent.mkdir()
    cmd = _long_command() + " && echo done && exit 7"
    result = execute.run_commands(
        [cmd], cwd=tmp_path, env=dict(os.environ), log_path=log,
        groups=execute.ProcessGroups(), shell=("/bin/sh", "-c"),
    )
    assert result.exit_code == 7 and result.failed_command == cmd
    _listing_is_complete(tmp_path)
    assert log.read_text().endswith("done\n")
    assert os.listdir(log.parent) == ["summary.log"]  # the script file is gone


def test_a_shell_that_cannot_start_is_a_stage_failure_said_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "stage.log"
    result = execute.run_commands(
        ["true"], cwd=tmp_path, env=dict(os.environ), log_path=log,
        groups=execute.ProcessGroups(), shell=(str(tmp_path / "no-such-shell"), "-c"),
    )
    assert not result.ok and result.exit_code == 126 and result.failed_command == "true"
    assert "cannot start the shell" in log.read_text()


def test_pivot_run_runs_a_300_kb_command(ws) -> None:
    _write(ws)
    ws.pivot("run")
    _listing_is_complete(ws.root)
    assert "up to date" in ws.pivot("status").stdout.lower()


@pytest.mark.slow
def test_emitted_sh_runs_a_300_kb_command(ws) -> None:
    _write(ws)
    ws.pivot("emit", "sh", "-o", "plan.sh")
    proc = subprocess.run(["bash", "plan.sh"], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    _listing_is_complete(ws.root)


@pytest.mark.slow
def test_emitted_ninja_runs_a_300_kb_command_through_a_response_file(ws) -> None:
    _write(ws)
    ws.pivot("emit", "ninja")
    text = ws.read("build.ninja")
    assert "rule stage_long" in text and "rspfile" in text
    proc = subprocess.run([NINJA], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _listing_is_complete(ws.root)
    assert "ninja: no work to do." in subprocess.run([NINJA], cwd=ws.root, capture_output=True, text=True).stdout


def test_a_short_pipeline_emits_no_long_stage_rule(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    ws.pivot("emit", "ninja")
    assert "stage_long" not in ws.read("build.ninja")


@pytest.mark.slow
def test_a_summary_over_50_000_inputs_runs_under_run_and_ninja(ws, tmp_path) -> None:
    n = 50_001
    data = ws.root / "data"
    data.mkdir()
    for i in range(n):
        (data / f"s{i}.csv").write_text(f"{i}\n")
    inputs = [f"data/s{i}.csv" for i in range(n)]
    ws.write("dvc.yaml", "stages:\n  summary:\n    cmd: cat " + " ".join(inputs) + " | wc -l > total.txt\n"
             "    deps: [" + ", ".join(inputs) + "]\n    outs: [total.txt]\n")
    ws.pivot("emit", "ninja")
    proc = subprocess.run([NINJA], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ws.read("total.txt").strip() == str(n)
    (ws.root / "total.txt").unlink()
    ws.pivot("run")
    assert ws.read("total.txt").strip() == str(n)
