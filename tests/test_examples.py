"""The README's first quick-start command: the wordcount example runs on a
machine with only ``python3`` and the system's tools, and a second run has
nothing to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import python3_only_env

WORDCOUNT = Path(__file__).resolve().parent.parent / "examples" / "wordcount"


@pytest.mark.slow
def test_wordcount_example_runs_then_is_a_no_op(ws, tmp_path) -> None:
    shutil.copytree(WORDCOUNT, ws.root, dirs_exist_ok=True)
    env = python3_only_env(tmp_path)
    first = ws.pivot_proc("-C", str(ws.root), "run", env=env, cwd="data")
    assert "ran report" in first.stdout + first.stderr
    summary = json.loads(ws.read("report/summary.json"))
    assert sorted(summary) == ["counts-de-1", "counts-de-4", "counts-en-1", "counts-en-4"], summary
    assert all(isinstance(n, int) and n > 0 for n in summary.values()), summary
    # words of at least 4 letters are a subset of all words
    assert summary["counts-en-4"] <= summary["counts-en-1"]

    again = ws.pivot_proc("run", env=env)
    assert "0 ran" in again.stdout + again.stderr
    assert ws.pivot_proc("status", env=env).stdout == "Pipelines are up to date.\n"
