"""status/plan/run where QA found pivot and DVC 3.67.1 disagreeing.

Every expected ``dvc status --json`` below was printed by real DVC 3.67.1
after the same edits (the tests never need DVC): frozen stages, stages
compared with a ``dvc.lock`` before pivot adopted them, output-path
targets, and a path that is both a file dep and a params file.
``fixtures/frozen/`` holds a project DVC ran (``dvc.lock`` written by it,
``fz.txt`` created by hand since the frozen stage never runs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES / "dvclock"))
from scenarios import SCENARIOS  # noqa: E402

FROZEN_WARNING = "WARNING: stage: 'fz' is frozen. Its dependencies are not going to be shown in the status output."


def status(ws, *targets):
    return json.loads(ws.pivot("status", "--json", *targets).stdout)


# -- 1. frozen stages -----------------------------------------------------------


@pytest.fixture
def frozen(ws):
    shutil.copytree(FIXTURES / "frozen", ws.root, dirs_exist_ok=True)
    return ws


@pytest.fixture
def frozen_fresh(ws):
    for name in ("dvc.yaml", "raw.txt"):
        shutil.copy(FIXTURES / "frozen" / name, ws.root / name)
    return ws


def test_fresh_frozen_stage_reports_its_outs(frozen_fresh):
    result = frozen_fresh.pivot("status", "--json")
    assert json.loads(result.stdout) == {
        "up": [{"changed deps": {"raw.txt": "modified"}}, {"changed outs": {"up.txt": "deleted"}}],
        "fz": [{"changed outs": {"fz.txt": "deleted"}}],
        "down": [{"changed deps": {"fz.txt": "deleted"}}, {"changed outs": {"down.txt": "deleted"}}],
    }
    assert FROZEN_WARNING in result.stderr
    text = frozen_fresh.pivot("status").stdout
    assert "fz:\n\tchanged outs:\n\t\tdeleted:            fz.txt\n" in text


def test_run_fails_for_a_frozen_stage_missing_its_out(frozen_fresh):
    plan = frozen_fresh.pivot("plan").stdout
    assert "record    fz  (frozen, fails: missing output 'fz.txt')" in plan
    result = frozen_fresh.pivot("run", "-j", "1", expect=1)
    assert "FAILED fz: frozen stage is missing output 'fz.txt'" in result.stdout
    assert "blocked down: upstream fz failed" in result.stdout
    assert frozen_fresh.read("up.txt") == "raw\n"  # independent work still done
    assert not (frozen_fresh.root / "down.txt").exists()
    assert not (frozen_fresh.root / "fz.txt").exists()  # the command never ran


def test_frozen_stage_out_is_recorded_never_run(frozen_fresh):
    frozen_fresh.write("fz.txt", "manual\n")
    frozen_fresh.pivot("run", "-j", "1")
    assert frozen_fresh.read("fz.txt") == "manual\n"
    assert frozen_fresh.read("down.txt") == "manual\n"
    assert status(frozen_fresh) == {}
    # a modified out: reported like DVC, re-recorded by run (command not run)
    frozen_fresh.write("fz.txt", "tampered\n")
    assert status(frozen_fresh) == {
        "fz": [{"changed outs": {"fz.txt": "modified"}}],
        "down": [{"changed deps": {"fz.txt": "modified"}}],
    }
    plan = frozen_fresh.pivot("plan").stdout
    assert "record    fz  (frozen: outputs re-recorded as they are, command not run)" in plan
    frozen_fresh.pivot("run", "-j", "1")
    assert frozen_fresh.read("fz.txt") == "tampered\n"
    assert frozen_fresh.read("down.txt") == "tampered\n"
    assert status(frozen_fresh) == {}


def test_frozen_stage_adopted_from_dvc_lock(frozen):
    plan = frozen.pivot_json("plan")
    assert {s["address"]: (s["action"], s["adopted"]) for s in plan["stages"]} == {
        "up": ("up to date", True), "fz": ("frozen", True), "down": ("up to date", True)}
    assert not (frozen.root / ".pivot/locks").exists()  # plan only inspects
    frozen.pivot("run")  # writes what the plan adopted
    assert json.loads(frozen.read(".pivot/locks/fz.json"))["adopted_from"] == "dvc.lock"


def test_frozen_deps_are_ignored_before_and_after_adoption(frozen):
    frozen.write("up.txt", "other\n")
    assert status(frozen) == {"up": [{"changed outs": {"up.txt": "modified"}}]}
    frozen.write("fz.txt", "tampered\n")
    assert status(frozen) == {
        "up": [{"changed outs": {"up.txt": "modified"}}],
        "fz": [{"changed outs": {"fz.txt": "modified"}}],
        "down": [{"changed deps": {"fz.txt": "modified"}}],
    }


# -- 2. status before adoption ----------------------------------------------------


@pytest.fixture
def dvc_project(ws):
    shutil.copytree(FIXTURES / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    return ws


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_status_before_adoption_matches_dvc(dvc_project, scenario):
    SCENARIOS[scenario](dvc_project.root)  # no pivot command before the edit
    expected = json.loads((FIXTURES / "dvclock" / "status" / f"{scenario}.json").read_text())
    assert status(dvc_project) == expected


def test_param_edit_before_adoption_reason_and_rerun(dvc_project):
    SCENARIOS["param_modified"](dvc_project.root)
    why = dvc_project.pivot("why", "train").stdout
    assert "param 'train.lr' in 'params.yaml' modified: 0.1 -> 0.2" in why
    assert "never run" not in why
    dvc_project.pivot("run", "-j", "1")
    record = json.loads(dvc_project.read(".pivot/locks/train.json"))
    assert record["params"]["params.yaml"]["train.lr"] == 0.2 and "adopted_from" not in record
    assert status(dvc_project) == {}


def _put_in_dvc_cache(root: Path, relpath: str, md5: str) -> None:
    """DVC 3's cache layout: .dvc/cache/files/md5/<2>/<30>, read-only."""
    obj = root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / relpath, obj)
    obj.chmod(0o444)


def test_damaged_out_restored_from_dvc_cache(dvc_project):
    _put_in_dvc_cache(dvc_project.root, "prepared.txt", "15200ef6a2cccae80e635046b16ce166")
    original = dvc_project.read("prepared.txt")
    SCENARIOS["out_modified"](dvc_project.root)
    plan = dvc_project.pivot("plan").stdout
    assert "checkout  prepare  (restored from DVC's cache)" in plan
    assert "0 to run, 1 to restore from cache, 4 up to date" in plan
    result = dvc_project.pivot("run", "-j", "1")
    assert "restored prepare from DVC's cache" in result.stdout and "ran " not in result.stdout
    assert dvc_project.read("prepared.txt") == original
    assert not list(dvc_project.root.glob(".pivot/logs/*.log"))  # no command ran
    assert json.loads(dvc_project.read(".pivot/locks/prepare.json"))["adopted_from"] == "dvc.lock"
    assert status(dvc_project) == {}


def test_damaged_out_not_in_dvc_cache_reruns(dvc_project):
    SCENARIOS["out_modified"](dvc_project.root)
    shutil.rmtree(dvc_project.root / ".dvc" / "cache")  # a fresh clone: DVC's cache is empty
    assert status(dvc_project)["prepare"] == [{"changed outs": {"prepared.txt": "not in cache"}}]
    plan = dvc_project.pivot_json("plan")
    assert plan["stages"][0]["action"] == "run"
    dvc_project.pivot("run", "-j", "1")
    assert dvc_project.read("prepared.txt") == "HELLO WORLD\nSECOND LINE\n"
    assert status(dvc_project) == {}


# -- 3. output-path targets ----------------------------------------------------------


ZETA = """\
stages:
  zeta:
    cmd: cat src/z.txt src/y.txt > zo.txt; cp zo.txt ao.txt
    deps: [src/z.txt, src/y.txt]
    outs: [zo.txt, ao.txt]
"""


def test_output_path_target_shows_only_that_out(ws):
    ws.write("dvc.yaml", ZETA)
    ws.write("src/z.txt", "z\n")
    ws.write("src/y.txt", "y\n")
    ws.pivot("run", "-j", "1")
    for name in ("zo.txt", "ao.txt"):
        (ws.root / name).unlink()
    ws.write("src/z.txt", "changed\n")
    deps = {"changed deps": {"src/z.txt": "modified"}}
    assert status(ws, "zo.txt") == {"zeta": [deps, {"changed outs": {"zo.txt": "deleted"}}]}
    assert status(ws, "zeta") == {"zeta": [deps, {"changed outs": {"zo.txt": "deleted", "ao.txt": "deleted"}}]}
    # DVC: the last target naming a stage decides
    assert status(ws, "ao.txt", "zo.txt") == {"zeta": [deps, {"changed outs": {"zo.txt": "deleted"}}]}
    assert ws.pivot("status", "zo.txt").stdout == (
        "zeta:\n\tchanged deps:\n\t\tmodified:           src/z.txt\n"
        "\tchanged outs:\n\t\tdeleted:            zo.txt\n")


# -- 4. a file dep that is also a params file -------------------------------------------


def test_params_entry_wins_over_file_dep(ws):
    ws.write("sub/dvc.yaml", """\
        stages:
          s:
            wdir: w
            cmd: cat pj.json > s.txt
            deps:
              - ./pj.json
            params:
              - pj.json: [k]
            outs:
              - s.txt
        """)
    ws.write("sub/w/pj.json", '{"k": null, "j": 1}\n')
    ws.pivot("run", "-j", "1")
    ws.write("sub/w/pj.json", '{"k": 0, "j": 1}\n')
    assert status(ws) == {"sub/dvc.yaml:s": [{"changed deps": {"sub/w/pj.json": {"k": "modified"}}}]}
    assert ws.pivot("status").stdout == (
        "sub/dvc.yaml:s:\n\tchanged deps:\n\t\tsub/w/pj.json:\n\t\t\tmodified:           k\n")
    ws.write("sub/w/pj.json", '{"k": null, "j": 3, "x": 1}\n')  # k as recorded: the file entry shows
    assert status(ws) == {"sub/dvc.yaml:s": [{"changed deps": {"sub/w/pj.json": "modified"}}]}


# -- 5. a no-op run costs what status costs ------------------------------------------------


NOOP_PROBE = """
import sys
from pivot.cli import main
try:
    main()
finally:
    heavy = [m for m in ("pivot.backends.runner", "pivot.backends.progress", "pivot.backends.execute",
                         "shutil", "tempfile", "configparser") if m in sys.modules]
    print("HEAVY", heavy, file=sys.stderr)
"""


def test_no_op_run_skips_runner_and_writes_one_line(ws):
    ws.write("dvc.yaml", ZETA.replace("    outs: [zo.txt, ao.txt]\n", "    outs: [zo.txt, ao.txt]\n  fz:\n"
                                      "    cmd: echo fz > fz.txt\n    frozen: true\n    outs: [fz.txt]\n"))
    ws.write("src/z.txt", "z\n")
    ws.write("src/y.txt", "y\n")
    ws.write("fz.txt", "fz\n")
    ws.pivot("run", "-j", "1")
    proc = subprocess.run([sys.executable, "-c", NOOP_PROBE, "run", "-j", "1"], cwd=ws.root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("0 ran, 0 restored, 2 up to date, 0 failed in ")
    assert "HEAVY []" in proc.stderr
    newest = sorted((ws.root / ".pivot/runs").iterdir())[-1]
    lines = [json.loads(line) for line in newest.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["run", "skipped", "skipped", "end"]
    assert (lines[1]["addresses"], lines[1]["message"]) == (["zeta"], "up to date")
    assert (lines[2]["addresses"], lines[2]["message"]) == (["fz"], "frozen")
    # pivot log reads it back as one skipped entry per stage
    log = ws.pivot_json("log", "-n", "1")
    assert [(s["address"], s["outcome"], s["message"]) for s in log[0]["stages"]] == [
        ("zeta", "skipped", "up to date"), ("fz", "skipped", "frozen")]
    assert "  2 up to date" in ws.pivot("log", "-n", "1").stdout
