"""`pivot emit ninja`: golden text, and real Ninja giving what `pivot run` gives,
rerunning exactly what `pivot plan` lists."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.emit_helpers import DVC_YAML, NINJA, results, scrub, write_example


def unwrapped(text: str) -> str:
    """Ninja text with its continuation lines (`` $``, newline, indent) joined."""
    return re.sub(r" \$\n +", " ", text)


def _ninja(ws, *args: str) -> str:
    proc = subprocess.run([NINJA, *args], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _ran(output: str) -> list[str]:
    """Stage edges Ninja started (not the regenerate, probe or directory checks)."""
    names = re.findall(r"^\[\d+/\d+\] (.+)$", output, re.M)
    return [n for n in names if not n.startswith(("regenerating", "checking", "looking for"))]


def _bump(ws, relpath: str) -> None:
    """Touch a file (mtime: now; Ninja compares nanoseconds)."""
    os.utime(ws.root / relpath, None)


def test_ninja_text_is_stable(ws, snapshot):
    write_example(ws)
    ws.pivot("emit", "ninja")
    assert scrub(ws.read("build.ninja"), ws.root) == snapshot
    assert scrub(ws.read(".pivot/ninja/edge.sh"), ws.root) == snapshot(name="edge script")


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
def test_output_edited_by_hand_is_restored_before_its_consumer_decides(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    path = ws.root / "model.txt"
    good = path.read_text()
    report = (ws.root / "sub/report.txt").stat().st_mtime_ns
    os.chmod(path, 0o644)
    path.write_text("edited by hand\n")
    # Ninja sees the edit through report's input; report's edge restores
    # train's output first, as `pivot run` would, and then has nothing to do.
    assert _ran(_ninja(ws)) == ["sub/dvc.yaml:report"]
    assert path.read_text() == good
    assert (ws.root / "sub/report.txt").stat().st_mtime_ns == report, "report ran no command"
    _done(ws)


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


def _ninja_fails(ws) -> str:
    proc = subprocess.run([NINJA], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


DIR_DEP = """\
    stages:
      cnt:
        cmd: find data -type f | sort | xargs cat > cnt.txt
        deps: [data]
        outs: [cnt.txt]
    """


@pytest.mark.slow
def test_subdirectories_of_a_directory_dep_can_vanish(ws):
    ws.write("dvc.yaml", DIR_DEP)
    ws.write("data/a/x.txt", "1\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    ws.write("data/b/c/y.txt", "2\n")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n2\n"

    shutil.rmtree(ws.root / "data" / "b")  # listed in build.ninja: data/b, data/b/c, data/b/c/y.txt
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n"
    assert "ninja: no work to do." in _ninja(ws)

    os.rename(ws.root / "data" / "a", ws.root / "data" / "z")
    _ninja(ws)
    os.rename(ws.root / "data" / "z" / "x.txt", ws.root / "data" / "z" / "w.txt")
    ws.write("data/z/w.txt", "3\n")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "3\n"
    assert "ninja: no work to do." in _ninja(ws)
    assert "Pipelines are up to date" in ws.pivot("status").stdout


@pytest.mark.slow
def test_deleted_directory_dep_fails_the_stage_until_it_is_back(ws):
    ws.write("dvc.yaml", DIR_DEP)
    ws.write("data/a/x.txt", "1\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    shutil.rmtree(ws.root / "data")
    for _ in range(2):  # the regeneration converges; the stage fails as `pivot run` would
        out = _ninja_fails(ws)
        assert "no known rule" not in out and "still dirty" not in out
        assert "dependency 'data' does not exist" in out
    ws.write("data/new/f.txt", "5\n")
    assert "cnt" in _ran(_ninja(ws))
    assert ws.read("cnt.txt") == "5\n"
    ws.write("data/new/f.txt", "6\n")  # watched through the directory stamp again
    _bump(ws, "data/new/f.txt")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "6\n"
    assert "ninja: no work to do." in _ninja(ws)


@pytest.mark.slow
def test_deleted_params_file_fails_the_stage_instead_of_looping(ws):
    ws.write("dvc.yaml", """\
        stages:
          whole:
            cmd: echo whole > w.txt
            params: [{other.yaml: }]
            outs: [w.txt]
        """)
    ws.write("other.yaml", "x: 1\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    os.unlink(ws.root / "other.yaml")
    run = ws.pivot("run", expect=1)
    for _ in range(2):
        out = _ninja_fails(ws)
        assert "still dirty" not in out
        assert "params file 'other.yaml' does not exist" in out
        assert "params file 'other.yaml' does not exist" in run.stdout + run.stderr
    ws.write("other.yaml", "x: 2\n")
    assert _ran(_ninja(ws)) == ["whole"]
    assert "ninja: no work to do." in _ninja(ws)
    ws.write("other.yaml", "x: 3\n")  # watched by the regenerate edge again
    _bump(ws, "other.yaml")
    assert _ran(_ninja(ws)) == ["whole"]
    assert "Pipelines are up to date" in ws.pivot("status").stdout


@pytest.mark.slow
def test_deleted_file_dep_runs_the_stage_as_pivot_run_does(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cat in.txt > o.txt\n    deps: [in.txt]\n    outs: [o.txt]\n")
    ws.write("in.txt", "x\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    os.unlink(ws.root / "in.txt")
    out = _ninja_fails(ws)
    assert "no known rule" not in out
    assert "in.txt: No such file or directory" in out  # the command ran and failed, as under `pivot run`
    ws.write("in.txt", "y\n")
    assert _ran(_ninja(ws)) == ["s"]
    assert ws.read("o.txt") == "y\n"


@pytest.mark.slow
def test_build_file_inside_a_directory_dep_gets_no_phony_twin(ws):
    ws.write("dvc.yaml", "stages:\n  t:\n    cmd: ls in > t.txt\n    deps: [in]\n    outs: [t.txt]\n")
    ws.write("in/a", "1\n")
    ws.pivot("emit", "ninja", "-o", "in/b.ninja")
    ws.pivot("emit", "ninja", "-o", "in/b.ninja")  # now the listing of 'in' holds b.ninja
    assert "build in/b.ninja: phony" not in ws.read("in/b.ninja")
    assert _ran(_ninja(ws, "-f", "in/b.ninja")) == ["t"]
    assert "ninja: no work to do." in _ninja(ws, "-f", "in/b.ninja")


NO_WORK = "ninja: no work to do.\n"

OUTS_IN_A_DIR_DEP = """\
    stages:
      part:
        matrix:
          n: [1, 2]
        cmd: mkdir -p build && echo "${item.n} ${top}" > build/part-${item.n}.txt
        params: [top]
        outs:
          - build/part-${item.n}.txt
      report:
        cmd: cat build/part-*.txt > report.txt
        deps: [build]
        outs: [report.txt]
    """


@pytest.mark.slow
def test_outputs_written_into_a_directory_dep_do_not_rewrite_the_file(ws):
    # examples/wordcount: stages write into build/, a later stage reads build/.
    ws.write("dvc.yaml", OUTS_IN_A_DIR_DEP)
    ws.write("params.yaml", "top: 3\n")
    ws.pivot("run")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    assert _ninja(ws) == NO_WORK

    ws.write("params.yaml", "top: 2\n")
    _bump(ws, "params.yaml")
    out = _ninja(ws)
    assert "regenerating build.ninja" in out
    assert sorted(_ran(out)) == ["part@1", "part@2", "report"]
    assert ws.read("report.txt") == "1 2\n2 2\n"
    assert _ninja(ws) == NO_WORK  # the outputs changed build/'s mtime, not its listing
    assert "Pipelines are up to date" in ws.pivot("status").stdout


def _done(ws) -> None:
    """Ninja has nothing left to do, and pivot agrees."""
    assert _ninja(ws) == NO_WORK
    assert "Pipelines are up to date" in ws.pivot("status").stdout


def _settles(ws) -> None:
    """After a build that noticed a new listing: the next `ninja` rewrites the
    file and runs nothing, the one after has no work."""
    out = _ninja(ws)
    assert out == "[1/1] regenerating build.ninja\n" + NO_WORK
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_file_added_to_a_directory_dep_is_listed_and_watched(ws):
    ws.write("dvc.yaml", DIR_DEP)
    ws.write("data/a.txt", "1\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    assert _ninja(ws) == NO_WORK

    ws.write("data/b.txt", "2\n")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n2\n"
    _settles(ws)
    assert "data/b.txt" in ws.read("build.ninja")

    with open(ws.root / "data" / "b.txt", "a") as f:  # in place: only the file's mtime changes
        f.write("3\n")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n2\n3\n"
    _done(ws)


@pytest.mark.slow
def test_file_added_then_edited_before_the_file_is_rewritten(ws):
    ws.write("dvc.yaml", DIR_DEP)
    ws.write("data/a.txt", "1\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    ws.write("data/b.txt", "2\n")
    assert _ran(_ninja(ws)) == ["cnt"]
    with open(ws.root / "data" / "b.txt", "a") as f:  # the Ninja file does not list b.txt yet
        f.write("3\n")
    out = _ninja(ws)
    assert "regenerating build.ninja" in out and _ran(out) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n2\n3\n"
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_file_deleted_from_a_directory_dep_reruns_its_stage(ws):
    ws.write("dvc.yaml", DIR_DEP)
    ws.write("data/a.txt", "1\n")
    ws.write("data/b.txt", "2\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    os.unlink(ws.root / "data" / "b.txt")
    assert _ran(_ninja(ws)) == ["cnt"]
    assert ws.read("cnt.txt") == "1\n"
    _settles(ws)
    assert "data/b.txt" not in ws.read("build.ninja")
    assert "Pipelines are up to date" in ws.pivot("status").stdout


@pytest.mark.slow
def test_outputs_inside_a_directory_dep_are_not_part_of_its_listing(ws):
    ws.write("dvc.yaml", """\
        stages:
          gen:
            cmd: echo made > data/made.txt
            deps: [seed.txt]
            outs: [data/made.txt]
          cnt:
            cmd: find data -type f | sort | xargs cat > cnt.txt
            deps: [data]
            outs: [cnt.txt]
        """)
    ws.write("seed.txt", "1\n")
    ws.write("data/a.txt", "1\n")
    ws.pivot("emit", "ninja")
    text = unwrapped(ws.read("build.ninja"))
    assert "touch = .pivot/ninja/wrote/gen" in text
    assert "build .pivot/ninja/dirs/data: dirstamp | data data/a.txt .pivot/ninja/wrote/gen\n" in text
    assert sorted(_ran(_ninja(ws))) == ["cnt", "gen"]
    assert _ninja(ws) == NO_WORK  # data/made.txt appeared, but it is an output
    ws.write("seed.txt", "2\n")
    _bump(ws, "seed.txt")
    assert _ran(_ninja(ws)) == ["gen"]  # same output: restat stops at gen
    assert _ninja(ws) == NO_WORK


# -- the first `ninja` after `pivot run`: no pivot start-up for fresh stages ------


def _spy_on_pivot(ws) -> Path:
    """Point the Ninja file's ``pivot`` and the edge script's at a wrapper
    that logs each call."""
    log = ws.root / "pivot-calls.log"
    spy = ws.root / "pivot-spy"
    spy.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\nexec {shlex.quote(sys.executable)} -m pivot "$@"\n')
    spy.chmod(0o755)
    for name, pattern, replacement in (
        ("build.ninja", r"^pivot = .*$", f"pivot = {spy}"),
        (".pivot/ninja/edge.sh", r"^_pivot\(\) \{ .* \"\$@\"; \}$", f'_pivot() {{ {spy} "$@"; }}'),
    ):
        text, count = re.subn(pattern, lambda _: replacement, ws.read(name), flags=re.M)
        assert count == 1, name
        (ws.root / name).write_text(text)
    os.utime(ws.root / "build.ninja", None)  # after the edge script: the regenerate edge stays clean
    return log


def _age(ws) -> None:
    """Date every file of the project a minute back: a file changed in the
    last two seconds keeps its stage from a fresh marker (racy mtimes)."""
    past = time.time() - 60
    for path in ws.root.rglob("*"):
        if ".pivot" not in path.relative_to(ws.root).parts:
            os.utime(path, (past, past), follow_symlinks=False)


def _prepared(log: Path) -> list[str]:
    calls = log.read_text().splitlines() if log.exists() else []
    return [call.split(" -- ", 1)[1] for call in calls if call.startswith("emit ninja-prepare")]


@pytest.mark.slow
def test_first_ninja_after_pivot_run_starts_no_pivot_for_fresh_stages(ws, tmp_path):
    write_example(ws)
    ws.pivot("run")
    _age(ws)
    ws.pivot("emit", "ninja")
    fresh = sorted(p.name for p in (ws.root / ".pivot/ninja/fresh").iterdir())
    assert fresh == ["count", "prep", "sub%2Fdvc.yaml%3Areport", "train"]
    log = _spy_on_pivot(ws)
    out = _ninja(ws)
    assert sorted(_ran(out)) == ["count", "prep", "sub/dvc.yaml:report", "train"], "no log yet: all dirty"
    assert _prepared(log) == [], "each edge knew its stage was fresh without asking pivot"
    assert _ninja(ws) == NO_WORK
    before = results(ws.root)

    # an input changed since the markers: that edge asks pivot and reruns
    ws.write("my data/in put.txt", "changed\n")
    _bump(ws, "my data/in put.txt")
    assert _ran(_ninja(ws)) == ["prep", "train", "sub/dvc.yaml:report"]
    assert _prepared(log) == ["prep", "train", "sub/dvc.yaml:report"]
    assert ws.read("it's.txt") == "CHANGED\n"
    assert "Pipelines are up to date" in ws.pivot("status").stdout
    assert results(ws.root) != before


@pytest.mark.slow
def test_a_fresh_marker_never_hides_a_missing_output_or_a_newer_input(ws):
    write_example(ws)
    ws.pivot("run")
    good = ws.read("model.txt")
    _age(ws)
    ws.pivot("emit", "ninja")
    log = _spy_on_pivot(ws)
    (ws.root / "model.txt").unlink()  # train's output gone: restored from the cache
    _bump(ws, "my data/in put.txt")  # touched, content unchanged: prep asks pivot, runs nothing
    _bump(ws, "corpus/a.txt")  # the same inside a directory: its stamp keeps its hash, count needs no pivot
    prep_out = (ws.root / "it's.txt").stat().st_mtime_ns
    _ninja(ws)
    assert sorted(_prepared(log)) == ["prep", "train"]
    assert ws.read("model.txt") == good
    assert (ws.root / "it's.txt").stat().st_mtime_ns == prep_out, "prep ran no command"
    _done(ws)


@pytest.mark.slow
def test_only_stages_fresh_at_emit_time_keep_a_marker(ws):
    write_example(ws)
    ws.pivot("run")
    ws.pivot("emit", "ninja")
    markers = sorted(p.name for p in (ws.root / ".pivot/ninja/fresh").iterdir())
    assert "prep" not in markers, "its dep was written a moment ago: racy, no marker"
    assert "train" in markers, "it reads only outputs of fresh stages, recorded just now"
    _age(ws)
    ws.pivot("emit", "ninja")
    assert (ws.root / ".pivot/ninja/fresh/train").exists()
    ws.write("params.yaml", "lr: 0.2\nother: 1\n")
    _age(ws)
    ws.pivot("emit", "ninja")
    markers = sorted(p.name for p in (ws.root / ".pivot/ninja/fresh").iterdir())
    assert markers == ["count", "prep"], "train and its downstream report are stale"
    _ninja(ws)
    assert "lr=0.2" in ws.read("model.txt")
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_emit_removes_bridge_files_of_stages_and_dirs_that_are_gone(ws):
    write_example(ws)
    ws.pivot("run")
    _age(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    bridge = ws.root / ".pivot/ninja"
    assert (bridge / "dirs/corpus").exists() and (bridge / "fresh/count").exists()
    assert (bridge / "lists/corpus").exists() and (bridge / "outs/counts").exists()
    # count goes away, and with it the only directory dep; train now reads
    # counts/listing.txt, a change of its own: its edge reads a key
    ws.write("dvc.yaml", DVC_YAML_WITHOUT_COUNT)
    ws.pivot("emit", "ninja")
    left = {p.relative_to(bridge).as_posix() for p in bridge.rglob("*") if p.is_file()}
    assert not any("count" in name or "corpus" in name for name in left), sorted(left)
    assert {"keys/train", "outs/model.txt", "fresh/prep"} <= left and "keys/prep" not in left
    _ninja(ws)
    _done(ws)
    ws.pivot("emit", "ninja")  # train is up to date now: its key goes
    assert not any((bridge / "keys").iterdir())
    assert _ninja(ws) == NO_WORK


# The example without its count stage; train reads the listing count left behind.
_COUNT = DVC_YAML[DVC_YAML.index("  count:"):DVC_YAML.index("  train:")]
DVC_YAML_WITHOUT_COUNT = DVC_YAML.replace(_COUNT, "").replace(
    "deps: [it's.txt, counts]", "deps: [it's.txt, counts/listing.txt]")


def _keyed(ws) -> list[str]:
    """The stages whose edges read a key file, by their `# address` comment."""
    text = unwrapped(ws.read("build.ninja"))
    return re.findall(r"^# (\S+) \(.*\)\nbuild .*\| \.pivot/ninja/keys/", text, re.M)


@pytest.mark.slow
def test_only_stages_the_plan_must_force_read_a_key(ws):
    """No key input where the plan has no work of the stage's own: Ninja
    stats fewer files.  An output edited by hand gives its stage one; it
    goes at the next emit without making the edge dirty again."""
    write_example(ws)
    ws.pivot("run")
    _age(ws)
    ws.pivot("emit", "ninja")
    assert _keyed(ws) == []
    _ninja(ws)
    assert _ninja(ws) == NO_WORK

    os.chmod(ws.root / "model.txt", 0o644)
    ws.write("model.txt", "edited by hand\n")
    ws.pivot("emit", "ninja")
    assert _keyed(ws) == ["train"]
    assert ws.read(".pivot/ninja/keys/train") == "out 'model.txt' modified\n"  # why, for people
    report = (ws.root / "sub/report.txt").stat().st_mtime_ns
    # train restores its output with its old mtime, not the one Ninja saw
    # (the edit's), so report's edge asks pivot once, and runs no command
    assert _ran(_ninja(ws)) == ["train", "sub/dvc.yaml:report"]
    assert (ws.root / "sub/report.txt").stat().st_mtime_ns == report
    assert _ninja(ws) == NO_WORK

    ws.pivot("emit", "ninja")  # up to date again: no key, and the edge stays clean
    assert _keyed(ws) == [] and not (ws.root / ".pivot/ninja/keys/train").exists()
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_a_params_value_changed_after_a_build_reruns_the_edge(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    assert _ninja(ws) == NO_WORK
    assert _keyed(ws) != []  # never run at emit time: every stage had work of its own

    ws.write("params.yaml", "lr: 0.2\nother: 1\n")
    _bump(ws, "params.yaml")
    output = _ninja(ws)
    assert "regenerating build.ninja" in output
    assert _ran(output) == ["train", "sub/dvc.yaml:report"]
    assert _keyed(ws) == ["train"]  # report reruns through train's output stamp
    assert "lr=0.2" in ws.read("model.txt")
    assert _ninja(ws) == NO_WORK

    ws.write("params.yaml", "lr: 0.2\nother: 2\n")  # a value no stage reads: train loses its key
    _bump(ws, "params.yaml")
    assert _ran(_ninja(ws)) == []
    assert _keyed(ws) == []
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_a_changed_command_reruns_its_edge(ws):
    write_example(ws)
    ws.pivot("run")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    assert _ninja(ws) == NO_WORK
    ws.write("dvc.yaml", DVC_YAML.replace('echo "lr=${lr}"', 'echo "rate=${lr}"'))
    _bump(ws, "dvc.yaml")
    assert _ran(_ninja(ws)) == ["train", "sub/dvc.yaml:report"]
    assert "rate=0.1" in ws.read("model.txt")
    _done(ws)


@pytest.mark.slow
def test_a_deleted_edge_script_is_written_again_by_the_regenerate_edge(ws):
    write_example(ws)
    ws.pivot("emit", "ninja")
    assert sorted(_ran(_ninja(ws))) == ["count", "prep", "sub/dvc.yaml:report", "train"]
    script = ws.root / ".pivot/ninja/edge.sh"
    text = script.read_text()
    script.unlink()
    out = _ninja(ws)
    assert "regenerating build.ninja" in out and _ran(out) == []
    assert script.read_text() == text
    assert _ninja(ws) == NO_WORK
    ws.write("my data/in put.txt", "changed\n")  # the edges source it again
    assert _ran(_ninja(ws)) == ["prep", "train", "sub/dvc.yaml:report"]
    assert ws.read("it's.txt") == "CHANGED\n"


# -- outputs' mtimes: changed only when their content changes ------------------------

FAN_OUT = """\
stages:
  make:
    cmd: {make}
    deps: [{deps}]
    outs: [out.txt]{frozen}
  left:
    cmd: cat out.txt > left.txt
    deps: [out.txt]
    outs: [left.txt]
  right:
    cmd: cat out.txt out.txt > right.txt
    deps: [out.txt]
    outs: [right.txt]
"""


def _fan_out(ws, make: str = "cut -c1-3 in.txt > out.txt", deps: str = "in.txt", frozen: bool = False) -> None:
    ws.write("dvc.yaml", FAN_OUT.format(make=make, deps=deps, frozen="\n    frozen: true" if frozen else ""))
    ws.write("in.txt", "abcdef\n")


def _mtimes(ws, *paths: str) -> list[int]:
    return [(ws.root / p).stat().st_mtime_ns for p in paths]


@pytest.mark.slow
def test_an_upstream_rerun_with_the_same_output_stops_there(ws):
    _fan_out(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    before = _mtimes(ws, "out.txt", "left.txt", "right.txt")
    ws.write("in.txt", "abcxyz\n")  # make reruns; its output keeps its content
    _bump(ws, "in.txt")
    assert _ran(_ninja(ws)) == ["make"]
    assert _mtimes(ws, "out.txt", "left.txt", "right.txt") == before, "out.txt got its mtime back"
    assert ws.read(".pivot/ninja/outs/out.txt").split()[1] == str(before[0])
    _done(ws)


@pytest.mark.slow
def test_an_output_written_with_an_old_mtime_still_reruns_what_reads_it(ws):
    ws.write("src/a.txt", "first\n")
    ws.write("src/b.txt", "second\n")
    ws.write("choice.txt", "a.txt\n")
    _age(ws)  # src/b.txt is older than any build below
    _fan_out(ws, make='cp -p "src/$(cat choice.txt)" out.txt', deps="choice.txt, src")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    ws.write("choice.txt", "b.txt\n")
    _bump(ws, "choice.txt")
    # cp -p gives out.txt src/b.txt's old mtime: pivot gives it a new one
    assert sorted(_ran(_ninja(ws))) == ["left", "make", "right"]
    assert ws.read("left.txt") == "second\n"
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
def test_consumers_side_by_side_restore_an_edited_output_once(ws):
    _fan_out(ws)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    good = ws.read("out.txt")
    before = _mtimes(ws, "left.txt", "right.txt")
    os.chmod(ws.root / "out.txt", 0o644)
    ws.write("out.txt", "edited by hand\n")
    assert sorted(_ran(_ninja(ws, "-j", "2"))) == ["left", "right"]
    assert ws.read("out.txt") == good
    assert _mtimes(ws, "left.txt", "right.txt") == before, "neither ran a command"
    _done(ws)


@pytest.mark.slow
def test_an_edited_output_of_a_frozen_stage_is_recorded_and_read(ws):
    _fan_out(ws)
    ws.pivot("run")
    _fan_out(ws, frozen=True)
    ws.pivot("emit", "ninja")
    _ninja(ws)
    os.chmod(ws.root / "out.txt", 0o644)
    ws.write("out.txt", "edited by hand\n")
    assert sorted(_ran(_ninja(ws))) == ["left", "right"]
    assert ws.read("left.txt") == "edited by hand\n", "a frozen stage's outputs are recorded as they are"
    _done(ws)


@pytest.mark.slow
def test_a_directory_output_keeps_its_mtime_unless_its_content_changes(ws):
    ws.write("dvc.yaml", """\
stages:
  split:
    cmd: mkdir parts && cut -c1 in.txt > parts/a && cut -c2 in.txt > parts/b
    deps: [in.txt]
    outs: [parts]
  join:
    cmd: cat parts/a parts/b > joined.txt
    deps: [parts]
    outs: [joined.txt]
""")
    ws.write("in.txt", "xyz\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    before = _mtimes(ws, "parts", "joined.txt")
    ws.write("in.txt", "xyw\n")  # the first two characters stay
    _bump(ws, "in.txt")
    assert _ran(_ninja(ws)) == ["split"]
    assert _mtimes(ws, "parts", "joined.txt") == before
    ws.write("in.txt", "wyw\n")
    _bump(ws, "in.txt")
    assert _ran(_ninja(ws)) == ["split", "join"]
    assert ws.read("joined.txt") == "w\ny\n"
    assert _ninja(ws) == NO_WORK


@pytest.mark.slow
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_an_output_linked_to_an_older_cache_object_still_reruns_what_reads_it(ws, link):
    """In link modes an output becomes its cache object (a symlink, or the
    same inode): back to earlier content, it is the earlier object, with
    that object's mtime, and what reads it must still rerun.  (Every output
    differs here: outputs of the same content would share one object and
    its one mtime, and settling one moves the others.)"""
    ws.write(".pivot/config", f"[cache]\ntype = {link}\n")
    ws.write("dvc.yaml", FAN_OUT.format(make="cut -c1-3 in.txt > out.txt", deps="in.txt", frozen="")
             .replace("cat out.txt > left.txt", "tr a-z A-Z < out.txt > left.txt")
             .replace("cat out.txt out.txt > right.txt", "rev out.txt > right.txt"))
    ws.pivot("emit", "ninja")
    for text, expected in (("abcdef\n", "ABC\n"), ("xyzdef\n", "XYZ\n"), ("abcdef\n", "ABC\n")):
        ws.write("in.txt", text)
        _bump(ws, "in.txt")
        _ninja(ws)
        assert ws.read("left.txt") == expected
    assert (ws.root / "out.txt").is_symlink() == (link == "symlink")
    _done(ws)


@pytest.mark.slow
def test_an_edited_output_pivot_cannot_restore_is_read_then_remade_after_emit(ws):
    ws.write("dvc.yaml", """\
stages:
  make:
    cmd: cut -c1-3 in.txt > out.txt
    deps: [in.txt]
    outs:
      - out.txt:
          cache: false
  left:
    cmd: cat out.txt > left.txt
    deps: [out.txt]
    outs: [left.txt]
""")
    ws.write("in.txt", "abcdef\n")
    ws.pivot("emit", "ninja")
    _ninja(ws)
    ws.write("out.txt", "edited by hand\n")
    assert _ran(_ninja(ws)) == ["left"]  # nothing to restore it from: read as it is
    assert ws.read("left.txt") == "edited by hand\n"
    ws.pivot("emit", "ninja")  # the plan: make must run (its output changed)
    assert _ran(_ninja(ws)) == ["make", "left"]
    assert ws.read("left.txt") == "abc\n"
    assert _ninja(ws) == NO_WORK
