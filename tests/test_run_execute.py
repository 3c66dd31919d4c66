"""Process handling: one shell per command, cwd reset, stop at failure,
process groups ended on stop."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from pivot.backends import execute


def _run(tmp_path: Path, cmds, **kwargs) -> tuple[execute.CommandsResult, str]:
    log = tmp_path / "stage.log"
    result = execute.run_commands(
        cmds,
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=log,
        groups=kwargs.pop("groups", execute.ProcessGroups()),
        shell=("/bin/sh", "-c"),
        **kwargs,
    )
    return result, log.read_text()


def test_cd_in_one_command_does_not_leak_into_the_next(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result, log = _run(tmp_path, ["cd sub && pwd > where-first", "pwd > where-second"])
    assert result.ok
    assert (tmp_path / "sub" / "where-first").read_text().strip() == str(tmp_path / "sub")
    assert (tmp_path / "where-second").read_text().strip() == str(tmp_path)
    assert log == "> cd sub && pwd > where-first\n> pwd > where-second\n"


def test_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    result, log = _run(tmp_path, ["echo one", "echo oops >&2; exit 3", "touch never"])
    assert result.exit_code == 3
    assert result.failed_command == "echo oops >&2; exit 3"
    assert not result.interrupted
    assert not (tmp_path / "never").exists()
    assert "one\n" in log and "oops\n" in log


def test_echo_receives_output_and_log_keeps_it(tmp_path: Path) -> None:
    seen: list[bytes] = []
    result, log = _run(tmp_path, ["printf 'a\\nb\\n'"], echo=seen.append)
    assert result.ok
    assert b"".join(seen) == b"> printf 'a\\nb\\n'\na\nb\n"
    assert log.endswith("a\nb\n")


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    groups = execute.ProcessGroups()
    pidfile = tmp_path / "child.pid"
    # the shell starts a background grandchild, then waits on it
    cmd = f"sleep 30 & echo $! > {pidfile}; wait"
    outcome: list[execute.CommandsResult] = []
    thread = threading.Thread(target=lambda: outcome.append(_run(tmp_path, [cmd], groups=groups)[0]))
    thread.start()
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    grandchild = int(pidfile.read_text())
    groups.stop(signal.SIGTERM)
    thread.join(10)
    assert outcome and outcome[0].interrupted and not outcome[0].ok
    assert groups.running == 0
    time.sleep(0.05)
    assert not _alive(grandchild)
    # once stopping, nothing new starts
    result, _ = _run(tmp_path, ["touch started"], groups=groups)
    assert result.interrupted and not (tmp_path / "started").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_shell_prefix_follows_dvc() -> None:
    assert execute.shell_prefix({}) == ("/bin/sh", "-c")
    assert execute.shell_prefix({"SHELL": "/bin/bash"}) == ("/bin/bash", "--noprofile", "--norc", "-c")
    assert execute.shell_prefix({"SHELL": "/bin/bash", "PIVOT_SHELL": "/bin/dash"}) == ("/bin/dash", "-c")


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert execute.log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert execute.log_tail(tmp_path / "missing.log") == ""
