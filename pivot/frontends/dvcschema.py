"""DVC's dvc.yaml schema (``dvc/schema.py``), checked on the raw YAML.

DVC validates before interpolating, so ``frozen: ${x}`` is an error and
deps/outs must be literal lists.  Messages follow voluptuous' wording:
``'dvc.yaml' validation failed: extra keys not allowed, in stages -> build
-> outz, line 7``.
"""

from __future__ import annotations

from typing import Any, Callable

from pivot.errors import PipelineError
from pivot.yaml12 import Document

Path = tuple[Any, ...]
Check = Callable[[Any, Path], None]

TOP_LEVEL_KEYS = ("stages", "vars", "params", "metrics", "plots", "artifacts", "datasets")
ANNOTATION = {"desc": str, "type": str, "labels": [str], "meta": object}
OUT_FLAGS = {**ANNOTATION, "cache": bool, "persist": bool, "checkpoint": bool, "remote": str, "push": bool}
PLOT_PROPS = {
    "template": str,
    "x": str,
    "y": str,
    "x_label": str,
    "y_label": str,
    "title": str,
    "header": bool,
}
PLOT_FLAGS = {**OUT_FLAGS, **PLOT_PROPS}
STAGE_KEYS = (
    "cmd", "wdir", "deps", "params", "vars", "frozen", "meta", "desc",
    "always_changed", "outs", "metrics", "plots", "matrix",
)  # fmt: skip


class SchemaError(Exception):
    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def validate(data: Any, relpath: str, document: Document) -> None:
    """Raise PipelineError naming the key path and line of the first violation."""
    try:
        _top(data)
    except SchemaError as exc:
        where = ""
        if exc.path:
            where = ", in " + " -> ".join(str(p) for p in exc.path)
            line = document.line_of(*exc.path)
            if line:
                where += f", line {line}"
        raise PipelineError(f"'{relpath}' validation failed: {exc.message}{where}") from None


def _top(data: Any) -> None:
    if not isinstance(data, dict):
        raise SchemaError("expected a dictionary", ())
    for key, value in data.items():
        path = (key,)
        if key not in TOP_LEVEL_KEYS:
            raise SchemaError("extra keys not allowed", path)
        if key == "stages":
            _mapping(value, path)
            for name, stage in value.items():
                if not isinstance(name, str):
                    raise SchemaError("extra keys not allowed", path + (name,))
                _stage_or_foreach(stage, path + (name,))
        elif key == "vars":
            _vars(value, path)
        elif key in ("params", "metrics"):
            _list_of(value, path, _str)
        elif key == "plots":
            _list_of(value, path, _top_plot)
        elif key == "artifacts":
            _mapping(value, path)
            for name, artifact in value.items():
                _artifact(artifact, path + (name,))


def _stage_or_foreach(stage: Any, path: Path) -> None:
    if isinstance(stage, dict) and ("foreach" in stage or "do" in stage):
        for key in stage:
            if key not in ("foreach", "do"):
                raise SchemaError("extra keys not allowed", path + (key,))
        for key in ("foreach", "do"):
            if key not in stage:
                raise SchemaError("required key not provided", path + (key,))
        if not isinstance(stage["foreach"], (dict, list, str)):
            raise SchemaError("expected dict", path + ("foreach",))
        _stage(stage["do"], path + ("do",))
        return
    _stage(stage, path)


def _stage(stage: Any, path: Path) -> None:
    _mapping(stage, path)
    for key, value in stage.items():
        here = path + (key,)
        if key not in STAGE_KEYS:
            raise SchemaError("extra keys not allowed", here)
        if key == "cmd":
            if not isinstance(value, (str, list)):
                raise SchemaError("expected str or list", here)
        elif key in ("wdir", "desc"):
            _str(value, here)
        elif key in ("frozen", "always_changed"):
            _bool(value, here)
        elif key == "deps":
            _list_of(value, here, _str)
        elif key == "params":
            _list_of(value, here, _params_entry)
        elif key == "vars":
            _vars(value, here)
        elif key in ("outs", "metrics"):
            _list_of(value, here, lambda v, p: _out_entry(v, p, OUT_FLAGS, allow_list=False))
        elif key == "plots":
            _list_of(value, here, lambda v, p: _out_entry(v, p, PLOT_FLAGS, allow_list=True))
        elif key == "matrix":
            _mapping(value, here)
            for axis, values in value.items():
                if not isinstance(axis, str):
                    raise SchemaError("extra keys not allowed", here + (axis,))
                if not isinstance(values, (str, list)):
                    raise SchemaError("expected str or list", here + (axis,))
    if "cmd" not in stage:
        raise SchemaError("required key not provided", path + ("cmd",))


def _mapping(value: Any, path: Path) -> None:
    if not isinstance(value, dict):
        raise SchemaError("expected a dictionary", path)


def _list_of(value: Any, path: Path, check: Check) -> None:
    if not isinstance(value, list):
        raise SchemaError("expected a list", path)
    for index, item in enumerate(value):
        check(item, path + (index,))


def _str(value: Any, path: Path) -> None:
    if not isinstance(value, str):
        raise SchemaError("expected str", path)


def _bool(value: Any, path: Path) -> None:
    if not isinstance(value, bool):
        raise SchemaError("expected bool", path)


def _vars(value: Any, path: Path) -> None:
    def entry(item: Any, here: Path) -> None:
        if not isinstance(item, (str, dict)):
            raise SchemaError("expected str or dict", here)

    _list_of(value, path, entry)


def _params_entry(value: Any, path: Path) -> None:
    if not isinstance(value, (str, dict)):
        raise SchemaError("expected str or dict", path)


def _out_entry(value: Any, path: Path, flags: dict[str, Any], *, allow_list: bool) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, dict):
        raise SchemaError("expected str or dict", path)
    for out_path, options in value.items():
        here = path + (out_path,)
        if not isinstance(out_path, str):
            raise SchemaError("extra keys not allowed", here)
        if allow_list and isinstance(options, list):
            for index, item in enumerate(options):
                _flags(item, here + (index,), flags)
        else:
            _flags(options, here, flags)


def _flags(options: Any, path: Path, allowed: dict[str, Any]) -> None:
    _mapping(options, path)
    for key, value in options.items():
        here = path + (key,)
        if key not in allowed:
            raise SchemaError("extra keys not allowed", here)
        _typed(value, allowed[key], here)


def _typed(value: Any, expected: Any, path: Path) -> None:
    if expected is object:
        return
    if expected is bool:
        _bool(value, path)
    elif expected is str:
        _str(value, path)
    elif isinstance(expected, list):
        _list_of(value, path, lambda v, p: _typed(v, expected[0], p))


def _top_plot(value: Any, path: Path) -> None:
    if isinstance(value, str):
        return
    _mapping(value, path)
    for name, definition in value.items():
        if definition is None:
            continue
        here = path + (name,)
        _mapping(definition, here)
        for key in definition:
            if key not in ("x", "y", "x_label", "y_label", "title", "template"):
                raise SchemaError("extra keys not allowed", here + (key,))


def _artifact(value: Any, path: Path) -> None:
    _mapping(value, path)
    if "path" not in value:
        raise SchemaError("required key not provided", path + ("path",))
    for key, item in value.items():
        if key == "path":
            _str(item, path + (key,))
        elif key in ANNOTATION:
            _typed(item, ANNOTATION[key], path + (key,))
        else:
            raise SchemaError("extra keys not allowed", path + (key,))
