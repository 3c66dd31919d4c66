"""Helpers for state/optimizer tests: hand-built IR in a real workspace."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pivot.ir import Dep, Out, ParamsDep, Stage


def stage(
    name: str,
    cmd: str = "true",
    deps: tuple[str, ...] = (),
    outs: tuple[str, ...] = (),
    params: tuple[tuple[str, tuple[str, ...] | None], ...] = (),
    **flags,
) -> Stage:
    return Stage(
        address=name,
        name=name,
        file="dvc.yaml",
        wdir=".",
        cmds=(cmd,),
        deps=tuple(Dep(p, p) for p in deps),
        params=tuple(ParamsDep(path, path, keys) for path, keys in params),
        outs=tuple(Out(p, p, cache=flags.pop("cache", True)) for p in outs),
        cmd_literal=cmd,
        **flags,
    )


def age(root: Path, seconds: float = 10.0) -> None:
    """Push every mtime below ``root`` into the past, out of the racy window."""
    past = time.time() - seconds
    for dirpath, dirs, files in os.walk(root):
        if ".pivot" in dirs:
            dirs.remove(".pivot")
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)
