"""`pivot run` on real dvc.yaml workspaces: commands, outputs, link modes,
failures, the audit trail."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest


def _snapshot(root: Path, relpaths) -> dict[str, tuple[int, int]]:
    """Inode and mtime of each file below ``relpaths`` (links not followed)."""
    seen = {}
    for rel in relpaths:
        path = root / rel
        files = [path] if not path.is_dir() or path.is_symlink() else sorted(p for p in path.rglob("*"))
        for f in files:
            st = os.lstat(f)
            seen[str(f.relative_to(root))] = (st.st_ino, st.st_mtime_ns)
    return seen


def test_each_command_starts_in_the_stage_wdir(ws) -> None:
    ws.write("sub/dvc.yaml", """\
        stages:
          where:
            cmd:
              - cd .. && pwd > sub/first.txt
              - pwd > second.txt
              - echo "$PIVOT_STAGE $DVC_STAGE" > env.txt
            outs: [first.txt, second.txt, env.txt]
        """)
    ws.pivot("run")
    root = str(ws.root.resolve())
    assert ws.read("sub/first.txt").strip() == root
    assert ws.read("sub/second.txt").strip() == root + "/sub"
    assert ws.read("sub/env.txt").split() == ["sub/dvc.yaml:where"] * 2


def test_read_only_outputs_are_replaced(ws) -> None:
    ws.write("in.txt", "one\n")
    ws.write("dvc.yaml", """\
        stages:
          copy:
            cmd: mkdir -p out/sub && cp in.txt out/sub/data.txt
            deps: [in.txt]
            outs: [out]
        """)
    ws.pivot("run")
    # what a DVC checkout in hardlink/symlink mode leaves: read-only files and dirs
    for path in (ws.root / "out/sub/data.txt",):
        os.chmod(path, 0o444)
    os.chmod(ws.root / "out/sub", 0o555)
    os.chmod(ws.root / "out", 0o555)
    ws.write("in.txt", "two\n")
    ws.pivot("run")
    assert ws.read("out/sub/data.txt") == "two\n"


@pytest.mark.parametrize("mode", ["copy", "reflink", "hardlink", "symlink"])
def test_second_run_is_a_no_op_in_every_link_mode(ws, monkeypatch, mode: str) -> None:
    monkeypatch.setenv("PIVOT_CACHE_TYPE", mode)
    ws.write("in.txt", "data\n")
    ws.write("dvc.yaml", """\
        stages:
          make:
            cmd: mkdir -p d && cp in.txt d/a.txt && cp in.txt f.txt
            deps: [in.txt]
            outs: [d, f.txt]
          use:
            cmd: cat d/a.txt f.txt > g.txt
            deps: [d, f.txt]
            outs: [g.txt]
        """)
    ws.pivot("run")
    # damage an output: it comes back from the cache in the configured mode
    os.unlink(ws.root / "f.txt")
    restored = ws.pivot("run").stdout
    assert "restored make from cache" in restored
    before = _snapshot(ws.root, ["d", "f.txt", "g.txt"])
    for _ in range(2):
        result = ws.pivot("run")
        assert "0 ran, 0 restored, 2 up to date, 0 failed" in result.stdout
    assert _snapshot(ws.root, ["d", "f.txt", "g.txt"]) == before
    assert ws.read("g.txt") == "data\ndata\n"
    for obj in (ws.root / ".pivot/cache").rglob("*"):
        assert not obj.is_symlink(), f"link inside the cache: {obj}"


def test_failure_reports_stage_exit_code_and_log(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          bad:
            cmd: echo something broke >&2; exit 4
            outs: [bad.txt]
          after:
            cmd: cp bad.txt after.txt
            deps: [bad.txt]
            outs: [after.txt]
        """)
    result = ws.pivot("run", "-j", "1", expect=1)
    log = ".pivot/logs/bad.log"
    assert f"failed: bad (exit 4, log {log})" in result.stdout
    assert "something broke" in result.stdout  # the tail of the log
    assert "blocked after: upstream bad failed" in result.stdout
    assert "something broke" in ws.read(log)
    assert not (ws.root / ".pivot/locks/bad.json").exists()


def test_verbose_streams_output(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          talk:
            cmd: echo hello from the stage
        """)
    out = ws.pivot("run", "-v", "-j", "1").stdout
    assert "hello from the stage\n" in out
    prefixed = ws.pivot("run", "-v", "-j", "2").stdout  # a callback stage always runs
    assert "talk| hello from the stage\n" in prefixed


def test_checkout_restores_and_reports_missing(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          a:
            cmd: echo A > a.txt
            outs: [a.txt]
          b:
            cmd: echo B > b.txt
            outs: [b.txt]
        """)
    ws.pivot("run")
    os.unlink(ws.root / "a.txt")
    result = ws.pivot("checkout")
    assert "restored a.txt (a)" in result.stdout
    assert "1 restored, 1 unchanged, 0 missing from the cache" in result.stdout
    assert ws.read("a.txt") == "A\n"
    # lose the cache: checkout says what it cannot restore
    for obj in (ws.root / ".pivot/cache").rglob("*"):
        if obj.is_file():
            os.chmod(obj, stat.S_IWUSR | stat.S_IRUSR)
            obj.unlink()
    os.unlink(ws.root / "b.txt")
    result = ws.pivot("checkout", "b", expect=1)
    assert "missing from the cache: b.txt (b)" in result.stderr


def test_log_shows_what_ran_and_why(ws) -> None:
    ws.write("in.txt", "1\n")
    ws.write("dvc.yaml", """\
        stages:
          first:
            cmd: cp in.txt first.txt
            deps: [in.txt]
            outs: [first.txt]
          second:
            cmd: cp first.txt second.txt
            deps: [first.txt]
            outs: [second.txt]
        """)
    ws.pivot("run")
    ws.write("in.txt", "2\n")
    ws.pivot("run")
    text = ws.pivot("log", "-n", "1").stdout
    assert "ran         first" in text and "dep 'in.txt' modified" in text
    assert "ran         second" in text and "dep 'first.txt' modified" in text
    runs = json.loads(ws.pivot("log", "second", "--json").stdout)
    assert len(runs) == 2
    assert [r["stages"][0]["reasons"][0]["kind"] for r in runs] == ["dep_modified", "no_record"]
    assert runs[0]["stages"][0]["log"] == ".pivot/logs/second.log"
    assert runs[0]["status"] == "ok" and runs[0]["stages"][0]["duration"] >= 0


def test_dry_run_prints_the_plan_and_runs_nothing(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          a:
            cmd: echo A > a.txt
            outs: [a.txt]
          b:
            cmd: cp a.txt b.txt
            deps: [a.txt]
            outs: [b.txt]
        """)
    dry = ws.pivot("run", "--dry").stdout
    assert dry == ws.pivot("plan").stdout
    assert "a" in dry and "b" in dry
    assert not (ws.root / "a.txt").exists()
    ws.pivot("run", "a")
    assert ws.pivot("run", "--dry", "b").stdout == ws.pivot("plan", "b").stdout


def test_commit_is_recorded_in_the_log(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          by_hand:
            cmd: echo made > made.txt
            outs: [made.txt]
        """)
    ws.write("made.txt", "made\n")
    ws.pivot("commit", "by_hand")
    (run,) = json.loads(ws.pivot("log", "--json").stdout)
    assert run["command"] == "commit"
    assert [(s["address"], s["outcome"]) for s in run["stages"]] == [("by_hand", "committed")]
    assert "0 ran, 0 restored, 1 up to date" in ws.pivot("run").stdout


def _fan_out(ws, stages: int) -> None:
    ws.write("dvc.yaml", f"""\
        stages:
          step:
            foreach: {list(range(stages))}
            do:
              cmd: test ${{item}} -ne 3 && echo ${{item}} > out/${{item}}.txt
              outs:
                - out/${{item}}.txt
        """)


def test_plain_output_is_one_line_per_stage_and_quiet_only_failures(ws) -> None:
    _fan_out(ws, 40)
    first = ws.pivot("run", "-j", "2", "-k", expect=1)
    lines = first.stdout.splitlines()
    # 39 ran, 1 failed (with its log tail), then the summary and the failure's line
    assert len([line for line in lines if line.startswith("[")]) == 40, first.stdout
    assert not any(line.startswith("running ") for line in lines)
    assert "39 ran, 0 restored, 0 up to date, 1 failed in " in first.stdout

    quiet = ws.pivot("run", "-j", "2", "-k", "-q", expect=1)
    assert [line for line in quiet.stdout.splitlines() if line.startswith("[")] == \
        ["[1/1] FAILED step@3 (exit 1): command failed: test 3 -ne 3 && echo 3 > out/3.txt;"
         " log: .pivot/logs/step%403.log"]
    assert "0 ran, 0 restored, 39 up to date, 1 failed in " in quiet.stdout

    verbose = ws.pivot("run", "-v", "step@3", expect=1)
    assert "running step@3: never run" in verbose.stdout


def test_verbose_and_quiet_together_is_an_error(ws) -> None:
    _fan_out(ws, 1)
    result = ws.pivot("run", "-v", "-q", expect=None)
    assert result.exit_code != 0 and "-v and -q cannot be used together" in result.stderr
