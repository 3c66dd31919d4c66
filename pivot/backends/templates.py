"""The jinja2 environment the emitters render their templates with."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


@cache
def environment() -> "jinja2.Environment":
    """Templates from ``pivot.resources.template_dir()``, with the quoting
    filters; undefined names are errors, never empty strings."""
    import jinja2

    from pivot.backends.escape import register_filters
    from pivot.resources import template_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    register_filters(env)
    return env
