"""The runner on hand-made IR with the real state: scheduling, early cutoff,
restore from cache, failures, records."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from pivot import optimizer
from pivot.backends.progress import Progress, Summary
from pivot.backends.runner import Runner, RunOptions
from pivot.graph import build_pipeline
from pivot.ir import Dep, Out, Stage
from pivot.project import Project
from pivot.state import State
from pivot.state import audit


def _stage(name: str, *cmds: str, deps=(), outs=(), persist=False) -> Stage:
    return Stage(
        address=name, name=name, file="dvc.yaml", wdir=".", cmds=cmds,
        deps=tuple(Dep(d, d) for d in deps),
        outs=tuple(Out(o, o, persist=persist) for o in outs),
    )


def _run(root: Path, stages, **options) -> tuple[Summary, str]:
    pipeline = build_pipeline(stages)
    project = Project(root=root, cwd=root)
    out = io.StringIO()
    with State.open(project) as state:
        plan = optimizer.make_plan(pipeline, stages, state, force=options.pop("force", False))
        with audit.AuditWriter(project, "run", ["test"]) as writer:
            runner = Runner(
                pipeline, state, RunOptions(jobs=options.pop("jobs", 2), **options),
                progress_factory=lambda n: Progress(out, n, status_line=False, prefix_output=True),
                audit=writer,
            )
            summary = runner.run(plan)
            writer.close("ok")
    return summary, out.getvalue()


def _last_run(root: Path) -> dict[str, audit.StageEntry]:
    record = next(audit.read_runs(Project(root=root, cwd=root)))
    return {entry.address: entry for entry in record.stages}


def test_independent_stages_run_in_parallel_and_downstream_waits(tmp_path: Path) -> None:
    stages = [
        _stage("a", "sleep 0.3; date +%s.%N > a.txt", outs=["a.txt"]),
        _stage("b", "sleep 0.3; date +%s.%N > b.txt", outs=["b.txt"]),
        _stage("c", "cat a.txt b.txt > c.txt", deps=["a.txt", "b.txt"], outs=["c.txt"]),
    ]
    started = time.monotonic()
    summary, _ = _run(tmp_path, stages, jobs=2)
    assert time.monotonic() - started < 0.55  # a and b overlapped
    assert summary.ran == 3 and not summary.failed
    assert (tmp_path / "c.txt").read_text().count("\n") == 2


@pytest.mark.slow
def test_stage_starts_as_soon_as_its_own_upstream_is_done(tmp_path: Path) -> None:
    # slow -> (nothing); fast -> after_fast.  after_fast must not wait for slow.
    stages = [
        _stage("slow", "sleep 0.6; touch slow.txt", outs=["slow.txt"]),
        _stage("fast", "touch fast.txt", outs=["fast.txt"]),
        _stage("after_fast", "test ! -e slow.txt && touch after.txt", deps=["fast.txt"], outs=["after.txt"]),
    ]
    summary, output = _run(tmp_path, stages, jobs=2)
    assert summary.ran == 3, output


def test_second_run_is_a_no_op(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x\n")
    stages = [_stage("a", "cp in.txt a.txt", deps=["in.txt"], outs=["a.txt"])]
    _run(tmp_path, stages)
    before = os.stat(tmp_path / "a.txt")
    summary, _ = _run(tmp_path, stages)
    after = os.stat(tmp_path / "a.txt")
    assert (summary.ran, summary.up_to_date) == (0, 1)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_early_cutoff_skips_downstream_of_identical_outputs(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("Hello\n")
    stages = [
        _stage("lower", "tr A-Z a-z < in.txt > lower.txt", deps=["in.txt"], outs=["lower.txt"]),
        _stage("count", "wc -c < lower.txt > count.txt; echo ran >> count.log", deps=["lower.txt"], outs=["count.txt"]),
    ]
    _run(tmp_path, stages)
    (tmp_path / "in.txt").write_text("HELLO\n")  # same lower-case text
    summary, output = _run(tmp_path, stages)
    assert (summary.ran, summary.up_to_date) == (1, 1), output
    assert (tmp_path / "count.log").read_text() == "ran\n"
    assert "skipped count: upstream outputs unchanged" in output
    entries = _last_run(tmp_path)
    assert entries["lower"].outcome is audit.Outcome.RAN
    assert entries["lower"].reasons[0].kind == "dep_modified"
    assert entries["count"].outcome is audit.Outcome.SKIPPED


def test_deleted_output_is_restored_from_cache_not_rerun(tmp_path: Path) -> None:
    stages = [_stage("a", "echo data > a.txt; echo ran >> runs.log", outs=["a.txt"])]
    _run(tmp_path, stages)
    (tmp_path / "a.txt").unlink()
    summary, output = _run(tmp_path, stages)
    assert summary.restored == 1 and summary.ran == 0, output
    assert "restored a from cache" in output
    assert (tmp_path / "a.txt").read_text() == "data\n"
    assert (tmp_path / "runs.log").read_text() == "ran\n"


@pytest.mark.parametrize("keep_going", [False, True])
@pytest.mark.slow
def test_failure_blocks_downstream_and_records_nothing_for_it(tmp_path: Path, keep_going: bool) -> None:
    stages = [
        _stage("bad", "echo about to fail; exit 3", outs=["bad.txt"]),
        _stage("after_bad", "touch after.txt", deps=["bad.txt"], outs=["after.txt"]),
        _stage("slow_ok", "sleep 0.3; touch ok.txt", outs=["ok.txt"]),
        _stage("later", "touch later.txt", outs=["later.txt"]),
    ]
    summary, output = _run(tmp_path, stages, jobs=2, keep_going=keep_going)
    (failure,) = summary.failed
    assert failure.address == "bad" and failure.exit_code == 3
    assert failure.log == ".pivot/logs/bad.log" and "about to fail" in failure.tail
    assert "about to fail" in output  # the log tail is printed
    assert not (tmp_path / ".pivot" / "locks" / "bad.json").exists()
    assert (tmp_path / "ok.txt").exists()  # already running: allowed to finish
    entries = _last_run(tmp_path)
    assert entries["after_bad"].outcome is audit.Outcome.BLOCKED
    assert entries["after_bad"].message == "upstream bad failed"
    assert (tmp_path / "later.txt").exists() is keep_going
    if not keep_going:
        assert entries["later"].outcome is audit.Outcome.BLOCKED


def test_missing_output_fails_the_stage(tmp_path: Path) -> None:
    stages = [_stage("lazy", "true", outs=["never.txt"])]
    summary, _ = _run(tmp_path, stages)
    (failure,) = summary.failed
    assert "did not produce output 'never.txt'" in failure.message
    assert not any((tmp_path / ".pivot" / "locks").glob("*.json"))


def test_persist_output_is_kept_between_runs(tmp_path: Path) -> None:
    stages = [_stage("acc", "echo line >> acc.txt", outs=["acc.txt"], persist=True)]
    _run(tmp_path, stages)
    _run(tmp_path, stages, force=True)
    assert (tmp_path / "acc.txt").read_text() == "line\nline\n"
