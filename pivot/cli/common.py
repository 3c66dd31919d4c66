"""Helpers shared by the command modules: finding the project, loading the
pipeline, printing JSON."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import click

from pivot.ir import Pipeline
from pivot.project import Project

if TYPE_CHECKING:
    from pivot.optimizer import Plan
    from pivot.state import State


def project() -> Project:
    """The project for the current directory (after ``-C``)."""
    return Project.discover()


def load(proj: Project, targets: Sequence[str] = ()) -> Pipeline:
    """Every pipeline under the project root, as one IR."""
    from pivot.frontends import load_pipeline

    with _kept_for_the_command():
        return load_pipeline(proj, targets)


@contextmanager
def _kept_for_the_command() -> Iterator[None]:
    """What the block makes lives as long as the command (a pipeline, a
    plan): keep the cyclic collector from walking its objects (at 20,000
    stages, a million) again and again.  They are frozen before the
    collector is back on, or its first pass would walk them all."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def plan_selected(proj: Project, state: "State", targets: Sequence[str], *, force: bool = False,
                  downstream: bool = False, single_item: bool = False, printed_only: bool = False,
                  **options: bool) -> "tuple[Pipeline | None, Plan]":
    """The plan for TARGETS (every stage without), and the pipeline it was
    made from.  The whole pipeline, settled, is recalled without loading it:
    then the pipeline is None, and the plan has no work -- unless
    ``printed_only`` (the caller prints the plan and runs nothing), when a
    plan with stages to run is recalled too."""
    from pivot import optimizer
    from pivot import targets as targets_mod
    from pivot.frontends import cached_identity

    if not targets and not force:
        printed = printed_only and options.get("run_cache", True)
        settled = optimizer.recall_settled(state, cached_identity(proj), printed_only=printed,
                                           explained=options.get("explain", False))
        if settled is not None:
            return None, settled
    pipeline = load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, downstream=downstream, single_item=single_item)
    with _kept_for_the_command():
        plan = optimizer.make_plan(pipeline, stages, state, force=force, printed_only=printed_only, **options)
    return pipeline, plan


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def targets_argument() -> Any:
    return click.argument("targets", nargs=-1)


def remote_options(f: Any) -> Any:
    """``-r/--remote NAME`` and ``--no-remote``: which remote plans may restore from."""
    f = click.option("--no-remote", is_flag=True, help="Plan and run locally, without the default remote.")(f)
    return click.option("-r", "--remote", "remote_name", metavar="NAME",
                        help="Restore from remote NAME (default: the default remote, if one is set).")(f)


@contextmanager
def remote_for_plans(state: Any, proj: Project, name: str | None, *, enabled: bool = True) -> Iterator[None]:
    """Attach the remote to ``state`` for the block (``state.remote``), and
    say on stderr when it could not be used, then or while planning."""
    configured = any((proj.state_dir / name).is_file() for name in ("config", "config.local"))
    if not enabled or (name is None and not configured):  # no remote: no import cost either
        yield
        return
    from pivot.state.notices import warn

    try:  # imported only when used: the remote package pulls in fsspec
        from pivot.remote.index import attach
    except ImportError as exc:
        warn(f"remotes are unavailable ({exc}); planning without them")
        yield
        return
    problem = attach(state, proj, name)
    if problem is not None:
        warn(problem)
    try:
        yield
    finally:
        remote = state.remote
        if remote is not None and remote.problem is not None:
            warn(f"{remote.problem}; planned without remote '{remote.name}'")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"ERROR: {message}", err=True)
    sys.exit(code)
