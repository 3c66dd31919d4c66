"""The run cache: going back to an earlier state restores its outputs
instead of recomputing them, and plan/status/run/emit agree about it.

Every command appends a line to ``runs.log`` (not an output) and writes a
random token into its output, so a restored output is byte-identical to
the earlier one only if nothing ran again.  The token comes from
/dev/urandom, not ``$RANDOM``: with ``SHELL`` unset pivot runs /bin/sh,
which is dash on Debian, where ``$RANDOM`` is empty."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pivot.state.runcache import RunCache

CHAIN = """\
    stages:
      prep:
        cmd: echo "lr=$(cat lr.txt) $(od -An -N8 -tx8 /dev/urandom)" > prep.txt && echo prep >> runs.log
        deps: [lr.txt]
        outs: [prep.txt]
      train:
        cmd: mkdir -p model && cat prep.txt > model/w.txt && echo $(od -An -N8 -tx8 /dev/urandom) > model/seed && echo train >> runs.log
        deps: [prep.txt]
        outs: [model]
      report:
        cmd: (cat model/w.txt; echo $(od -An -N8 -tx8 /dev/urandom)) > report.txt && echo report >> runs.log
        deps: [model/w.txt]
        outs: [report.txt]
    """
OUTS = ("prep.txt", "model/w.txt", "model/seed", "report.txt")


def _runs(ws) -> list[str]:
    return ws.read("runs.log").split() if (ws.root / "runs.log").exists() else []


def _outputs(ws) -> dict[str, bytes]:
    return {path: (ws.root / path).read_bytes() for path in OUTS}


@pytest.fixture
def chain(ws):
    ws.write("dvc.yaml", CHAIN)
    ws.write("lr.txt", "0.1\n")
    ws.pivot("run", "-j", "1")
    assert _runs(ws) == ["prep", "train", "report"]
    return ws


def _actions(ws, *args: str) -> dict[str, str]:
    return {s["address"]: s["action"] for s in ws.pivot_json("plan", *args)["stages"]}


def test_reverting_a_dep_restores_the_whole_chain_without_running(chain):
    first = _outputs(chain)
    chain.write("lr.txt", "0.01\n")
    chain.pivot("run", "-j", "1")
    assert _runs(chain) == ["prep", "train", "report"] * 2
    assert _outputs(chain) != first

    chain.write("lr.txt", "0.1\n")  # back to the first state
    # the plan predicts it: each stage downstream of a restore is judged by
    # the restored hashes (report reads a file inside train's directory out)
    assert _actions(chain) == {a: "restore from run cache" for a in ("prep", "train", "report")}
    text = chain.pivot("plan").stdout
    assert "restore   prep  (from the run cache: run of " in text
    assert "0 to run, 3 to restore from the run cache, 0 up to date" in text

    result = chain.pivot("run", "-j", "1")
    assert "restored prep from the run cache: run of " in result.stdout
    assert _runs(chain) == ["prep", "train", "report"] * 2  # no command ran
    assert _outputs(chain) == first  # byte-identical, random tokens included
    assert chain.pivot("status").stdout == "Pipelines are up to date.\n"
    assert _actions(chain) == {a: "up to date" for a in ("prep", "train", "report")}


def test_param_flipped_and_reverted(ws):
    ws.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    ws.write("dvc.yaml", """\
        stages:
          fit:
            cmd: echo "$(od -An -N8 -tx8 /dev/urandom) $(grep lr params.yaml)" > fit.txt && echo fit >> runs.log
            params: [train.lr]
            outs: [fit.txt]
        """)
    ws.pivot("run")
    first = ws.read("fit.txt")
    ws.write("params.yaml", "train:\n  lr: 0.01\n  epochs: 3\n")
    ws.pivot("run")
    ws.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 5\n")  # untracked key changed too
    plan = ws.pivot_json("plan")
    [stage] = plan["stages"]
    assert stage["action"] == "restore from run cache"
    assert stage["reasons"][0]["kind"] == "param_modified"
    assert stage["run_cache"]["address"] == "fit"
    assert plan["summary"]["restore_run"] == 1
    ws.pivot("run")
    assert _runs(ws) == ["fit", "fit"]
    assert ws.read("fit.txt") == first


def test_status_names_the_run_and_keeps_dvc_json_shape(chain):
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run")
    chain.write("lr.txt", "0.1\n")
    text = chain.pivot("status").stdout
    assert "prep:\n\tchanged deps:\n\t\tmodified:           lr.txt\n\t(restorable from the run cache: run of " in text
    assert chain.pivot_json("status") == {"prep": [{"changed deps": {"lr.txt": "modified"}}]}
    why = chain.pivot("why", "prep").stdout
    assert why.startswith("Stage 'prep' will be restored from the run cache (run of ")


def test_an_output_missing_from_the_cache_falls_back_to_running(chain):
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    chain.write("lr.txt", "0.1\n")
    entry = RunCache(chain.root / ".pivot/runcache").lookup(
        chain.pivot_json("plan")["stages"][0]["run_cache"]["key"])
    obj = chain.root / ".pivot/cache/files" / entry.outs[0].hash[:2] / entry.outs[0].hash[2:]
    obj.unlink()
    assert _actions(chain)["prep"] == "run"
    chain.pivot("run", "-j", "1")
    # prep ran; its new random token makes train and report stale (and new)
    assert _runs(chain) == ["prep", "train", "report"] * 3
    assert chain.pivot("status").stdout == "Pipelines are up to date.\n"


def test_no_run_cache_forces_real_runs(chain):
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    chain.write("lr.txt", "0.1\n")
    assert set(_actions(chain, "--no-run-cache").values()) == {"run"}
    assert "restorable" not in chain.pivot("status", "--no-run-cache").stdout
    chain.pivot("run", "-j", "1", "--no-run-cache")
    assert _runs(chain) == ["prep", "train", "report"] * 3


def test_forced_runs_are_real(chain):
    assert set(_actions(chain, "-f").values()) == {"run"}
    chain.pivot("run", "-f", "prep", "-s")
    assert _runs(chain)[-1] == "prep"


@pytest.mark.parametrize("flag", ["always_changed: true", "persist", "cache: false", "no outs"])
def test_stages_the_run_cache_never_restores(ws, flag):
    out = "[out.txt]"
    extra = ""
    if flag == "persist":
        out = "[{out.txt: {persist: true}}]"
    elif flag == "cache: false":
        out = "[{out.txt: {cache: false}}]"
    elif flag == "always_changed: true":
        extra = "    always_changed: true\n"
    outs_line = "" if flag == "no outs" else f"    outs: {out}\n"
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo $(od -An -N8 -tx8 /dev/urandom) > out.txt && echo s >> runs.log\n"
             f"    deps: [in.txt]\n{outs_line}{extra}")
    for text in ("a", "b", "a"):
        ws.write("in.txt", text)
        ws.pivot("run")
    assert _runs(ws) == ["s"] * 3
    assert not (ws.root / ".pivot/runcache").exists()


def test_a_deleted_lock_record_is_restored_from_the_run_cache(chain):
    first = _outputs(chain)
    shutil.rmtree(chain.root / ".pivot/locks")
    for path in OUTS:
        (chain.root / path).unlink()
    assert set(_actions(chain).values()) == {"restore from run cache"}
    chain.pivot("run")
    assert _outputs(chain) == first
    assert len(_runs(chain)) == 3


def test_the_run_cache_moves_with_the_project(chain, tmp_path):
    from tests.conftest import Workspace

    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    chain.write("lr.txt", "0.1\n")
    twin = Workspace(tmp_path / "elsewhere" / "copy")
    shutil.copytree(chain.root, twin.root, symlinks=True)
    (twin.root / ".pivot/state.db").unlink(missing_ok=True)  # another machine: no stat cache
    assert set(_actions(twin).values()) == {"restore from run cache"}
    twin.pivot("run")
    assert len(_runs(twin)) == 6
    for path in (twin.root / ".pivot/runcache").rglob("*.json"):
        assert str(chain.root) not in path.read_text()


def test_entry_file_format(chain):
    [path] = [p for p in (chain.root / ".pivot/runcache").rglob("*.json")
              if json.loads(p.read_text())["address"] == "prep"]
    data = json.loads(path.read_text())
    assert path.parent.name + path.name == data["key"] + ".json"
    assert set(data) == {"version", "key", "address", "time", "outs"}
    lock = json.loads((chain.root / ".pivot/locks/prep.json").read_text())
    assert data["outs"] == lock["outs"]


@pytest.mark.slow
def test_emit_sh_restores_like_run(chain):
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    first = _outputs(chain)
    chain.write("lr.txt", "0.1\n")
    chain.pivot("run", "-j", "1")
    chain.write("lr.txt", "0.2\n")
    text = chain.pivot("emit", "sh").stdout
    assert text.count("_pivot run --single-item ") == 3
    chain.pivot("emit", "sh", "-o", "plan.sh")
    proc = subprocess.run(["bash", str(chain.root / "plan.sh")], cwd=chain.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _runs(chain) == ["prep", "train", "report"] * 2
    assert _outputs(chain) == first
    # scripts that record nothing never restore (a restore writes records)
    chain.write("lr.txt", "0.1\n")
    assert "--single-item" not in chain.pivot("emit", "sh", "--no-record").stdout
    assert "--single-item" not in chain.pivot("emit", "sh", "--no-run-cache").stdout


def test_commit_records_the_run(ws):
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: cp in.txt out.txt
            deps: [in.txt]
            outs: [out.txt]
        """)
    ws.write("in.txt", "one")
    ws.write("out.txt", "made by hand")
    ws.pivot("commit")
    ws.write("in.txt", "two")
    ws.pivot("run")
    ws.write("in.txt", "one")
    ws.pivot("run")
    assert ws.read("out.txt") == "made by hand"


def test_the_audit_trail_says_restored(chain):
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    chain.write("lr.txt", "0.1\n")
    chain.pivot("run", "-j", "1")
    [last, *_] = chain.pivot_json("log")
    assert {s["outcome"] for s in last["stages"]} == {"restored"}
    assert all(s["message"].startswith("from the run cache: run of ") for s in last["stages"])


@pytest.mark.slow
def test_ninja_restores_from_the_run_cache(chain):
    from tests.emit_helpers import NINJA

    first = _outputs(chain)
    chain.write("lr.txt", "0.2\n")
    chain.pivot("run", "-j", "1")
    chain.pivot("emit", "ninja")

    def ninja() -> None:
        proc = subprocess.run([NINJA], cwd=chain.root, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    ninja()
    runs = _runs(chain)
    chain.write("lr.txt", "0.1\n")
    ninja()
    assert _runs(chain) == runs  # each edge restored its stage instead of running it
    assert _outputs(chain) == first
    assert chain.pivot("status").stdout == "Pipelines are up to date.\n"


def test_a_stage_waiting_for_its_upstream_is_restored_once_it_finished(ws):
    """The plan cannot know what the upstream run makes; the runner checks
    again when it finished and finds the result in the run cache."""
    ws.write("dvc.yaml", """\
        stages:
          head:
            cmd: cut -c1 lr.txt > head.txt && echo head >> runs.log
            deps: [lr.txt]
            outs: [head.txt]
          tail:
            cmd: (cat head.txt; echo $(od -An -N8 -tx8 /dev/urandom)) > tail.txt && echo tail >> runs.log
            deps: [head.txt]
            outs: [tail.txt]
        """)
    ws.write("lr.txt", "0.1\n")
    ws.pivot("run", "-j", "1")
    first = ws.read("tail.txt")
    ws.write("lr.txt", "5\n")
    ws.pivot("run", "-j", "1")
    ws.write("lr.txt", "0.2\n")  # new for head, but head.txt comes out as in the first run
    assert _actions(ws) == {"head": "run", "tail": "run"}
    result = ws.pivot("run", "-j", "1")
    assert "restored tail from the run cache" in result.stdout
    assert _runs(ws) == ["head", "tail", "head", "tail", "head"]
    assert ws.read("tail.txt") == first


def test_a_dep_directory_holding_restored_outputs_is_predicted(ws):
    # `summary` depends on the directory `parts`, which holds the outputs of
    # two other stages (DVC's "dep contains outs" edge): after a revert the
    # plan predicts the directory's restored content, so `summary` is
    # restored from the run cache too instead of rerun.
    ws.write("dvc.yaml", """\
        stages:
          part:
            foreach: [a, b]
            do:
              cmd: echo "${item} $(cat n.txt) $(od -An -N8 -tx8 /dev/urandom)" > parts/${item}.txt && echo part >> runs.log
              deps: [n.txt]
              outs:
                - parts/${item}.txt
          summary:
            cmd: (cat parts/*.txt; echo $(od -An -N8 -tx8 /dev/urandom)) > summary.txt && echo summary >> runs.log
            deps: [parts]
            outs: [summary.txt]
        """)
    ws.write("parts/README", "kept by hand, not an output\n")
    ws.write("n.txt", "1\n")
    ws.pivot("run", "-j", "1")
    first = ws.read("summary.txt")
    ws.write("n.txt", "2\n")
    ws.pivot("run", "-j", "1")
    assert _runs(ws) == ["part", "part", "summary"] * 2

    ws.write("n.txt", "1\n")
    assert _actions(ws) == {"part@a": "restore from run cache", "part@b": "restore from run cache",
                            "summary": "restore from run cache"}
    ws.pivot("run", "-j", "1")
    assert _runs(ws) == ["part", "part", "summary"] * 2  # nothing ran
    assert ws.read("summary.txt") == first
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"
