"""Wildcard resolution edge cases."""

from __future__ import annotations

from pivot.frontends.pivotfile import load_pivotfile
from pivot.ir import Stage
from pivot.project import Project


def _load(ws, needed=()) -> list[Stage]:
    stages, _ = load_pivotfile(Project(ws.root, ws.root), "Pivotfile", needed)
    return stages


def test_absolute_input_path_does_not_hang(ws) -> None:
    source = ws.write("abs.txt", "x")
    ws.write("Pivotfile", f'rule r:\n    input: "{source}"\n    output: "o.txt"\n    shell: "cp {{input}} {{output}}"\n')
    (stage,) = _load(ws)
    assert [d.path for d in stage.deps] == [str(source)]
