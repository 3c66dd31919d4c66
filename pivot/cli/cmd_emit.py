"""``pivot emit sh|ninja``: the plan as a bash script or a Ninja file.

The ``ninja-*`` subcommands are hidden helpers that emitted Ninja files call
(see docs/emit.md); they are not meant to be typed by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pivot.cli import common


@click.group(help="Emit the plan as a shell script (sh) or a Ninja file (ninja).")
def command() -> None:
    pass


def _pivot_command() -> str:
    """How emitted files invoke this pivot: the interpreter running now (an
    absolute path, the one place one is unavoidable), ``-m pivot``."""
    from pivot.backends.escape import sh_quote

    return f"{sh_quote(sys.executable)} -m pivot"


def _check_parent(path: Path) -> None:
    """Refuse early an output file whose directory does not exist."""
    from pivot.errors import PivotError

    if not path.parent.is_dir():
        raise PivotError(f"cannot write '{path}': directory '{path.parent}' does not exist")


def _write_atomically(path: Path, text: str, *, executable: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.
    A missing parent directory is an error (as for a shell redirection)."""
    from pivot import atomic
    from pivot.errors import PivotError

    _check_parent(path)
    try:
        atomic.write_text(path, text, mode=0o777 if executable else 0o666)
    except OSError as exc:
        raise PivotError(f"cannot write '{path}': {exc.strerror or exc}") from None


@command.command("sh", help="Print (or write with -o) a bash script running the plan of TARGETS.")
@common.targets_argument()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the script to FILE (executable).")
@click.option("--all", "all_stages", is_flag=True, help="Every selected stage, stale or not (as `run -f`).")
@click.option("--no-record", is_flag=True, help="Leave out the `pivot commit` after each stage.")
@click.option("--downstream", is_flag=True, help="Targets plus what depends on them (not their upstream).")
@click.option("-s", "--single-item", is_flag=True, help="Only the targets, without upstream stages.")
@click.option("--no-run-cache", is_flag=True, help="Run stages the run cache could restore (implied by --no-record).")
def sh(
    targets: tuple[str, ...],
    output: str | None,
    all_stages: bool,
    no_record: bool,
    downstream: bool,
    single_item: bool,
    no_run_cache: bool,
) -> None:
    from pivot import optimizer
    from pivot import targets as targets_mod
    from pivot.backends import shell
    from pivot.state import State

    if output:
        _check_parent(Path(output))
    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, downstream=downstream, single_item=single_item)
    with State.open(proj, readonly=True) as state:
        # a run-cache restore writes a lock record: not in a script that records nothing
        use_run_cache = not (no_run_cache or no_record)
        plan = optimizer.make_plan(pipeline, stages, state, force=all_stages, run_cache=use_run_cache)

    root_from_script = None
    if output:
        script_dir = Path(os.path.abspath(output)).parent
        root_from_script = Path(os.path.relpath(proj.root, script_dir)).as_posix()
    script = shell.build_script(
        pipeline,
        plan.decisions,
        pivot_command=_pivot_command(),
        root_from_script=root_from_script,
        record=not no_record,
    )
    text = shell.render_script(script)
    if output:
        _write_atomically(Path(output), text, executable=True)
    else:
        click.echo(text, nl=False)


@command.command("ninja", help="Write a Ninja file building every stage (default: build.ninja at the root).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the Ninja file to FILE.")
def ninja_command(output: str | None) -> None:
    from pivot import optimizer
    from pivot.backends import ninja
    from pivot.state import State

    if output:
        _check_parent(Path(output))
    proj = common.project()
    pipeline = common.load(proj)
    target = Path(os.path.abspath(output)) if output else proj.root / "build.ninja"
    build_file = proj.relpath(target)
    missing = ninja.scan_missing(proj.root, pipeline)
    source_dirs = ninja.scan_source_dirs(proj.root, pipeline)
    model = ninja.build_ninja(
        pipeline,
        build_file=build_file,
        pivot_command=_pivot_command(),
        source_dirs=source_dirs,
        missing=missing,
    )
    text = ninja.render_ninja(model)
    ninja.write_listings(proj.root, source_dirs)  # before the Ninja file, so that RELIST is older
    with State.open(proj) as state:
        plan = optimizer.make_plan(pipeline, pipeline.stages, state)
        ninja.write_keys(proj.root, plan.decisions, state)
        ninja.mark_fresh(proj.root, model, plan.decisions, source_dirs, state)
    if missing:  # before the Ninja file, so that it is not newer
        ninja.write_probe(proj.root, missing)
    _write_atomically(Path(output) if output else target, text)
    ninja.prune_bridge_files(proj.root, model, source_dirs)


def _stage(address: str):
    proj = common.project()
    pipeline = common.load(proj)
    if address not in pipeline.by_address:
        from pivot.errors import PivotError

        raise PivotError(f"no stage '{address}' in the pipeline (re-run `pivot emit ninja`)")
    return proj, pipeline.stage(address)


@command.command("ninja-prepare", hidden=True)
@click.argument("address")
@click.option("--touch", "wrote", help="A stamp to touch when the stage writes its outputs.")
def ninja_prepare(address: str, wrote: str | None) -> None:
    """Exit 0 when the stage must run (outputs prepared), 3 when it is fresh."""
    from pivot.backends import ninja
    from pivot.state import State

    from pivot.state.runlock import CacheLock

    proj, stage = _stage(address)
    with CacheLock(proj), State.open(proj) as state:  # it may restore from the cache
        must_run = ninja.prepare_stage(proj.root, stage, state, wrote=Path(wrote).absolute() if wrote else None)
    if not must_run:
        raise SystemExit(ninja.FRESH_EXIT)


@command.command("ninja-finish", hidden=True)
@click.argument("address")
def ninja_finish(address: str) -> None:
    """After `pivot commit`: refresh the stage's output stamps."""
    from pivot.backends import ninja
    from pivot.state import State

    proj, stage = _stage(address)
    with State.open(proj) as state:
        ninja.write_out_stamps(proj.root, stage, state)


@command.command("ninja-dirstamp", hidden=True)
@click.argument("directory")
@click.argument("stamp")
def ninja_dirstamp(directory: str, stamp: str) -> None:
    """Rewrite STAMP with DIRECTORY's content hash, only when it changed; when
    its entries differ from the Ninja file's listing, have the file rewritten."""
    from pivot.backends import ninja
    from pivot.state import State

    proj = common.project()
    relpath = proj.relpath(directory)
    if ninja.listing_changed(proj.root, relpath):
        ninja.touch(proj.root / ninja.RELIST)  # the next `ninja` rewrites the file
    with State.open(proj) as state:
        ninja.write_dir_stamp(proj.root, relpath, Path(stamp).absolute(), state)
