"""The floor under a run: the same commands with no tool deciding anything.

Every stage's commands (as ``pivot list --json`` resolves them) are run
level by level of the DAG, each level split over ``jobs`` lanes that run at
once; a lane is a plain shell script starting each command exactly as
``pivot run`` does (``$SHELL --noprofile --norc -c CMD``, or ``$SHELL FILE``
for a command too long for one argument).  The time this takes is what
pivot's wall time is compared with: the rest is pivot's overhead.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

NO_RC_FLAGS = {"bash": ("--noprofile", "--norc"), "zsh": ("--no-rcs",), "fish": ("--no-config",)}
LONG_COMMAND = 32_000  # as pivot.backends.execute: longer commands run from a file


def listed_stages(pivot_argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> list[dict]:
    out = subprocess.run([*pivot_argv, "list", "--json"], cwd=cwd, env=dict(env), capture_output=True,
                         check=True).stdout
    return json.loads(out)["stages"]


def levels(stages: Sequence[dict]) -> list[list[dict]]:
    """Stages grouped by DAG depth (a stage comes after everything it reads)."""
    producer = {out["path"]: stage["address"] for stage in stages for out in stage["outs"]}
    by_address = {stage["address"]: stage for stage in stages}
    depth: dict[str, int] = {}

    def depth_of(address: str) -> int:
        if address not in depth:
            ups = {producer[dep] for dep in by_address[address]["deps"] if dep in producer}
            depth[address] = 1 + max((depth_of(up) for up in ups), default=-1)
        return depth[address]

    grouped: dict[int, list[dict]] = {}
    for stage in stages:
        grouped.setdefault(depth_of(stage["address"]), []).append(stage)
    return [grouped[d] for d in sorted(grouped)]


def run_floor(stages: Sequence[dict], root: Path, env: Mapping[str, str], jobs: int, scratch: Path) -> float:
    """Run every stage's commands in ``root`` as described above; returns
    the wall seconds (output directories are made beforehand, untimed)."""
    shell = env.get("PIVOT_SHELL") or env.get("SHELL") or "/bin/sh"
    flags = NO_RC_FLAGS.get(os.path.basename(shell), ())
    scratch.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        for out in stage["outs"]:
            (root / out["path"]).parent.mkdir(parents=True, exist_ok=True)
    lanes_per_level = []
    for number, level in enumerate(levels(stages)):
        lanes = [_lane_script(level[lane::jobs], root, shell, flags, scratch / f"level{number}-lane{lane}")
                 for lane in range(min(jobs, len(level)))]
        lanes_per_level.append(lanes)
    started = time.perf_counter()
    for lanes in lanes_per_level:
        running = [subprocess.Popen([shell, *flags, str(lane)], cwd=root, env=dict(env),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for lane in lanes]
        codes = [proc.wait() for proc in running]
        if any(codes):
            raise RuntimeError(f"a bare command failed (exit codes {codes}); see {scratch}")
    return time.perf_counter() - started


def _lane_script(stages: Sequence[dict], root: Path, shell: str, flags: Sequence[str], path: Path) -> Path:
    lines = ["set -e"]
    prefix = " ".join(shlex.quote(part) for part in (shell, *flags))
    here = None
    for index, stage in enumerate(stages):
        wdir = shlex.quote(str(root / stage["wdir"]))
        if wdir != here:  # no subshell per command: that would add a fork pivot does not make
            lines.append(f"cd {wdir}")
            here = wdir
        for number, cmd in enumerate(stage["cmd"]):
            if len(cmd) > LONG_COMMAND:
                script = path.with_name(f"{path.name}-{index}-{number}.sh")
                script.write_text(cmd + "\n")
                lines.append(f"{prefix} {shlex.quote(str(script))}")
            else:
                lines.append(f"{prefix} -c {shlex.quote(cmd)}")
    path.write_text("\n".join(lines) + "\n")
    return path
