"""The tables DVC prints: tabulate's ``plain`` and ``github`` formats as DVC
calls them (every cell a left-aligned string, ``-`` for missing values).

A column is as wide as its widest cell, and at least its header plus two;
plain rows are joined by two spaces and stripped at the right; Markdown
cells get one space each side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence

FILL = "-"
HEADER_PADDING = 2  # tabulate's MIN_PADDING


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, markdown: bool = False) -> str:
    """The table as text; empty when a plain table has no rows (DVC prints nothing)."""
    if not rows and not markdown:
        return ""
    widths = [len(h) + HEADER_PADDING for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    if markdown:
        lines = [_md_row(headers, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [_md_row(row, widths) for row in rows]
        return "\n".join(lines) + "\n\n"  # DVC adds a blank line after a Markdown table
    lines = [_plain_row(headers, widths)] + [_plain_row(row, widths) for row in rows]
    return "\n".join(lines) + "\n"


def _plain_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _md_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"


def format_field(value: Any, precision: int | None = None) -> str:
    """A value as DVC shows it in a table: floats rounded to ``precision``
    digits (when given and not 0), ``-`` for None, everything else ``str()``."""
    if value is None:
        return FILL
    return str(_rounded(value, precision))


def _rounded(value: Any, precision: int | None) -> Any:
    if isinstance(value, float) and precision:
        return round(value, precision)
    if isinstance(value, Mapping):
        return {k: _rounded(v, precision) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, precision) for v in value]
    return value
