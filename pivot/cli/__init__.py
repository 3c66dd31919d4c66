"""The ``pivot`` command line.

Commands live in their own modules and are imported only when invoked, so
``pivot --help`` stays fast and imports nothing heavy.  This package only
parses arguments and prints; the work happens below it.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from pivot import __version__
from pivot.errors import os_error_message, shown_path as _shown_path

# name -> (module, short help).  The help is here so --help needs no import.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("pivot.cli.cmd_list", "List the stages of every pipeline."),
    "dag": ("pivot.cli.cmd_dag", "Show the stage graph (text, dot or mermaid)."),
    "status": ("pivot.cli.cmd_status", "Show stale stages and why (DVC's status shape with --json)."),
    "plan": ("pivot.cli.cmd_plan", "Dry run: what `pivot run` would do, in order, and why."),
    "why": ("pivot.cli.cmd_why", "Explain in full why one stage would run."),
    "commit": ("pivot.cli.cmd_commit", "Record the current state of stages as up to date."),
    "run": ("pivot.cli.cmd_run", "Run the stale stages, in parallel."),
    "checkout": ("pivot.cli.cmd_checkout", "Restore stage outputs from the cache."),
    "log": ("pivot.cli.cmd_log", "Show recent runs: what ran, why, how long."),
    "emit": ("pivot.cli.cmd_emit", "Emit the plan as a shell script or a Ninja file."),
    "export": ("pivot.cli.cmd_export", "Write the loaded pipeline as a Pivotfile or dvc.yaml."),
    "gc": ("pivot.cli.cmd_gc", "Remove cache objects nothing refers to."),
    "remote": ("pivot.cli.cmd_remote", "Configure remotes (shared storage for the cache)."),
    "push": ("pivot.cli.cmd_push", "Upload cached outputs and run-cache entries to a remote."),
    "fetch": ("pivot.cli.cmd_fetch", "Download cached outputs from a remote into the cache."),
    "pull": ("pivot.cli.cmd_pull", "Fetch from a remote and restore the outputs."),
    "params": ("pivot.cli.cmd_params", "Compare params between runs, git revisions and the workspace."),
    "metrics": ("pivot.cli.cmd_metrics", "Show, compare and follow metrics (show, diff, history)."),
}


RECURSION_MESSAGE = "input nested too deeply or referring to itself (recursion limit reached)"


class UserError(click.ClickException):
    """A PivotError on its way out: one line on stderr, no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:  # type: ignore[override]
        click.echo(f"ERROR: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from pivot import background
        from pivot.errors import PivotError

        try:
            return super().invoke(ctx)
        except PivotError as exc:
            raise UserError(str(exc), exc.exit_code) from None
        except RecursionError:  # last guard: e.g. self-referencing data that slipped through
            raise UserError(RECURSION_MESSAGE) from None
        except OSError as exc:  # last guard: a full disk, a read-only project, a directory in a file's place
            if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
                raise
            raise UserError(os_error_message(exc)) from None
        except Exception as exc:
            message = sqlite_error_message(exc)
            if message is None:
                raise
            raise UserError(message) from None
        finally:
            background.wait()  # what the command's children write is there for the next command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _) in COMMANDS.items() if _module_exists(module)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, short_help = COMMANDS[name]
        if not _module_exists(module_name):
            return None
        module = importlib.import_module(module_name)
        command: click.Command = module.command
        command.short_help = command.short_help or short_help
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def sqlite_error_message(exc: BaseException) -> str | None:
    """pivot's only SQLite database is the stat cache: name it.  None when
    ``exc`` is not an SQLite error (sqlite3 is imported only when used)."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None or not isinstance(exc, sqlite3.Error):
        return None
    try:
        from pivot.project import Project

        path = _shown_path(str(Project.discover().state_dir / "state.db"))
    except OSError:
        path = "'.pivot/state.db'"
    return f"{path}: {exc}"


def _module_exists(module_name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False),
    help="Run as if pivot was started in DIRECTORY.",
    metavar="DIRECTORY",
)
@click.version_option(__version__, prog_name="pivot")
def cli(directory: str | None) -> None:
    """pivot: a rule compiler for data pipelines (dvc.yaml and Pivotfile)."""
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise click.UsageError(f"cannot change to directory '{directory}': {exc.strerror}")


def main() -> None:
    """Entry point: user errors print one message and exit non-zero."""
    from pivot.errors import PivotError

    try:
        cli.main(standalone_mode=False, prog_name="pivot")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except PivotError as exc:  # raised outside a command (rare)
        click.echo(f"ERROR: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    except RecursionError:
        click.echo(f"ERROR: {RECURSION_MESSAGE}", err=True)
        sys.exit(1)
    except OSError as exc:  # raised outside a command: the -C directory, writing the output
        if exc.errno == errno.EPIPE:
            sys.exit(141)
        click.echo(f"ERROR: {os_error_message(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:
        message = sqlite_error_message(exc)
        if message is None:
            raise
        click.echo(f"ERROR: {message}", err=True)
        sys.exit(1)
