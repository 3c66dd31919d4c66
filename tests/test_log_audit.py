"""The audit trail on its own: records written line by line, read back
without the workspace, torn or unfinished records tolerated."""

from __future__ import annotations

from pathlib import Path

from pivot.project import Project
from pivot.state import audit
from pivot.state.audit import Outcome, ReasonNote, StageEntry


def test_round_trip_and_newest_first(tmp_path: Path) -> None:
    project = Project(root=tmp_path, cwd=tmp_path)
    first = audit.AuditWriter(project, "run", ["pivot", "run"])
    first.stage(StageEntry("a", Outcome.RAN, (ReasonNote("no_record", "never run"),), 10.0, 12.5, 0, ".pivot/logs/a.log"))
    first.stage(StageEntry("b", Outcome.FAILED, (), 12.5, 13.0, 3, ".pivot/logs/b.log", "command failed: exit 3"))
    first.close("failed")
    path = audit.append_commit(project, ["pivot", "commit", "c"], [StageEntry("c", Outcome.COMMITTED)])
    assert path.parent == tmp_path / ".pivot" / "runs"

    newest, oldest = list(audit.read_runs(project))
    assert newest.command == "commit" and newest.stages[0].address == "c"
    assert oldest.status == "failed" and oldest.argv == ("pivot", "run")
    ran, failed = oldest.stages
    assert ran.reasons == (ReasonNote("no_record", "never run"),) and ran.duration == 2.5
    assert failed.exit_code == 3 and failed.message == "command failed: exit 3"
    assert [r.run_id for r in audit.read_runs(project, limit=1)] == [newest.run_id]


def test_killed_run_reads_as_incomplete_and_torn_line_is_ignored(tmp_path: Path) -> None:
    project = Project(root=tmp_path, cwd=tmp_path)
    writer = audit.AuditWriter(project, "run", ["pivot", "run"])
    writer.stage(StageEntry("a", Outcome.RAN, started=1.0, ended=2.0, exit_code=0))
    with open(writer.path, "a") as f:
        f.write('{"type": "stage", "address": "b", "outc')  # what a crash mid-write would leave
    (record,) = audit.read_runs(project)
    assert record.status == "incomplete" and record.ended is None
    assert [s.address for s in record.stages] == ["a"]


def test_no_runs_directory_means_no_runs(tmp_path: Path) -> None:
    assert list(audit.read_runs(Project(root=tmp_path, cwd=tmp_path))) == []
