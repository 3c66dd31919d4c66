"""Terminal output: a Ninja-like status line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

import pytest

from pivot.backends.progress import Failure, Progress, Summary, Verbosity, render_summary
from pivot.state.audit import Outcome, ReasonNote, StageEntry


def test_status_line_is_rewritten_in_place_and_failures_stay() -> None:
    out = io.StringIO()
    progress = Progress(out, 3, status_line=True, prefix_output=False)
    progress.started("base/dvc.yaml:merge_data@v2", (ReasonNote("no_record", "never run"),))
    progress.started("other", ())
    progress.settled(StageEntry("other", Outcome.RAN, started=0.0, ended=0.5))
    progress.settled(StageEntry("base/dvc.yaml:merge_data@v2", Outcome.FAILED, exit_code=2, log=".pivot/logs/x.log"), "boom")
    text = out.getvalue()
    assert "\r\x1b[K[0/3] running base/dvc.yaml:merge_data@v2 (+1 more)" in text
    assert "\r\x1b[K[1/3] running base/dvc.yaml:merge_data@v2" in text
    assert "FAILED base/dvc.yaml:merge_data@v2 (exit 2); log: .pivot/logs/x.log\n    boom\n" in text
    assert "ran other" not in text  # successes only move the counter


def test_plain_lines_one_per_settled_stage() -> None:
    out = io.StringIO()
    progress = Progress(out, 2, status_line=False, prefix_output=False)
    why = (ReasonNote("dep_modified", "dep 'x' modified"),)
    progress.started("a", why)
    progress.settled(StageEntry("a", Outcome.RAN, reasons=why, started=1.0, ended=1.25))
    progress.settled(StageEntry("b", Outcome.RESTORED))
    assert out.getvalue() == "[1/2] ran a in 250ms (dep 'x' modified)\n[2/2] restored b from cache\n"
    assert "\r" not in out.getvalue()


def test_verbose_plain_lines_also_say_when_a_stage_starts() -> None:
    out = io.StringIO()
    progress = Progress(out, 1, status_line=False, prefix_output=False, verbosity=Verbosity.VERBOSE)
    why = (ReasonNote("dep_modified", "dep 'x' modified"),)
    progress.started("a", why)
    progress.output("a", b"hello\n")
    progress.settled(StageEntry("a", Outcome.RAN, reasons=why, started=1.0, ended=1.25))
    assert out.getvalue() == "running a: dep 'x' modified\nhello\n[1/1] ran a in 250ms (dep 'x' modified)\n"


@pytest.mark.parametrize("status_line", [False, True])
def test_quiet_prints_only_failures_warnings_and_the_summary(status_line) -> None:
    out = io.StringIO()
    progress = Progress(out, 3, status_line=status_line, prefix_output=False, verbosity=Verbosity.QUIET)
    progress.started("a", ())
    progress.settled(StageEntry("a", Outcome.RAN, started=1.0, ended=1.25))
    progress.started("b", ())
    progress.note("WARNING: object gone; running b")
    progress.settled(StageEntry("b", Outcome.FAILED, exit_code=2, log=".pivot/logs/b.log"), "boom")
    progress.settled(StageEntry("c", Outcome.BLOCKED, message="upstream b failed"))
    progress.finish(Summary(ran=1, restored=0, up_to_date=0, blocked=1, interrupted=False, wall=0.5,
                            failed=(Failure("b", 2, ".pivot/logs/b.log", None, "boom"),)))
    assert out.getvalue() == (
        "WARNING: object gone; running b\n"
        "[2/3] FAILED b (exit 2); log: .pivot/logs/b.log\n    boom\n"
        "1 ran, 0 restored, 0 up to date, 1 failed, 1 blocked in 500ms\n"
        "  failed: b (exit 2, log .pivot/logs/b.log)\n"
    )


def test_summary_names_each_failure() -> None:
    summary = Summary(ran=3, restored=1, up_to_date=89, blocked=2, interrupted=False, wall=2.5,
                      failed=(Failure("bad", 3, ".pivot/logs/bad.log", "command failed: x", ""),))
    assert render_summary(summary) == [
        "3 ran, 1 restored, 89 up to date, 1 failed, 2 blocked in 2.50s",
        "  failed: bad (exit 3, log .pivot/logs/bad.log)",
    ]
