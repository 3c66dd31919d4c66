"""Regression tests for robustness bugs QA found in the runner, the state
and the cache: every one runs real commands on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.backends.runner import log_relpath
from pivot.state.locks import lock_filename

LONG_ITEM = "data/raw/2024/experiments/" + "very_long_dataset_name_" * 14


def test_a_very_long_stage_address_gets_a_short_log_name(ws) -> None:
    ws.write("dvc.yaml", f"""\
        stages:
          train:
            foreach: [{LONG_ITEM}]
            do:
              cmd: echo ok > out.txt
              outs: [out.txt]
        """)
    proc = ws.pivot_proc("run", timeout=60)
    assert ws.read("out.txt") == "ok\n"
    logs = list((ws.root / ".pivot" / "logs").iterdir())
    assert len(logs) == 1 and len(logs[0].name.encode()) <= 255
    assert "1 ran" in proc.stdout + proc.stderr


def test_logs_and_lock_records_share_one_naming_scheme() -> None:
    address = "sub/dvc.yaml:build@" + "x" * 300
    assert log_relpath(address) == ".pivot/logs/" + lock_filename(address)[: -len(".json")] + ".log"
    assert log_relpath("sub/dvc.yaml:build@0.5") == ".pivot/logs/sub%2Fdvc%2Eyaml%3Abuild%400%2E5.log"


def test_an_unexpected_worker_error_fails_the_stage_instead_of_hanging(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          a:
            cmd: echo a > a.txt
            outs: [a.txt]
          b:
            cmd: echo b > b.txt
            outs: [b.txt]
        """)
    (ws.root / log_relpath("a")).mkdir(parents=True)  # the log cannot be opened
    proc = ws.pivot_proc("run", "-j", "1", "-k", check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert "FAILED a" in output and "IsADirectoryError" in output
    assert ws.read("b.txt") == "b\n"  # the run went on (-k) and ended normally
    # the run lock was released: another run starts at once
    assert ws.pivot_proc("run", "b", timeout=60).returncode == 0


def test_a_failed_output_preparation_shows_no_stale_log(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: echo STALE-LINE; echo x > d/f.txt
            outs: [d/f.txt]
        """)
    ws.pivot("run")
    assert "STALE-LINE" in (ws.root / log_relpath("s")).read_text()
    os.remove(ws.root / "d" / "f.txt")
    os.rmdir(ws.root / "d")
    ws.write("d", "a file where a directory must be\n")
    proc = ws.pivot_proc("run", "-f", check=False, timeout=60)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "cannot prepare outputs" in output
    assert "STALE-LINE" not in output
