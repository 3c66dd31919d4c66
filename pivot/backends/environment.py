"""The environment every stage command sees, whoever runs it."""

from __future__ import annotations

from pathlib import Path

from pivot.ir import Stage


def stage_env(root: Path, stage: Stage) -> dict[str, str]:
    """Variables added to the inherited environment of a stage's commands.

    ``DVC_ROOT``/``DVC_STAGE`` are set too, so scripts written for DVC work.
    """
    return env_for(str(root), stage.address)


def env_for(root: str, address: str) -> dict[str, str]:
    """``stage_env`` from the root and the address alone (the Ninja rule
    writes it once, with Ninja variables in their place)."""
    return {
        "PIVOT_ROOT": root,
        "PIVOT_STAGE": address,
        "DVC_ROOT": root,
        "DVC_STAGE": address,
    }
