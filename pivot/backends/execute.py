"""Running one stage's commands as real processes.

Each command runs in its own shell, started in the stage's working
directory (a ``cd`` in one command never leaks into the next), in a new
session so that an interrupt can end the command together with everything
it started.  Output goes to the stage's log file; with ``echo`` it is also
passed on line by line as it arrives.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

# Shells that read start-up files unless told not to (as DVC runs them).
_NO_RC_FLAGS = {
    "bash": ("--noprofile", "--norc"),
    "zsh": ("--no-rcs",),
    "fish": ("--no-config",),
}


def shell_prefix(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The argv that runs a command string: ``$PIVOT_SHELL``, else ``$SHELL``
    (as DVC does), else ``/bin/sh``, followed by ``-c``."""
    environ = os.environ if environ is None else environ
    shell = environ.get("PIVOT_SHELL") or environ.get("SHELL") or "/bin/sh"
    return (shell, *_NO_RC_FLAGS.get(os.path.basename(shell), ()), "-c")


def shell_prefix_sh(*, with_c: bool = True) -> str:
    """POSIX shell code setting ``"$@"`` to :func:`shell_prefix`, resolved
    when it runs: emitted files (``pivot emit sh|ninja``) run each command
    as ``"$@" CMD``, with the same shell as ``pivot run``.  Without ``-c``
    (``with_c=False``) the shell runs a script file instead."""
    cases = " ".join(f'{name}) set -- "$1" {" ".join(flags)} ;;' for name, flags in _NO_RC_FLAGS.items())
    code = f'set -- "${{PIVOT_SHELL:-${{SHELL:-/bin/sh}}}}"; case "${{1##*/}}" in {cases} esac'
    return code + '; set -- "$@" -c' if with_c else code


# Linux refuses a single argument longer than 128 KiB (MAX_ARG_STRLEN) with
# E2BIG, so a longer command cannot be given as ``SHELL -c CMD``.  Commands
# over this many characters (UTF-8 takes at most 4 bytes a character, so
# 128,000 bytes at most) are written to a script file that the same shell
# runs instead: ``SHELL [flags] FILE``.  Shorter ones keep ``-c`` exactly as
# before.  The emitted sh script and Ninja file use the same bound.
LONG_COMMAND = 32_000


def is_long_command(cmd: str) -> bool:
    """Whether ``cmd`` is run from a script file rather than as ``-c`` text."""
    return len(cmd) > LONG_COMMAND


@dataclass(frozen=True, slots=True)
class CommandsResult:
    """How a stage's commands ended.

    ``exit_code`` is 0 when every command succeeded, else the code of the
    first failing one (negative: killed by that signal); ``interrupted`` is
    set when pivot itself stopped the command.
    """

    exit_code: int
    failed_command: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.interrupted


class ProcessGroups:
    """The process groups of every running command, so that an interrupt
    can end them all.  Once ``stop`` was called no new command starts.

    A group that was sent a signal is remembered after its command's shell
    is gone: a grandchild that ignores SIGTERM lives on in it, and the
    SIGKILL after the grace period must still reach it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._signalled: set[int] = set()  # told to stop, not yet SIGKILLed
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def spawn(self, argv: Sequence[str], **popen_kwargs) -> subprocess.Popen[bytes] | None:
        """Start ``argv`` as the leader of a new session; None once stopping.

        Spawning under the lock means ``stop`` sees every group it must end.
        """
        with self._lock:
            if self._stopping:
                return None
            proc = subprocess.Popen(argv, start_new_session=True, **popen_kwargs)
            self._running.add(proc.pid)
            return proc

    def finished(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc.pid)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Refuse new commands and send ``sig`` to every running group and
        to every group signalled before (SIGKILL ends that list)."""
        with self._lock:
            self._stopping = True
            groups = self._running | self._signalled
            if sig == signal.SIGKILL:
                self._signalled.clear()
            else:
                self._signalled |= self._running
        for pgid in groups:
            _signal_group(pgid, sig)

    def survivors(self) -> list[int]:
        """The signalled groups that still hold a process."""
        with self._lock:
            groups = list(self._signalled)
        return [pgid for pgid in groups if _group_alive(pgid)]

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` holds a process that is not a zombie
    (an init that does not reap, as in some containers, keeps zombies in
    the group; waiting for them would only delay the exit)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or not ours: nothing we could end
        return False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: take the kernel's word
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def run_commands(
    cmds: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    groups: ProcessGroups,
    shell: Sequence[str],
    echo: Callable[[bytes], None] | None = None,
) -> CommandsResult:
    """Run ``cmds`` one after the other, each in a fresh shell starting in
    ``cwd``; stop at the first failure.  The log file is rewritten: each
    command is announced by a ``> command`` line, as DVC prints it."""
    with open(log_path, "wb") as log:
        for cmd in cmds:
            log.write(f"> {cmd}\n".encode())
            log.flush()
            if echo is not None:
                echo(f"> {cmd}\n".encode())
            stdout = subprocess.PIPE if echo is not None else log
            script = _write_script(cmd, log_path) if is_long_command(cmd) else None
            argv = [*shell, cmd] if script is None else [*_without_c(shell), str(script)]
            try:
                proc = groups.spawn(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.STDOUT,
                )
            except OSError as exc:
                # the shell itself could not start (missing, not executable,
                # the environment too large): a failure of this stage, said
                # in its log, with the code a shell gives "cannot execute"
                _remove(script)
                message = f"pivot: cannot start the shell {argv[0]!r}: {exc.strerror or exc}\n"
                if exc.errno == errno.E2BIG:
                    message += "pivot: the command's environment is too large for the kernel\n"
                else:
                    message += "pivot: set PIVOT_SHELL (or SHELL) to a shell that exists and can run\n"
                log.write(message.encode())
                if echo is not None:
                    echo(message.encode())
                return CommandsResult(exit_code=_CANNOT_EXECUTE, failed_command=cmd)
            if proc is None:
                _remove(script)
                return CommandsResult(exit_code=-signal.SIGTERM, failed_command=cmd, interrupted=True)
            try:
                if echo is not None:
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        log.write(line)
                        echo(line)
                    proc.stdout.close()
                code = proc.wait()
            finally:
                groups.finished(proc)
                _remove(script)
            if code != 0:
                return CommandsResult(exit_code=code, failed_command=cmd, interrupted=groups.stopping)
    return CommandsResult(exit_code=0)


_CANNOT_EXECUTE = 126  # what sh returns for a command found but not executable


def _write_script(cmd: str, log_path: Path) -> Path:
    """Write a long command to a private file beside the stage's log (under
    ``.pivot/``, never in the workspace the command sees)."""
    import tempfile  # only long commands need it; keep it off the start-up path

    fd, name = tempfile.mkstemp(prefix=log_path.stem[:64] + ".", suffix=".sh", dir=log_path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(cmd)
        handle.write("\n")
    return Path(name)


def _without_c(shell: Sequence[str]) -> Sequence[str]:
    """The shell argv without its trailing ``-c``: the file comes instead."""
    return shell[:-1] if shell and shell[-1] == "-c" else shell


def _remove(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def log_tail(log_path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log (decoded leniently), for failure reports."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
