"""Python API for stage scripts: ``params_show``, as ``dvc.api.params_show``.

A script written for DVC switches with its import alone::

    try:
        from pivot.api import params_show
    except ImportError:
        from dvc.api import params_show

Inside a stage run by pivot (``pivot run``, emitted scripts, Ninja files)
the project root comes from ``PIVOT_ROOT`` (else ``DVC_ROOT``, else the
nearest directory holding ``.pivot``/``.dvc``/``.git``); names in
``stages=`` are resolved from the current directory, as DVC does.

Results are memoised per process and per arguments; each call checks the
signatures (inode, size, times) of the files the result was made from, so
an edited params file is read again, and a loop of 1,000 calls costs a few
milliseconds in all.  Each call returns a fresh copy the caller may change.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["params_show"]


def params_show(*targets: str, stages: str | Iterable[str] | None = None, deps: bool = False) -> dict[str, Any]:
    """Params of the project, merged into one mapping as DVC merges them.

    - No arguments: every params file of every stage (the keys each stage
      tracks; whole files where tracked whole), the top-level ``params:`` of
      each dvc.yaml, and the root ``params.yaml`` whole.
    - ``targets``: only these files (root-relative), whole.
    - ``stages``: only the params of these stages (a name or names).
    - ``deps=True``: only the keys stages depend on.

    A top-level key found in more than one file is given as ``file:key``
    (the file relative to the current directory).  Raises
    ``pivot.errors.PivotError`` when a file cannot be read.
    """
    names = (stages,) if isinstance(stages, str) else tuple(stages) if stages is not None else None
    environ = os.environ
    cwd = os.getcwd()
    key = (environ.get("PIVOT_ROOT"), environ.get("DVC_ROOT"), cwd, targets, names, bool(deps))
    entry = _MEMO.get(key)
    if entry is None or not entry.fresh():
        entry = _compute(_root(), cwd, tuple(targets), names, bool(deps))
        _MEMO[key] = entry
    return pickle.loads(entry.frozen)  # a fresh copy, faster than deepcopy


class _Entry:
    """A result (pickled, so each call unpickles its own copy) and the
    signatures of the files it was made from."""

    __slots__ = ("frozen", "inputs")

    def __init__(self, result: dict[str, Any], inputs: tuple[tuple[str, Any], ...]) -> None:
        self.frozen = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        self.inputs = inputs  # (absolute path, signature or None)

    def fresh(self) -> bool:
        from pivot.signature import file_signature

        for path, signature in self.inputs:
            if file_signature(path) != signature:
                return False
        return True


_MEMO: dict[tuple, _Entry] = {}


def _root() -> str:
    for variable in ("PIVOT_ROOT", "DVC_ROOT"):
        value = os.environ.get(variable)
        if value and os.path.isdir(value):
            return os.path.realpath(value)
    from pathlib import Path

    from pivot.project import find_root

    return str(find_root(Path.cwd()))


def _compute(root: str, cwd: str, targets: tuple[str, ...], stages: tuple[str, ...] | None,
             deps: bool) -> _Entry:
    from pathlib import Path

    from pivot.errors import PivotError
    from pivot.frontends import load_pipeline
    from pivot.project import Project
    from pivot.reports.states import DiskState, collect_params
    from pivot.signature import file_signature
    from pivot.state.params import ParamsReader

    project = Project(root=Path(root), cwd=Path(cwd))
    pipeline = load_pipeline(project)
    # parsed files are remembered in .pivot/ (when it exists), so a warm call need not import YAML
    memo = project.state_dir if project.state_dir.is_dir() else None
    state = DiskState(project, pipeline=pipeline, reader=ParamsReader(project.root, memo))
    results = collect_params(state, project, targets, stages, deps)
    for result in results.values():
        if result.error is not None:
            raise PivotError(result.error)
    consulted = [*pipeline.sources, *results, "params.yaml"]
    inputs = tuple((path, file_signature(path)) for path in dict.fromkeys(f"{root}/{p}" for p in consulted))
    start = os.path.relpath(cwd, root)
    merged = merge_files({os.path.relpath(path, start): result.data for path, result in results.items()})
    return _Entry(merged, inputs)


def merge_files(files: dict[str, Any]) -> dict[str, Any]:
    """DVC's merge of several files' params: top-level keys side by side, a
    key found in more than one file prefixed with ``file:``."""
    counts = Counter(key for data in files.values() for key in data)
    merged: dict[str, Any] = {}
    for path, data in files.items():
        merged.update({(key if counts[key] == 1 else f"{path}:{key}"): value for key, value in data.items()})
    return merged
