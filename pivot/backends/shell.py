"""``pivot emit sh``: the plan as a bash script (``templates/plan.sh.j2``).

The script does what ``pivot run -j 1`` does, in the same order: prepare a
stage's outputs, run each command in its own shell (the one ``pivot run``
would choose, resolved when the script runs) started in the stage's wdir,
then record the stage with ``pivot commit``.  The project
root is found at run time (from the script's location, or the current
directory for a script printed to stdout), so the script is relocatable
together with the project.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pivot import __version__
from pivot.backends.environment import stage_env
from pivot.backends.escape import sh_quote
from pivot.ir import Pipeline, Stage

if TYPE_CHECKING:
    from pivot.optimizer import Decision

# stage_env is called with this root so that variables holding the root can
# be told apart and set from $PIVOT_ROOT at run time instead.
_ROOT_MARK = Path("/__pivot_root__")


@dataclass(frozen=True)
class ScriptStage:
    """One stage as the script handles it."""

    stage: Stage
    action: str  # "run", "checkout" or "restore-run"
    why: tuple[str, ...]
    removes: tuple[str, ...]  # outputs deleted first
    unprotects: tuple[str, ...]  # persist outputs made private and writable
    mkdirs: tuple[str, ...]  # parent directories of outputs
    exports: tuple[tuple[str, str], ...]  # stage variables, values shell-quoted


@dataclass(frozen=True)
class Script:
    """Everything the template needs."""

    version: str
    sources: tuple[str, ...]
    root_from_script: str | None  # script dir -> root, or None: root is the cwd
    pivot_command: str  # shell words invoking pivot when $PIVOT is unset
    shell_prefix: str  # shell code setting "$@" to the shell `pivot run` would use
    root_vars: tuple[str, ...]  # variables holding the project root
    record: bool
    stages: tuple[ScriptStage, ...]
    skipped: tuple[str, ...]  # selected but up to date or frozen


def plan_stage(decision: "Decision") -> ScriptStage:
    from pivot.optimizer import Action

    actions = {Action.CHECKOUT: "checkout", Action.RESTORE_RUN: "restore-run"}
    stage = decision.stage
    env = stage_env(_ROOT_MARK, stage)
    return ScriptStage(
        stage=stage,
        action=actions.get(decision.action, "run"),
        why=tuple(reason.describe() for reason in decision.reasons),
        removes=tuple(out.path for out in stage.outs if not out.persist),
        unprotects=tuple(out.path for out in stage.outs if out.persist),
        mkdirs=tuple(dict.fromkeys(d for d in (posixpath.dirname(o.path) for o in stage.outs) if d)),
        exports=tuple((k, sh_quote(v)) for k, v in env.items() if v != str(_ROOT_MARK)),
    )


def build_script(
    pipeline: Pipeline,
    decisions: Sequence["Decision"],
    *,
    pivot_command: str,
    root_from_script: str | None,
    record: bool = True,
) -> Script:
    """The script model for ``decisions`` (in run order): RUN, CHECKOUT and
    RESTORE_RUN stages become steps, the others are only named in a comment."""
    from pivot.backends.execute import shell_prefix_sh
    from pivot.optimizer import WORK_ACTIONS

    steps = [d for d in decisions if d.action in WORK_ACTIONS]
    skipped = [d.address for d in decisions if d.action not in WORK_ACTIONS]
    probe = pipeline.stages[0] if pipeline.stages else Stage("x", "x", "dvc.yaml", ".", ())
    root_vars = tuple(k for k, v in stage_env(_ROOT_MARK, probe).items() if v == str(_ROOT_MARK))
    return Script(
        version=__version__,
        sources=pipeline.sources,
        root_from_script=root_from_script,
        pivot_command=pivot_command,
        shell_prefix=shell_prefix_sh(),
        root_vars=root_vars,
        record=record,
        stages=tuple(plan_stage(d) for d in steps),
        skipped=tuple(skipped),
    )


def render_script(script: Script) -> str:
    from pivot.backends.templates import environment

    return environment().get_template("plan.sh.j2").render(s=script)
