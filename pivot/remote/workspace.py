"""Putting pulled outputs into the workspace.

The one place ``pivot pull`` restores outputs through, so that when pivot
gets a single home for restoring (``pivot/state/restore.py``) only this
function changes.  Every output path is checked by ``writable_path`` first:
lock records come from a clone and are not trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from pivot.containment import writable_path

if TYPE_CHECKING:
    from pivot.backends.outputs import RestoreReport
    from pivot.ir import Stage
    from pivot.state import State


def restore_outputs(stages: Sequence["Stage"], state: "State") -> list[tuple["Stage", "RestoreReport"]]:
    """Bring the recorded, cached outputs of ``stages`` back from the cache."""
    from pivot.backends import outputs

    reports = []
    for stage in stages:
        for out in stage.outs:
            writable_path(state.project.root, out.path)
        reports.append((stage, outputs.restore(stage, state)))
    return reports
