"""Errors meant for the user: the CLI prints their message, never a traceback."""

from __future__ import annotations


class PivotError(Exception):
    """A problem with the user's input or workspace, with a readable message.

    The message should name the file, line, key or stage at fault.
    """

    exit_code = 1


class PipelineError(PivotError):
    """A pipeline definition is invalid (schema, interpolation, graph)."""


class StateError(PivotError):
    """The workspace or pivot's state cannot be read or written."""
