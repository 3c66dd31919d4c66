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


def _write_atomically(path: Path, text: str, *, executable: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    import tempfile

    from pivot.errors import PivotError

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        mode = 0o777 if executable else 0o666
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PivotError(f"cannot write '{path}': {exc.strerror or exc}") from None


@command.command("sh", help="Print (or write with -o) a bash script running the plan of TARGETS.")
@common.targets_argument()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the script to FILE (executable).")
@click.option("--all", "all_stages", is_flag=True, help="Every selected stage, stale or not (as `run -f`).")
@click.option("--no-record", is_flag=True, help="Leave out the `pivot commit` after each stage.")
@click.option("--downstream", is_flag=True, help="Targets plus what depends on them (not their upstream).")
@click.option("-s", "--single-item", is_flag=True, help="Only the targets, without upstream stages.")
def sh(
    targets: tuple[str, ...],
    output: str | None,
    all_stages: bool,
    no_record: bool,
    downstream: bool,
    single_item: bool,
) -> None:
    from pivot import optimizer
    from pivot import targets as targets_mod
    from pivot.backends import shell
    from pivot.state import State

    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, downstream=downstream, single_item=single_item)
    with State.open(proj, readonly=True) as state:
        plan = optimizer.make_plan(pipeline, stages, state, force=all_stages)

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
