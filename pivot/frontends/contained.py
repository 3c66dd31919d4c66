"""Refusing, at load time, stages that would write outside the project.

A pipeline file comes with the checkout, so its outs are someone else's
data.  Like DVC, pivot refuses an out (outs, metrics, plots) that is
absolute outside the root, is the root itself or leaves it through ``..``,
and a ``wdir`` outside the root; also an out whose parent directory is
(or lies under) a symlink leading outside the real root.  (Outs inside
``.git``, ``.dvc``, ``.pivot`` or holding pipeline files are refused by
:mod:`pivot.graph`.)  Deps may be anywhere: reading a shared
file next to the project is ordinary (``deps: [../shared.txt]``).

The same check runs on a freshly loaded pipeline and on one taken from
the pipeline cache, so a cached pipeline can never bypass it.  It is the
first line of defence; every writer checks again at write time
(:func:`pivot.containment.writable_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from pivot.containment import RealParents, outside_reason
from pivot.errors import PipelineError
from pivot.ir import Out, Stage

_SECTION = {"out": "output", "metric": "metric", "plot": "plot"}


def refuse_outside(root: Path, stages: Iterable[Stage]) -> None:
    """PipelineError naming the file, stage and path of the first out or
    wdir of ``stages`` that leaves the project (see the module docstring)."""
    parents: RealParents | None = None  # made at the first stage with outs
    for stage in stages:
        if stage.wdir != ".":
            reason = _wdir_reason(stage.wdir)
            if reason is None:
                parents = parents or RealParents(root)
                real = parents.dir_escape(stage.wdir)
                if real is not None:
                    reason = f"it leads through a symlink to '{real}', outside the project"
            if reason is not None:
                raise _refused(stage, "wdir", f"'{stage.wdir}'", reason)
        for out in stage.outs:
            reason = outside_reason(out.path)
            if reason is None:
                parents = parents or RealParents(root)
                real = parents.escape(out.path)
                if real is None:
                    continue
                reason = f"a symlinked directory on its way leads to '{real}', outside the project"
            if out.def_path.startswith("/") and reason == "it is outside the project root":
                reason = "it is an absolute path outside the project"
            raise _refused(stage, _SECTION[out.kind.value], _shown(out), reason)


def _wdir_reason(wdir: str) -> str | None:
    if wdir.startswith("/") or (len(wdir) > 1 and wdir[1] == ":"):
        return "it is an absolute path"
    reason = outside_reason(wdir)
    return None if reason == "it is the project root itself" else reason


def _shown(out: Out) -> str:
    """The path as written, and where it lands when that differs."""
    if out.def_path == out.path or out.def_path.startswith("/"):
        return f"'{out.def_path}'"
    return f"'{out.def_path}' (resolves to '{out.path}')"


def _refused(stage: Stage, what: str, path: str, reason: str) -> PipelineError:
    where = str(stage.location) if stage.location is not None else stage.file
    return PipelineError(
        f"{where}: stage '{stage.name}': refusing {what} {path}: {reason}"
        " (outputs and wdir must stay inside the project)"
    )
