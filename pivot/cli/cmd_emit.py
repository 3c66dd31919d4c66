"""``pivot emit sh|ninja``: the plan as a bash script or a Ninja file.

The ``ninja-*`` subcommands are hidden helpers that emitted Ninja files call
(see docs/emit.md); they are not meant to be typed by hand.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


def _write(path: Path, text: str, *, force: bool, executable: bool = False) -> None:
    """Write an emitted file: never over a file pivot did not emit without
    ``--force`` (a mistyped ``-o dvc.yaml``), atomically."""
    from pivot import userfile

    userfile.write(path, text, force=force, replaceable=userfile.emitted_by_pivot, executable=executable)


def _check_target(path: Path, force: bool) -> None:
    """Refuse a bad ``-o FILE`` before any work."""
    from pivot import userfile

    userfile.check_target(path, force=force, replaceable=userfile.emitted_by_pivot)


_FORCE_HELP = "Overwrite FILE even if pivot did not write it."


@command.command("sh", help="Print (or write with -o) a bash script running the plan of TARGETS.")
@common.targets_argument()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the script to FILE (executable).")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@click.option("--all", "all_stages", is_flag=True, help="Every selected stage, stale or not (as `run -f`).")
@click.option("--no-record", is_flag=True, help="Leave out the `pivot commit` after each stage.")
@click.option("--downstream", is_flag=True, help="Targets plus what depends on them (not their upstream).")
@click.option("-s", "--single-item", is_flag=True, help="Only the targets, without upstream stages.")
@click.option("--no-run-cache", is_flag=True, help="Run stages the run cache could restore (implied by --no-record).")
def sh(
    targets: tuple[str, ...],
    output: str | None,
    force: bool,
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
        _check_target(Path(output), force)
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
    for step in script.stages:
        if ":" in step.stage.name:  # any other name reads back as itself
            _check_addressable(pipeline, proj, step.stage.address)
    text = shell.render_script(script)
    if output:
        _write(Path(output), text, force=force, executable=True)
    else:
        click.echo(text, nl=False)


def _check_addressable(pipeline, proj, address: str) -> None:
    """Refuse a stage the script could not name to `pivot commit`: a ':' in
    a stage name reads as FILE:NAME on the command line."""
    from dataclasses import replace

    from pivot import targets as targets_mod
    from pivot.errors import PivotError

    try:  # the script calls pivot from the root
        named = targets_mod.resolve(pipeline, replace(proj, cwd=proj.root), address)
    except PivotError:
        named = []
    if named != [address]:
        raise PivotError(
            f"stage '{address}' cannot be named on pivot's command line (`pivot commit -- {address}` "
            "would not select it); rename it, or use `pivot run` or `pivot emit ninja`"
        )


@command.command("ninja", help="Write a Ninja file building every stage (default: build.ninja at the root).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the Ninja file to FILE.")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
def ninja_command(output: str | None, force: bool) -> None:
    from pivot import optimizer
    from pivot.backends import ninja, ninja_bridge
    from pivot.backends.bridge_files import BridgeFiles
    from pivot.state import State
    from pivot.state.record import persist_adoptions
    from pivot.state.runlock import CacheLock

    if output:
        _check_target(Path(output), force)
    proj = common.project()
    pipeline = common.load(proj)
    target = Path(os.path.abspath(output)) if output else proj.root / "build.ninja"
    if not output:
        _check_target(target, force)
    build_file = proj.relpath(target)
    missing = ninja_bridge.scan_missing(proj.root, pipeline)
    source_dirs = ninja_bridge.scan_source_dirs(proj.root, pipeline)
    with _one_line_errors("cannot write the Ninja bridge files"), BridgeFiles(proj.root) as files:
        with CacheLock(proj), State.open(proj) as state:
            plan = optimizer.make_plan(pipeline, pipeline.stages, state)
            persist_adoptions(plan.adopted, state)  # emitting writes: make dvc.lock adoptions stick
            # The plan decides which edges read a key file: it comes before the model.
            forced = ninja_bridge.forced_stages(plan.decisions)
            model = ninja.build_ninja(
                pipeline,
                build_file=build_file,
                pivot_command=_pivot_command(),
                source_dirs=source_dirs,
                missing=missing,
                forced=forced,
            )
            text = ninja.render_ninja(model)  # refuses unwritable paths before any bridge file is written
            ninja_bridge.write_listings(files, source_dirs)  # before the Ninja file, so that RELIST is older
            ninja_bridge.write_keys(files, forced)
            ninja_bridge.mark_fresh(files, model, plan.decisions, source_dirs, state)
        if missing:  # before the Ninja file, so that it is not newer
            ninja_bridge.write_probe(files, missing)
        # An output of the regenerate edge like the file: written last, newer than its inputs
        ninja_bridge.write_edge_script(files, model.edge_script)
    _write(Path(output) if output else target, text, force=force)
    with _one_line_errors("cannot prune the Ninja bridge files"), BridgeFiles(proj.root) as files:
        ninja_bridge.prune_bridge_files(files, model, source_dirs)


@contextmanager
def _one_line_errors(context: str) -> Iterator[None]:
    """An OSError becomes one line naming ``context`` and the file (Ninja and
    the script print it), never a traceback."""
    from pivot.errors import PivotError

    try:
        yield
    except OSError as exc:
        from pivot.errors import os_error_message

        raise PivotError(f"{context}: {os_error_message(exc)}") from None


def _stage(address: str):
    """The project, its pipeline and the stage at exactly ``address`` (no
    target resolution: emitted files name stages by address)."""
    proj = common.project()
    pipeline = common.load(proj)
    if address not in pipeline.by_address:
        from pivot.errors import PivotError

        raise PivotError(f"no stage '{address}' in the pipeline (emit the file again)")
    return proj, pipeline, pipeline.stage(address)


@command.command("sh-prepare", hidden=True)
@click.argument("address")
def sh_prepare(address: str) -> None:
    """Clear the outputs of the stage at ADDRESS before its commands run, as
    `pivot run` does (persist outputs made private and writable)."""
    from pivot.backends import ninja_bridge

    proj, _, stage = _stage(address)
    with _one_line_errors(f"stage '{address}'"):
        ninja_bridge.prepare_outputs(proj.root, stage)


@command.command("ninja-prepare", hidden=True)
@click.argument("address")
@click.option("--touch", "wrote", help="A stamp to touch when the stage writes its outputs.")
def ninja_prepare(address: str, wrote: str | None) -> None:
    """Exit 0 when the stage must run (outputs prepared), 3 when it has no
    commands to run (restored, re-recorded or up to date)."""
    from pivot.backends import ninja, ninja_bridge
    from pivot.backends.bridge_files import BridgeFiles
    from pivot.state import State
    from pivot.state.runlock import CacheLock

    proj, pipeline, stage = _stage(address)
    # it may restore from the cache: take the lock `pivot checkout` and gc take
    with _one_line_errors(f"stage '{address}'"), CacheLock(proj), State.open(proj) as state, \
            BridgeFiles(proj.root) as files:
        must_run = ninja_bridge.prepare_stage(files, stage, state, pipeline=pipeline,
                                              wrote=proj.relpath(wrote) if wrote else None)
    if not must_run:
        raise SystemExit(ninja.FRESH_EXIT)


@command.command("ninja-finish", hidden=True)
@click.argument("address")
def ninja_finish(address: str) -> None:
    """After the stage's commands: record it (as `pivot commit`) and settle
    its outputs' mtimes."""
    import time

    from pivot.backends import ninja_bridge
    from pivot.backends.bridge_files import BridgeFiles
    from pivot.state import State, audit
    from pivot.state.runlock import CacheLock

    proj, _, stage = _stage(address)
    # gc waits for us, we wait for gc
    with _one_line_errors(f"stage '{address}'"), CacheLock(proj), State.open(proj) as state, \
            BridgeFiles(proj.root) as files:
        ninja_bridge.finish_stage(files, stage, state)
    now = time.time()
    entry = audit.StageEntry(stage.address, audit.Outcome.COMMITTED, started=now, ended=now)
    audit.append_commit(proj, ["pivot", "emit", "ninja-finish", "--", stage.address], [entry])


@command.command("ninja-dirstamp", hidden=True)
@click.argument("directory")
@click.argument("stamp")
def ninja_dirstamp(directory: str, stamp: str) -> None:
    """Rewrite STAMP with DIRECTORY's content hash, only when it changed; when
    its entries differ from the Ninja file's listing, have the file rewritten."""
    from pivot.backends import ninja, ninja_bridge
    from pivot.backends.bridge_files import BridgeFiles
    from pivot.state import State

    proj = common.project()
    relpath = proj.relpath(directory)
    with _one_line_errors(f"directory '{relpath}'"), BridgeFiles(proj.root) as files:
        if ninja_bridge.listing_changed(files, relpath):
            files.touch(ninja.RELIST)  # the next `ninja` rewrites the file
        with State.open(proj) as state:
            ninja_bridge.write_dir_stamp(files, relpath, proj.relpath(stamp), state)
