"""``pivot emit sh``: the plan as a bash script (``templates/plan.sh.j2``).

The script does what ``pivot run -j 1`` does, in the same order, for every
action of the plan: for a stage to run, clear its outputs (``pivot emit
sh-prepare``, which keeps every removal inside the project), run each command
in its own shell (the one ``pivot run`` would choose, resolved when the
script runs) started in the stage's wdir, then record the stage with
``pivot commit``; restores and frozen stages go through ``pivot run
--single-item``, so that they happen exactly as under ``pivot run``.  Stage addresses always follow ``--``.  The project
root is found at run time (from the script's location, or the current
directory for a script printed to stdout), so the script is relocatable
together with the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence, assert_never

from pivot import __version__
from pivot.backends.environment import stage_env
from pivot.backends.escape import sh_quote
from pivot.ir import Pipeline, Stage
from pivot.optimizer import Action, Decision

# stage_env is called with this root so that variables holding the root can
# be told apart and set from $PIVOT_ROOT at run time instead.
_ROOT_MARK = Path("/__pivot_root__")


# What the script does for a stage, one kind per Action that has work.
StepKind = Literal["run", "checkout", "restore-run", "record-frozen"]


@dataclass(frozen=True)
class ScriptStage:
    """One stage as the script handles it."""

    stage: Stage
    kind: StepKind
    why: tuple[str, ...]
    outs: tuple[str, ...]  # output paths (a frozen stage's must exist)
    exports: tuple[tuple[str, str], ...]  # stage variables, values shell-quoted


@dataclass(frozen=True)
class Script:
    """Everything the template needs."""

    version: str
    sources: tuple[str, ...]
    root_from_script: str | None  # script dir -> root, or None: root is the cwd
    pivot_command: str  # shell words invoking pivot when $PIVOT is unset
    shell_prefix: str  # shell code setting "$@" to the shell `pivot run` would use
    long_command: int  # commands longer than this run from a file (execute.LONG_COMMAND)
    root_vars: tuple[str, ...]  # variables holding the project root
    record: bool
    stages: tuple[ScriptStage, ...]
    skipped: tuple[str, ...]  # selected but up to date or frozen


def step_kind(action: Action) -> StepKind | None:
    """What the script does for a stage the plan gives ``action`` (None:
    nothing, the stage is only named in a comment).  Every action is
    listed: a new one fails here until the script knows what to do."""
    match action:
        case Action.RUN:
            return "run"
        case Action.CHECKOUT:
            return "checkout"
        case Action.RESTORE_RUN:
            return "restore-run"
        case Action.RECORD_FROZEN:
            return "record-frozen"  # re-record the outputs as they are; never run the command
        case Action.UP_TO_DATE | Action.FROZEN:
            return None
    assert_never(action)


def plan_stage(decision: Decision, kind: StepKind) -> ScriptStage:
    stage = decision.stage
    env = stage_env(_ROOT_MARK, stage)
    return ScriptStage(
        stage=stage,
        kind=kind,
        why=tuple(reason.describe() for reason in decision.reasons),
        outs=tuple(out.path for out in stage.outs),
        exports=tuple((k, sh_quote(v)) for k, v in env.items() if v != str(_ROOT_MARK)),
    )


def build_script(
    pipeline: Pipeline,
    decisions: Sequence[Decision],
    *,
    pivot_command: str,
    root_from_script: str | None,
    record: bool = True,
) -> Script:
    """The script model for ``decisions`` (in run order): stages with work
    become steps, the others are only named in a comment."""
    from pivot.backends.execute import LONG_COMMAND, shell_prefix_sh

    steps: list[ScriptStage] = []
    skipped: list[str] = []
    for decision in decisions:
        kind = step_kind(decision.action)
        if kind is None:
            skipped.append(decision.address)
        else:
            steps.append(plan_stage(decision, kind))
    probe = pipeline.stages[0] if pipeline.stages else Stage("x", "x", "dvc.yaml", ".", ())
    root_vars = tuple(k for k, v in stage_env(_ROOT_MARK, probe).items() if v == str(_ROOT_MARK))
    return Script(
        version=__version__,
        sources=pipeline.sources,
        root_from_script=root_from_script,
        pivot_command=pivot_command,
        shell_prefix=shell_prefix_sh(),
        long_command=LONG_COMMAND,
        root_vars=root_vars,
        record=record,
        stages=tuple(steps),
        skipped=tuple(skipped),
    )


def _unknown_step(kind: object) -> str:
    raise AssertionError(f"plan.sh.j2 has no branch for step kind {kind!r}")


def render_script(script: Script) -> str:
    from pivot.backends.templates import environment

    return environment().get_template("plan.sh.j2").render(s=script, unknown_step=_unknown_step)
