"""Comparing two states, and the tables DVC prints for shows and diffs.

The diff is ``dvc/utils/diff.py``'s: lists become their Python ``str()``
(so ``[8, 4]`` compares and prints as the string ``"[8, 4]"``), nested
mappings are flattened to dotted keys (empty ones vanish), and a key
present on one side only has ``None`` on the other.  ``diff`` (new - old)
is given when both values are numbers (booleans count, as in Python).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pivot.reports.states import FileResult
from pivot.reports.tables import FILL, format_field, render_table

DEFAULT_PRECISION = 5  # digits DVC rounds metrics to in tables

Change = dict[str, Any]  # {"old": ..., "new": ..., "diff": ...}


def diff(old: Mapping[str, FileResult], new: Mapping[str, FileResult], *,
         with_unchanged: bool = False) -> dict[str, dict[str, Change]]:
    """``{path: {dotted key: {"old", "new"[, "diff"]}}}``, files in the new
    state's order (then files only the old one has), keys sorted.  A file
    that could not be read counts as empty."""
    result: dict[str, dict[str, Change]] = {}
    for path in dict.fromkeys([*new, *old]):
        changes = _diff_file(_data(old.get(path)), _data(new.get(path)), with_unchanged)
        if changes:
            result[path] = dict(sorted(changes.items()))
    return result


def _data(result: FileResult | None) -> Any:
    if result is None or result.error is not None:
        return {}
    return _format_lists(result.data) if isinstance(result.data, Mapping) else result.data


def _format_lists(data: Mapping[str, Any]) -> dict[str, Any]:
    """DVC's ``format_dict``: lists become their ``str()``."""
    return {
        key: _format_lists(value) if isinstance(value, Mapping) else str(value) if isinstance(value, list) else value
        for key, value in data.items()
    }


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b": value}``; empty mappings leave no key."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif not (isinstance(value, Mapping) and not value):
            flat[name] = value
    return flat


def _diff_file(old: Any, new: Any, with_unchanged: bool) -> dict[str, Change]:
    if isinstance(old, Mapping) or isinstance(new, Mapping):
        old_flat, new_flat = _flat_or_unparsed(old), _flat_or_unparsed(new)
        changes: dict[str, Change] = {}
        for key in dict.fromkeys([*old_flat, *new_flat]):
            change = _diff_values(old_flat.get(key), new_flat.get(key), with_unchanged)
            if change:
                changes[key] = change
        return changes
    change = _diff_values(old, new, with_unchanged)  # a file holding one value
    return {"": change} if change else {}


def _flat_or_unparsed(data: Any) -> dict[str, Any]:
    if not data:
        return {}
    if isinstance(data, Mapping):
        return flatten(data)
    return {"": "unable to parse"}


def _diff_values(old: Any, new: Any, with_unchanged: bool) -> Change:
    if not with_unchanged and old == new:
        return {}
    change: Change = {"old": old, "new": new}
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        change["diff"] = new - old
    return change


def diff_table(changes: Mapping[str, Mapping[str, Change]], *, title: str, a_label: str, b_label: str,
               show_change: bool = True, precision: int | None = None, no_path: bool = False,
               markdown: bool = False) -> str:
    """``dvc params diff`` / ``dvc metrics diff`` as a table."""
    headers = ["Path", title, a_label, b_label] + (["Change"] if show_change else [])
    rows: list[list[str]] = []
    for path, file_changes in changes.items():
        for key, change in sorted(file_changes.items()):
            row = [path, str(key), format_field(change.get("old"), precision),
                   format_field(change.get("new"), precision)]
            if show_change:
                row.append(format_field(change.get("diff"), precision))
            rows.append(row)
    if no_path:
        headers, rows = headers[1:], [row[1:] for row in rows]
    return render_table(headers, rows, markdown=markdown)


def metrics_table(results: Mapping[str, FileResult], *, precision: int | None = DEFAULT_PRECISION,
                  markdown: bool = False) -> str:
    """``dvc metrics show`` as a table: one row per file, one column per
    dotted key (sorted), ``-`` where a file has no such key."""
    rows: list[dict[str, str]] = []
    for path, result in results.items():
        data = result.data if result.error is None else {}
        flat = flatten(_format_lists(data)) if isinstance(data, Mapping) else {"": data}
        rows.append({"Path": path, **{key: format_field(value, precision) for key, value in flat.items()}})
    keys = sorted(dict.fromkeys(key for row in rows for key in row if key != "Path"))
    headers = ["Path", *keys]
    return render_table(headers, [[row.get(h, FILL) for h in headers] for row in rows], markdown=markdown)


def show_json(results: Mapping[str, FileResult]) -> dict[str, Any]:
    """``dvc metrics show --json``: the workspace under DVC's empty revision name."""
    return {"": {"data": {path: result.to_json() for path, result in results.items()}}}


def problems(results: Mapping[str, FileResult], kind: str, label: str) -> list[str]:
    """One warning per file that could not be read."""
    where = "" if label == "workspace" else f" in {label}"
    return [f"WARNING: cannot read {kind}{where}: {result.error}"
            for path, result in results.items() if result.error is not None]


def skipped_values(results: Mapping[str, FileResult]) -> list[str]:
    """Metrics values that are not numbers, strings or booleans are left out
    (DVC leaves them out silently); one warning per file says which."""
    return [f"WARNING: metrics file '{path}': left out values that are not numbers or strings: "
            + ", ".join(result.skipped)
            for path, result in results.items() if result.skipped]


def flat_values(data: Any) -> dict[str, Any]:
    """A metrics file's values as flat ``{dotted key: value}``."""
    if isinstance(data, Mapping):
        return flatten(_format_lists(data))
    return {"": data}

