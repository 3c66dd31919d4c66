"""``pivot export``: write the loaded pipeline as a Pivotfile or a dvc.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pivot.cli import common

FORMATS = {"pivotfile": "Pivotfile", "dvc": "dvc.yaml"}


@click.command("export")
@click.option("--to", "fmt", type=click.Choice(sorted(FORMATS)), required=True, help="The format to write.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
    help="Write to FILE instead of stdout (paths are made relative to its directory).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite FILE if it exists.")
@common.targets_argument()
def command(fmt: str, output: str | None, force: bool, targets: tuple[str, ...]) -> None:
    """Write the pipeline (or the TARGETS and their upstream stages) in another
    format; foreach, matrix and wildcard stages are written out expanded."""
    from pivot import targets as target_selection
    from pivot.backends import export

    proj = common.project()
    pipeline = common.load(proj, targets)
    chosen = {stage.address for stage in target_selection.select(pipeline, proj, targets)}
    stages = [stage for stage in pipeline.stages if stage.address in chosen]
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

