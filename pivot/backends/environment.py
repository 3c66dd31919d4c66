"""The environment every stage command sees, whoever runs it."""

from __future__ import annotations

from pathlib import Path

from pivot.ir import Stage


def stage_env(root: Path, stage: Stage) -> dict[str, str]:
    """Variables added to the inherited environment of a stage's commands.

    ``DVC_ROOT``/``DVC_STAGE`` are set too, so scripts written for DVC work.
    """
    return {
        "PIVOT_ROOT": str(root),
        "PIVOT_STAGE": stage.address,
        "DVC_ROOT": str(root),
        "DVC_STAGE": stage.address,
    }
