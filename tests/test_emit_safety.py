"""Emitted scripts and Ninja files on hostile input: stage names that look
like options, addresses with ':', outputs behind a symlink leading outside
the project, and `-o FILE` pointing at a file pivot did not write."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import Workspace
from tests.emit_helpers import NINJA, results

ODD_NAMES = """\
stages:
  -q:
    cmd: echo q > q.txt
    outs: [q.txt]
  -f:
    cmd: cat q.txt > f.txt && echo f >> f.txt
    deps: [q.txt]
    outs: [f.txt]
"""

SUB = """\
stages:
  name:
    wdir: ..
    cmd: cat f.txt > sub/n.txt
    deps: [f.txt]
    outs: [sub/n.txt]
"""


def _bash(root, script: str = "plan.sh") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", script], cwd=root, capture_output=True, text=True)


def _ninja(root) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NINJA], cwd=root, capture_output=True, text=True)


def _odd_workspace(ws) -> None:
    ws.write("dvc.yaml", ODD_NAMES)
    ws.write("sub/dvc.yaml", SUB)


@pytest.mark.slow
def test_stage_names_that_look_like_options_in_bash_and_ninja(ws, tmp_path):
    _odd_workspace(ws)
    twins = {name: tmp_path / name for name in ("run", "ninja")}
    for twin in twins.values():
        shutil.copytree(ws.root, twin)

    text = ws.pivot("emit", "sh", "-o", "plan.sh").stdout
    script = ws.read("plan.sh")
    assert "_pivot commit -- -q\n" in script and "_pivot commit -- sub/dvc.yaml:name\n" in script
    proc = _bash(ws.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert text == ""
    Workspace(twins["run"]).pivot("run", "-j", "1")
    Workspace(twins["ninja"]).pivot("emit", "ninja")
    proc = _ninja(twins["ninja"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ninja: no work to do." in _ninja(twins["ninja"]).stdout

    expected = results(twins["run"])
    assert {"lock:-q.json", "lock:-f.json"} <= set(expected)
    assert results(ws.root) == expected
    assert results(twins["ninja"]) == expected

    (ws.root / "q.txt").unlink()  # now restored by `pivot run --single-item -- -q`
    ws.pivot("emit", "sh", "-o", "plan.sh")
    assert "_pivot run --single-item -- -q\n" in ws.read("plan.sh")
    proc = _bash(ws.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results(ws.root) == expected


@pytest.mark.slow
def test_a_stage_named_with_a_colon_runs_in_every_back_end(ws, tmp_path):
    ws.write("dvc.yaml", "stages:\n  a:b:\n    cmd: echo ab > ab.txt\n    outs: [ab.txt]\n")
    ws.pivot("emit", "sh", "-o", "plan.sh")
    proc = _bash(ws.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ws.read("ab.txt") == "ab\n"
    assert "Pipelines are up to date" in ws.pivot("status").stdout
    (ws.root / "ab.txt").unlink()
    ws.pivot("emit", "ninja")
    proc = _ninja(ws.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ws.read("ab.txt") == "ab\n"
    assert "Pipelines are up to date" in ws.pivot("status").stdout


@pytest.mark.slow
def test_a_frozen_output_changed_after_a_build_is_re_recorded_by_ninja(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo ran > out.txt\n    frozen: true\n    outs: [out.txt]\n")
    ws.write("out.txt", "manual\n")
    ws.pivot("emit", "ninja")
    assert _ninja(ws.root).returncode == 0
    assert "ninja: no work to do." in _ninja(ws.root).stdout
    ws.write("out.txt", "edited\n")
    assert [s["action"] for s in ws.pivot_json("plan")["stages"]] == ["record frozen"]
    ws.pivot("emit", "ninja")  # as for any output edited by hand: the plan reaches Ninja through the key
    proc = _ninja(ws.root)
    assert proc.returncode == 0 and "[1/1] s" in proc.stdout, proc.stdout
    assert ws.read("out.txt") == "edited\n"
    assert "Pipelines are up to date" in ws.pivot("status").stdout
    assert "ninja: no work to do." in _ninja(ws.root).stdout


# -- outputs behind a symlink leading outside ----------------------------------------


@pytest.fixture
def decoy(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("precious\n")
    return outside


def _linked_out(ws, decoy) -> None:
    (ws.root / "link").symlink_to(decoy)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo pwned > link/x.txt\n    outs: [link/x.txt]\n")


def test_sh_prepare_refuses_an_output_behind_a_symlink_leading_outside(ws, decoy):
    _linked_out(ws, decoy)
    failed = ws.pivot("emit", "sh-prepare", "--", "s", expect=1)
    assert "outside the project" in failed.stderr
    assert (decoy / "x.txt").read_text() == "precious\n"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sh", "ninja"])
def test_emitted_files_never_touch_an_output_outside_the_project(ws, decoy, backend):
    _linked_out(ws, decoy)
    emitted = ws.pivot("emit", backend, *(["-o", "plan.sh"] if backend == "sh" else []), expect=None)
    if emitted.exit_code == 0:  # else refused when loading the pipeline: fine too
        proc = _bash(ws.root) if backend == "sh" else _ninja(ws.root)
        assert proc.returncode != 0
        assert "leads outside the project" in proc.stdout + proc.stderr
    assert (decoy / "x.txt").read_text() == "precious\n"
    assert sorted(p.name for p in decoy.iterdir()) == ["x.txt"]


# -- -o FILE ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["emit", "sh"], ["emit", "ninja"]])
def test_o_refuses_a_file_pivot_did_not_write_without_force(ws, command):
    _odd_workspace(ws)
    ws.write("src.py", "print('mine')\n")
    before = ws.read("dvc.yaml")
    for victim in ("dvc.yaml", "src.py"):
        failed = ws.pivot(*command, "-o", victim, expect=1)
        assert failed.stderr == f"ERROR: '{victim}' exists and was not written by pivot; pass --force to overwrite it\n"
    assert ws.read("dvc.yaml") == before and ws.read("src.py") == "print('mine')\n"
    ws.pivot(*command, "-o", "src.py", "--force")
    assert ws.read("src.py").splitlines()[0 if command[1] == "ninja" else 1].startswith("# Generated by pivot ")


def test_o_replaces_a_file_pivot_emitted_earlier(ws):
    _odd_workspace(ws)
    ws.pivot("emit", "sh", "-o", "plan.sh")
    ws.pivot("emit", "sh", "-o", "plan.sh")
    ws.pivot("emit", "ninja", "-o", "plan.sh")  # an emitted file of the other kind
    ws.pivot("emit", "ninja", "-o", "plan.sh")
    assert "(`pivot emit ninja`)" in ws.read("plan.sh")


def test_default_build_ninja_of_the_users_own_is_kept(ws):
    _odd_workspace(ws)
    ws.write("build.ninja", "rule cc\n  command = cc $in\n")
    failed = ws.pivot("emit", "ninja", expect=1)
    assert "build.ninja' exists and was not written by pivot" in failed.stderr
    assert ws.read("build.ninja") == "rule cc\n  command = cc $in\n"


@pytest.mark.slow
def test_emit_ninja_in_a_read_only_project_is_one_line(unprivileged):
    from tests.unprivileged import make_read_only

    root = unprivileged.project()
    (root / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo x > x.txt\n    outs: [x.txt]\n")
    (root / ".pivot").mkdir()
    unprivileged.chown(root)
    make_read_only(root)
    proc = unprivileged.pivot(root, "emit", "ninja", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (root / "build.ninja").exists()


# -- symlinks planted in .pivot/ninja -------------------------------------------------


def _ran_once(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo s > s.txt\n    outs: [s.txt]\n")
    ws.pivot("run")


def test_a_bridge_directory_leading_outside_is_refused_in_one_line(ws, decoy):
    _ran_once(ws)
    (ws.root / ".pivot/ninja").mkdir(parents=True)
    (ws.root / ".pivot/ninja/fresh").symlink_to(decoy)
    failed = ws.pivot("emit", "ninja", expect=1)
    assert "outside the project" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in decoy.iterdir()) == ["x.txt"]
    assert (decoy / "x.txt").read_text() == "precious\n"


@pytest.mark.slow
def test_bridge_files_planted_as_symlinks_are_replaced_never_written_through(ws, decoy):
    _ran_once(ws)
    ws.pivot("emit", "ninja")
    bridge = ws.root / ".pivot/ninja"
    planted = [bridge / "outs/s.txt", bridge / "fresh/s"]
    before = (decoy / "x.txt").stat().st_mtime_ns
    for path in planted:
        path.unlink()
        path.symlink_to(decoy / "x.txt")
    ws.pivot("emit", "ninja")
    proc = _ninja(ws.root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any(path.is_symlink() for path in planted)
    assert (decoy / "x.txt").read_text() == "precious\n" and (decoy / "x.txt").stat().st_mtime_ns == before
