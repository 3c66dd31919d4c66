"""``pivot export``: write the loaded pipeline as a Pivotfile or a dvc.yaml."""

from __future__ import annotations

import dataclasses
import os
import posixpath
from pathlib import Path

import click

from pivot.cli import common
from pivot.ir import Stage
from pivot.project import Project

FORMATS = {"pivotfile": "Pivotfile", "dvc": "dvc.yaml"}


@click.command("export")
@click.option("--to", "fmt", type=click.Choice(sorted(FORMATS)), required=True, help="The format to write.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
    help="Write to FILE instead of stdout (paths are made relative to its directory).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option(
    "-s", "--single-item", is_flag=True,
    help="Only the targets, without upstream stages (`-s sub/dvc.yaml`: that file's stages alone).",
)
@common.targets_argument()
def command(fmt: str, output: str | None, force: bool, single_item: bool, targets: tuple[str, ...]) -> None:
    """Write the pipeline (or the TARGETS and their upstream stages) in another
    format; foreach, matrix and wildcard stages are written out expanded."""
    from pivot import targets as target_selection
    from pivot.backends import export

    proj = common.project()
    pipeline = common.load(proj, targets)
    chosen = {stage.address for stage in target_selection.select(pipeline, proj, targets, single_item=single_item)}
    # Data tracked by a `.dvc` file is no stage a pipeline file can hold:
    # its `.dvc` file stays as it is, beside the export.
    stages = [stage for stage in pipeline.stages if stage.address in chosen and not stage.file.endswith(".dvc")]
    base = proj.relpath(os.path.dirname(os.path.abspath(output)) if output else ".")
    files = ", ".join(dict.fromkeys(stage.file for stage in stages)) or "nothing"
    header = f"Exported by `pivot export --to {fmt}` from {files}."
    writer = export.to_pivotfile if fmt == "pivotfile" else export.to_dvcyaml
    text = writer(stages, base, header=header)
    if output is None:
        click.echo(text, nl=False)
        return
    from pivot import userfile

    userfile.write(Path(output), text, force=force)
    click.echo(f"Wrote {len(stages)} stage(s) to {output}.", err=True)
    written = proj.relpath(os.path.abspath(output))
    if posixpath.basename(written) in FORMATS.values() and not written.startswith("../"):
        carried = _carry_records(proj, stages, written)
        if carried:
            click.echo(f"Carried the records of {carried} stage(s) over to {output}.", err=True)


def _carry_records(proj: Project, stages: list[Stage], written: str) -> int:
    """Give the stages' lock records to the addresses they have in the
    pipeline file ``written`` (root-relative), so that putting it in place of
    the original leaves them as up to date as they were; returns how many.

    Records are keyed by address, and a stage's address names its file
    (``sub/dvc.yaml:train`` becomes ``sub/Pivotfile:train``).  A stage DVC
    ran and pivot never recorded is adopted from its ``dvc.lock`` first, as
    ``pivot run`` would: only a dvc.yaml beside the lock can adopt it.
    Records are copied, never moved: the original file still works until
    it is removed.
    """
    from pivot.state import State
    from pivot.state.record import persist_adoption
    from pivot.state.runlock import CacheLock

    moved = [stage for stage in stages if stage.file != written]
    has_dvc_lock = any(proj.abspath(posixpath.join(posixpath.dirname(s.file), "dvc.lock")).is_file() for s in moved)
    if not moved or not (proj.state_dir.is_dir() or has_dvc_lock):
        return 0
    carried = 0
    with CacheLock(proj), State.open(proj) as state:  # adopting caches outs: gc waits
        for stage in moved:
            address = stage.name if written in FORMATS.values() else f"{written}:{stage.name}"
            if state.locks.read(address) is not None:
                continue  # recorded there already (a record of its own wins)
            record = state.locks.read(stage.address)
            if record is None and has_dvc_lock:
                adopted = state.adopt(stage)
                if adopted is not None and persist_adoption(stage, state, adopted):
                    record = state.locks.read(stage.address)
            if record is None:
                continue
            if address != stage.address:
                state.locks.write(dataclasses.replace(record, address=address))
            carried += 1
    return carried
