"""Restoring outputs: one home (pivot/state/restore.py), typed sources, and
what it must never do -- discard unsaved work or write outside the project."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

PIPELINE = """\
stages:
  make:
    cmd: mkdir -p data && echo one > data/a.txt && echo two > data/b.txt && echo hello > out.txt
    outs: [data, out.txt]
"""


def _decoy(ws) -> Path:
    """A directory next to the project that nothing may touch."""
    decoy = ws.root.parent / "decoy"
    (decoy / "sub").mkdir(parents=True)
    (decoy / "sub" / "b.txt").write_text("precious\n")
    return decoy


def _decoy_intact(decoy: Path) -> bool:
    return sorted(p.relative_to(decoy).as_posix() for p in decoy.rglob("*")) == ["sub", "sub/b.txt"] and (
        decoy / "sub" / "b.txt").read_text() == "precious\n"


# -- where a restore comes from is on the decision ------------------------------


def test_each_restore_decision_names_its_source(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cat in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    ws.write("in.txt", "1\n")
    ws.pivot("run")
    (ws.root / "out.txt").unlink()
    [stage] = ws.pivot_json("plan")["stages"]
    assert (stage["action"], stage["source"]) == ("checkout", "cache")
    ws.pivot("run")
    ws.write("in.txt", "2\n")
    ws.pivot("run")
    ws.write("in.txt", "1\n")
    [stage] = ws.pivot_json("plan")["stages"]
    assert (stage["action"], stage["source"]) == ("restore from run cache", "run_cache")
    assert "0 ran, 1 restored" in ws.pivot("run").stdout
    assert ws.read("out.txt") == "1\n"


def test_a_dvc_lock_checkout_comes_from_dvcs_cache(ws):
    shutil.copytree(FIXTURES / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    content = (ws.root / "prepared.txt").read_bytes()  # the fixture holds DVC's cache
    (ws.root / "prepared.txt").unlink()
    by_address = {s["address"]: s for s in ws.pivot_json("plan")["stages"]}
    assert (by_address["prepare"]["action"], by_address["prepare"]["source"]) == ("checkout", "dvc_cache")
    assert "checkout  prepare  (restored from DVC's cache)" in ws.pivot("plan").stdout
    ws.pivot("run")
    assert (ws.root / "prepared.txt").read_bytes() == content


# -- checkout never discards unsaved work -------------------------------------------


def test_checkout_keeps_files_added_to_an_output_directory_unless_forced(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.pivot("run")
    ws.write("data/mine.txt", "my notes\n")
    result = ws.pivot("checkout", expect=1)
    assert "unsaved files" in result.stderr and "data/mine.txt" in result.stderr and "--force" in result.stderr
    assert ws.read("data/mine.txt") == "my notes\n"
    ws.pivot("checkout", "--force")
    assert not (ws.root / "data/mine.txt").exists() and ws.read("data/a.txt") == "one\n"


def test_checkout_keeps_a_hand_edited_output_file_unless_forced(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.pivot("run")
    ws.write("out.txt", "edited by hand\n")
    result = ws.pivot("checkout", expect=1)
    assert "\tout.txt" in result.stderr
    assert ws.read("out.txt") == "edited by hand\n"
    ws.pivot("checkout", "-f")
    assert ws.read("out.txt") == "hello\n"


def test_checkout_replaces_content_that_is_still_in_the_cache(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cat in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    ws.write("in.txt", "old\n")
    ws.pivot("run")
    ws.write("in.txt", "new\n")
    ws.pivot("run")
    ws.write("out.txt", "old\n")  # an earlier, cached version: nothing is lost
    ws.pivot("checkout")
    assert ws.read("out.txt") == "new\n"


# -- a restore that cannot happen runs the stage ---------------------------------------


def test_two_stages_sharing_a_corrupt_object_both_run(ws):
    ws.write("dvc.yaml", """\
        stages:
          a:
            cmd: echo same > a.txt
            outs: [a.txt]
          b:
            cmd: echo same > b.txt
            outs: [b.txt]
        """)
    ws.pivot("run")
    objects = [p for p in (ws.root / ".pivot/cache/files").rglob("*") if p.is_file()]
    assert len(objects) == 1  # one object for both outputs
    os.chmod(objects[0], 0o644)
    objects[0].write_text("SAME\n")  # same size, wrong bytes
    (ws.root / "a.txt").unlink()
    (ws.root / "b.txt").unlink()
    result = ws.pivot("run", "-j", "2")
    assert "2 ran" in result.stdout and "0 failed" in result.stdout
    assert ws.read("a.txt") == ws.read("b.txt") == "same\n"


def test_a_run_cache_restore_that_finds_a_corrupt_object_runs_the_stage(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cat in.txt > out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    ws.write("in.txt", "1\n")
    ws.pivot("run")
    ws.write("in.txt", "2\n")
    ws.pivot("run")
    ws.write("in.txt", "1\n")
    for obj in (ws.root / ".pivot/cache/files").rglob("*"):
        if obj.is_file():
            os.chmod(obj, 0o644)
            obj.write_text("X\n")  # every object damaged
    result = ws.pivot("run")
    assert "1 ran" in result.stdout and "corrupted cache object" in result.stdout + result.stderr
    assert ws.read("out.txt") == "1\n"


# -- nothing outside the project is ever written ------------------------------------------


def _crafted_lock(ws, address: str, out_path: str, digest: str, nfiles: int | None = None) -> None:
    entry = {"path": out_path, "hash": digest, "size": 0}
    if nfiles is not None:
        entry["nfiles"] = nfiles
    record = {"address": address, "cmd": ["echo hello"], "deps": [], "params": {}, "version": 1, "outs": [entry]}
    ws.write(f".pivot/locks/{address}.json", json.dumps(record))


EMPTY_DIR = "99aa06d3014798d86001c324468d497f.dir"


def _empty_dir_object(ws) -> None:
    obj = ws.root / ".pivot/cache/files/99/aa06d3014798d86001c324468d497f.dir"
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_text("[]")


@pytest.mark.parametrize("command", [("checkout", "--force"), ("run",), ("commit",)])
def test_an_output_under_a_symlink_to_outside_is_never_written(ws, command):
    decoy = _decoy(ws)
    (ws.root / "link").symlink_to(decoy)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hello\n    outs: [link/sub]\n")
    _crafted_lock(ws, "s", "link/sub", EMPTY_DIR, 0)
    _empty_dir_object(ws)
    result = ws.pivot(*command, expect=None)
    assert result.exit_code != 0
    assert "outside the project" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert _decoy_intact(decoy)


def test_an_output_that_is_a_symlink_to_outside_is_refused_and_never_followed(ws):
    decoy = _decoy(ws)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: mkdir -p data\n    outs: [data]\n")
    _crafted_lock(ws, "s", "data", EMPTY_DIR, 0)
    _empty_dir_object(ws)
    (ws.root / "data").symlink_to(decoy)
    for command in (("checkout", "--force"), ("run",), ("commit",)):
        result = ws.pivot(*command, expect=1)
        assert "outside the project" in result.stderr and "Traceback" not in result.stderr
    assert _decoy_intact(decoy)


@pytest.mark.parametrize("linked", [".pivot", ".pivot/cache", ".pivot/locks"])
def test_a_state_directory_linked_outside_is_never_written_through(ws, linked):
    decoy = ws.root.parent / "decoy-state"
    decoy.mkdir()
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n")
    (ws.root / linked).parent.mkdir(parents=True, exist_ok=True)
    (ws.root / linked).symlink_to(decoy)
    for command in (("run",), ("commit",), ("checkout",), ("gc",), ("status",), ("plan",), ("emit", "ninja"),
                    ("emit", "sh"), ("list",), ("log",)):
        result = ws.pivot(*command, expect=None)
        assert "Traceback" not in result.stderr
    assert list(decoy.iterdir()) == []
    result = ws.pivot("run", expect=1)
    assert f"'{linked}' leads outside the project" in result.stderr


def test_a_planted_params_memo_is_never_unpickled_into_code(ws):
    import pickle

    ws.write("params.yaml", "lr: 1\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi\n    params: [lr]\n")
    ws.pivot("run")
    marker = ws.root / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (ws.root / ".pivot/params.pickle").write_bytes(pickle.dumps(Evil()))
    ws.pivot("status")
    ws.write("params.yaml", "lr: 2\n")
    ws.pivot("status")
    assert not marker.exists()


def test_a_stage_whose_dependency_is_missing_fails_before_its_command_runs(ws):
    ws.write("dvc.yaml", """\
        stages:
          prep:
            cmd: touch ran.txt && cat data/raw.csv > prep.txt
            deps: [data/raw.csv]
            outs: [prep.txt]
          other:
            cmd: echo ok > other.txt
            outs: [other.txt]
        """)
    result = ws.pivot("run", "-k", expect=1)
    assert "missing dependency 'data/raw.csv'" in result.stdout
    assert not (ws.root / "ran.txt").exists() and ws.read("other.txt") == "ok\n"
