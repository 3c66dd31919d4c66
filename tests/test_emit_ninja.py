"""`pivot emit ninja`: golden text, and real Ninja giving what `pivot run` gives,
rerunning exactly what `pivot plan` lists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import Workspace
from tests.emit_helpers import NINJA, results, scrub, write_example


def _ninja(ws, *args: str) -> str:
    proc = subprocess.run([NINJA, *args], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _ran(output: str) -> list[str]:
    """Stage edges Ninja started (not the regenerate or directory checks)."""
    names = re.findall(r"^\[\d+/\d+\] (.+)$", output, re.M)
    return [n for n in names if not n.startswith(("regenerating", "checking"))]


def _bump(ws, relpath: str) -> None:
    """Touch a file (mtime: now; Ninja compares nanoseconds)."""
    os.utime(ws.root / relpath, None)


def test_ninja_text_is_stable(ws, snapshot):
    write_example(ws)
    ws.pivot("emit", "ninja")
    assert scrub(ws.read("build.ninja"), ws.root) == snapshot


@pytest.mark.slow
def test_ninja_gives_what_pivot_run_gives_then_no_work(ws, tmp_path):
    write_example(ws)
    twin = tmp_path / "twin"
    shutil.copytree(ws.root, twin)

    ws.pivot("emit", "ninja")
    assert sorted(_ran(_ninja(ws))) == ["count", "prep", "sub/dvc.yaml:report", "train"]
    assert "ninja: no work to do." in _ninja(ws)
    assert "Pipelines are up to date" in ws.pivot("status").stdout

    Workspace(twin).pivot_proc("run", "-j", "1")
    assert results(ws.root) == results(twin)


@pytest.mark.slow
def test_params_edit_reruns_exactly_what_plan_lists(ws):
    write_example(ws)
    ws.pivot("run")
    ws.pivot("emit", "ninja")
    _ninja(ws)  # first build: every edge checks with pivot, none runs a command
    assert "ninja: no work to do." in _ninja(ws)

    ws.write("sub/params.yaml", "title: new\n")
    _bump(ws, "sub/params.yaml")
    planned = [line.split()[1] for line in ws.pivot("plan").stdout.splitlines() if line.startswith("run ")]
    assert planned == ["sub/dvc.yaml:report"]
    assert _ran(_ninja(ws)) == planned
    assert "ninja: no work to do." in _ninja(ws)

    ws.write("params.yaml", "lr: 0.1\nother: 2\n")  # a value no stage reads
    _bump(ws, "params.yaml")
    assert _ran(_ninja(ws)) == []


@pytest.mark.slow
def test_touched_but_unchanged_dep_runs_no_command(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    before = (ws.root / "model.txt").stat().st_mtime_ns
    _bump(ws, "my data/in put.txt")
    out = _ninja(ws)
    assert _ran(out) == ["prep"]  # Ninja asks pivot, which finds it up to date
    assert (ws.root / "model.txt").stat().st_mtime_ns == before
    assert "ninja: no work to do." in _ninja(ws)


@pytest.mark.slow
def test_file_edited_inside_a_directory_dep_reruns_its_stage(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    ws.write("corpus/a.txt", "changed\n")
    _bump(ws, "corpus/a.txt")
    assert _ran(_ninja(ws)) == ["count", "train", "sub/dvc.yaml:report"]
    ws.write("corpus/c.txt", "new file\n")  # the listing is refreshed too
    _ninja(ws)
    assert "c.txt" in ws.read("counts/listing.txt")
    ws.write("corpus/c.txt", "edited new file\n")
    _bump(ws, "corpus/c.txt")
    assert "count" in _ran(_ninja(ws))
    assert "Pipelines are up to date" in ws.pivot("status").stdout


@pytest.mark.slow
def test_output_edited_by_hand_is_restored_after_emit(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    path = ws.root / "model.txt"
    good = path.read_text()
    os.chmod(path, 0o644)
    path.write_text("edited by hand\n")
    # Ninja alone sees a newer output: nothing to do (mtimes cannot tell).
    assert "ninja: no work to do." in _ninja(ws)
    ws.pivot("emit", "ninja")  # the plan says: restore train
    assert _ran(_ninja(ws)) == ["train"]
    assert path.read_text() == good


@pytest.mark.slow
def test_awkward_paths_with_real_ninja(ws):
    ws.write("in|put $x:y.txt", "data\n")
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: cat 'in|put $x:y.txt' > 'out|p $x:y.txt'
            deps: ['in|put $x:y.txt']
            outs: ['out|p $x:y.txt']
          t:
            cmd: cat 'out|p $x:y.txt' > "q'uote.txt"
            deps: ['out|p $x:y.txt']
            outs: ["q'uote.txt"]
        """)
    ws.pivot("emit", "ninja")
    assert _ran(_ninja(ws)) == ["s", "t"]
    assert ws.read("q'uote.txt") == "data\n"
    assert "ninja: no work to do." in _ninja(ws)


def test_line_break_in_a_path_is_refused_naming_the_stage(ws):
    ws.write("dvc.yaml", 'stages:\n  s:\n    cmd: "true"\n    outs: ["a\\nb"]\n')
    result = ws.pivot("emit", "ninja", expect=1)
    assert "output of stage 's'" in result.stderr and "line break" in result.stderr
    assert not (ws.root / "build.ninja").exists()
