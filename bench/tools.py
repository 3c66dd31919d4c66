"""The two tools under test and how each one performs an operation.

A :class:`Tool` knows the command line of each :class:`Op`, how to prepare
a fresh workspace copy for itself, and how to throw its state away for the
"cold" measurements.  Nothing here measures; :mod:`bench.scenario` does.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


class Op(enum.Enum):
    """One measured operation; the value is how the table names it."""

    HELP = "--help"
    LIST = "list stages"
    FRESH_RUN = "fresh run"
    FRESH_RUN_SERIAL = "fresh run, 1 job"
    # When DVC's own fresh run cannot finish: record pivot's byte-identical
    # outputs as up to date (`dvc commit -f`), so the later ops still compare.
    ADOPT = "record outputs built by pivot"
    NOOP_RUN = "no-op run"
    STATUS_WARM = "warm status"
    STATUS_COLD = "cold status"
    TOUCH_PARAM_RUN = "run after 1 param change"
    RUN_CACHE_REVERT = "run after param revert"
    EMIT_NINJA = "emit ninja"
    NINJA_FIRST = "first ninja after run"
    NINJA_NOOP = "ninja no-op"


def harness_path() -> str:
    """PATH with the harness's interpreter first: stage commands say ``python``."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@dataclass(frozen=True)
class Tool:
    name: str
    argv: tuple[str, ...]  # how to start the tool itself

    def command(self, op: Op) -> tuple[str, ...] | None:
        """The command line for ``op``; None when this tool has no such operation."""
        raise NotImplementedError

    def env(self, workspace: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = harness_path()
        # Measure what users run: pip byte-compiles installed packages, so
        # neither tool should recompile its sources on every start (some
        # sandboxes set this variable globally; it costs pivot ~30 ms a start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def prepare(self, workspace: Path) -> None:
        """Make a fresh copy of the pristine workspace usable by this tool."""

    def drop_state(self, workspace: Path) -> None:
        """Forget every cached hash so the next status starts cold."""
        raise NotImplementedError


@dataclass(frozen=True)
class Pivot(Tool):
    available: frozenset[str] = frozenset()  # commands `pivot --help` lists

    @classmethod
    def find(cls) -> "Pivot":
        script = Path(sys.executable).with_name("pivot")
        argv = (str(script),) if script.exists() else (sys.executable, "-m", "pivot")
        listed = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=True).stdout
        commands = _listed_commands(listed)
        run_help = ""
        if "run" in commands:
            run_help = subprocess.run([*argv, "run", "--help"], capture_output=True, text=True).stdout
        if "-j" in run_help or "--jobs" in run_help:
            commands.add("run -j")
        return cls(name="pivot", argv=argv, available=frozenset(commands))

    def prepare(self, workspace: Path) -> None:
        # A project root of its own, as `dvc init` makes one for DVC: without
        # it a workspace inside a git checkout would belong to that checkout.
        (workspace / ".pivot").mkdir(exist_ok=True)

    def command(self, op: Op) -> tuple[str, ...] | None:
        wanted = {
            Op.HELP: ("--help", None),
            Op.LIST: ("list", "list"),
            Op.FRESH_RUN: ("run", "run"),
            Op.FRESH_RUN_SERIAL: ("run -j 1", "run -j"),
            Op.NOOP_RUN: ("run", "run"),
            Op.STATUS_WARM: ("status", "status"),
            Op.STATUS_COLD: ("status", "status"),
            Op.TOUCH_PARAM_RUN: ("run", "run"),
            Op.RUN_CACHE_REVERT: ("run", "run"),
            Op.EMIT_NINJA: ("emit ninja -o build.ninja", "emit"),
        }
        if op in (Op.NINJA_FIRST, Op.NINJA_NOOP):
            ninja = shutil.which("ninja", path=harness_path())
            return (ninja,) if ninja else None
        args, needs = wanted[op]
        if needs is not None and needs not in self.available:
            return None
        return (*self.argv, *args.split())

    def drop_state(self, workspace: Path) -> None:
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            (workspace / ".pivot" / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class Dvc(Tool):
    def command(self, op: Op) -> tuple[str, ...] | None:
        args = {
            Op.HELP: "--help",
            Op.LIST: "stage list --all",
            Op.FRESH_RUN: "repro --all-pipelines",
            Op.ADOPT: "commit --force",
            Op.NOOP_RUN: "repro --all-pipelines",
            Op.STATUS_WARM: "status",
            Op.STATUS_COLD: "status",
            Op.TOUCH_PARAM_RUN: "repro --all-pipelines",
            Op.RUN_CACHE_REVERT: "repro --all-pipelines",
        }.get(op)
        return (*self.argv, *args.split()) if args else None

    def env(self, workspace: Path) -> dict[str, str]:
        env = super().env(workspace)
        env["DVC_NO_ANALYTICS"] = "1"
        # DVC 3 keeps its state db and index outside the repo unless told;
        # inside .dvc/ each copy is independent and "cold" is one rmtree.
        env["DVC_SITE_CACHE_DIR"] = str(workspace / ".dvc" / "site_cache")
        return env

    def prepare(self, workspace: Path) -> None:
        subprocess.run(
            [*self.argv, "init", "--no-scm", "-q"],
            cwd=workspace,
            env=self.env(workspace),
            check=True,
            capture_output=True,
        )

    def drop_state(self, workspace: Path) -> None:
        shutil.rmtree(workspace / ".dvc" / "site_cache", ignore_errors=True)
        shutil.rmtree(workspace / ".dvc" / "tmp", ignore_errors=True)


def _listed_commands(help_text: str) -> set[str]:
    """Command names from the "Commands:" section of click's --help."""
    commands: set[str] = set()
    in_section = False
    for line in help_text.splitlines():
        if line.strip() == "Commands:":
            in_section = True
        elif in_section and line.startswith("  ") and line.strip():
            commands.add(line.split()[0])
        elif in_section and line.strip() and not line.startswith(" "):
            in_section = False
    return commands
