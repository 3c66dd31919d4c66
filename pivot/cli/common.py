"""Helpers shared by the command modules: finding the project, loading the
pipeline, printing JSON."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence

import click

from pivot.ir import Pipeline
from pivot.project import Project


def project() -> Project:
    """The project for the current directory (after ``-C``)."""
    return Project.discover()


def load(proj: Project, targets: Sequence[str] = ()) -> Pipeline:
    """Every pipeline under the project root, as one IR."""
    from pivot.frontends import load_pipeline

    return load_pipeline(proj, targets)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def targets_argument() -> Any:
    return click.argument("targets", nargs=-1)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"ERROR: {message}", err=True)
    sys.exit(code)
