"""YAML 1.2 loading with PyYAML, in the dialect DVC reads (ruamel ``safe``).

PyYAML implements YAML 1.1, where ``yes``/``on`` are booleans, ``1e3`` is a
string, ``010`` is octal and ``1:30`` is sexagesimal.  DVC parses with
ruamel's 1.2 resolver, so ``${yes}`` renders ``yes`` and ``1e3`` renders
``1000.0``.  The loader below swaps in the 1.2 core-schema resolvers and
constructors (ruamel's regular expressions) on top of the C parser when
PyYAML was built with libyaml.  Duplicate mapping keys are errors, as in
ruamel.  Syntax errors become a PivotError with ``file:line:col``.

JSON, a subset of YAML 1.2, is parsed here too (:func:`load_json`), with
the json module as DVC does.  Data nested deeper than Python's recursion
limit allows (a params file 3,000 levels deep) is parsed again on a thread
with room for it (:func:`parse_deep`); deeper still, the error names the
file.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from pivot.errors import PivotError

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT = re.compile(
    r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_MERGE = re.compile(r"^(?:<<)$")
_TIMESTAMP = re.compile(
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    re.X,
)

_IMPLICIT: list[tuple[str, re.Pattern[str], str]] = [
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:merge", _MERGE, "<"),
    ("tag:yaml.org,2002:null", _NULL, "~nN"),
    ("tag:yaml.org,2002:timestamp", _TIMESTAMP, "0123456789"),
]


class Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader resolving plain scalars by the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if text[0] == "-" else 1
        if text[0] in "+-":
            text = text[1:]
        if text.startswith("0b"):
            return sign * int(text[2:], 2)
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        return sign * int(text)  # 1.2: a leading zero is still decimal

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = str(self.construct_scalar(node)).replace("_", "").lower()
        sign = -1.0 if text[0] == "-" else 1.0
        if text[0] in "+-":
            text = text[1:]
        if text == ".inf":
            return sign * float("inf")
        if text == ".nan":
            return float("nan")
        return sign * float(text)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                    except TypeError:
                        continue
                    if duplicate:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f'found duplicate key "{key}"',
                            key_node.start_mark,
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


for _tag, _regexp, _first in _IMPLICIT:
    for _ch in _first:
        Loader.yaml_implicit_resolvers.setdefault(_ch, []).append((_tag, _regexp))
    if _tag == "tag:yaml.org,2002:null":
        Loader.yaml_implicit_resolvers.setdefault("", []).append((_tag, _regexp))
Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
Loader.add_constructor("tag:yaml.org,2002:float", Loader.construct_yaml_float)


@dataclass(frozen=True)
class Document:
    """Parsed YAML plus the 1-based line of mapping keys near the top.

    ``lines[("stages", "train")]`` is the line where stage ``train`` is
    defined; keys are recorded down to ``depth`` levels.
    """

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def line_of(self, *path: Any) -> int | None:
        """Line of the deepest recorded key along ``path``."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


class YAMLSyntaxError(PivotError):
    """The text is not valid YAML."""


def load_text(text: str, filename: str) -> Any:
    """Parse ``text``; ``filename`` names it in errors."""
    return parse_deep(lambda: _load_data(text, filename), filename)


def load_file(path: str | Path, display_name: str | None = None) -> Any:
    """Parse the file at ``path``; errors name it as ``display_name``."""
    text = _read(path, display_name)
    return load_text(text, display_name or str(path))


def load_json(text: str, filename: str) -> Any:
    """Parse JSON ``text`` (``json.JSONDecodeError`` when invalid), however
    deeply nested, up to :data:`DEEP_RECURSION_LIMIT`."""
    import json

    return parse_deep(lambda: json.loads(text), filename)


# Room for deeply nested data: the parsers recurse once or a few times per
# level, in Python and in C; the thread's stack holds that many C frames.
DEEP_RECURSION_LIMIT = 60_000
DEEP_STACK_BYTES = 256 << 20
_deep_lock = threading.Lock()
_T = TypeVar("_T")


def parse_deep(parse: Callable[[], _T], filename: str) -> _T:
    """``parse()``; when it hits Python's recursion limit, ``parse()`` once
    more on a thread with a large stack and a raised limit (both restored
    after), and if that is still too deep, a PivotError naming ``filename``.
    Whatever else ``parse`` raises reaches the caller unchanged."""
    try:
        return parse()
    except RecursionError:
        pass
    outcome: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            outcome.append((True, parse()))
        except BaseException as exc:  # handed over to the calling thread
            outcome.append((False, exc))

    with _deep_lock:
        limit = sys.getrecursionlimit()
        try:
            stack = threading.stack_size(DEEP_STACK_BYTES)
        except (ValueError, RuntimeError):  # a platform without settable stacks
            raise _too_deep(filename) from None
        try:
            thread = threading.Thread(target=work, name="pivot-parse-deep", daemon=True)
            sys.setrecursionlimit(max(limit, DEEP_RECURSION_LIMIT))
            thread.start()
            thread.join()
        except RuntimeError:  # no memory for such a thread
            raise _too_deep(filename) from None
        finally:
            threading.stack_size(stack)
            sys.setrecursionlimit(limit)
    ok, value = outcome[0]
    if ok:
        return value
    if isinstance(value, RecursionError):
        raise _too_deep(filename)
    raise value


def _too_deep(filename: str) -> PivotError:
    return PivotError(f"'{filename}' is nested too deeply to read (lists or mappings tens of thousands of levels deep)")


def load_document_file(path: str | Path, display_name: str | None = None, *, depth: int = 3) -> Document:
    """Parse a file keeping key line numbers (see Document)."""
    name = display_name or str(path)
    return load_document(_read(path, name), name, depth=depth)


def load_document(text: str, filename: str, *, depth: int = 3) -> Document:
    return parse_deep(lambda: _load_document(text, filename, depth), filename)


def _load_document(text: str, filename: str, depth: int) -> Document:
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None)
        if "*" in text:
            _reject_recursion(node, filename)
        lines: dict[tuple[Any, ...], int] = {}
        _record_lines(node, (), depth, lines)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, filename, text) from None
    finally:
        loader.dispose()
    return Document(data, lines)


def _load_data(text: str, filename: str) -> Any:
    if "*" not in text:  # no alias, no cycle: the fast path
        try:
            return yaml.load(text, Loader=Loader)  # noqa: S506 (Loader is a safe loader)
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, filename, text) from None
    return _load_document(text, filename, 0).data  # not load_document: parse_deep never nests


def _reject_recursion(root: yaml.Node, filename: str) -> None:
    """A PivotError if an alias refers to a node that contains it (``a: &x
    {b: *x}``): such data has no end and would break everything using it."""
    on_path: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative: a deep document must not hit the recursion limit here
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            done.add(id(node))
            continue
        if id(node) in on_path:
            line = node.start_mark.line + 1
            raise PivotError(
                f"{filename}:{line}: recursive alias: the anchor defined here is used inside itself"
            )
        if id(node) in done or isinstance(node, yaml.ScalarNode):
            continue
        on_path.add(id(node))
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = list(node.value)
        stack.extend((child, False) for child in reversed(children))


def _read(path: str | Path, display_name: str | None) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PivotError(f"'{display_name or path}' does not exist") from None
    except IsADirectoryError:
        raise PivotError(f"'{display_name or path}' is a directory") from None
    except UnicodeDecodeError as exc:
        raise PivotError(f"'{display_name or path}' is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise PivotError(f"cannot read '{display_name or path}': {exc.strerror}") from None


def _record_lines(node: yaml.Node, prefix: tuple[Any, ...], depth: int, out: dict) -> None:
    if depth <= 0 or not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            path = prefix + (key_node.value,)
            out[path] = key_node.start_mark.line + 1
            _record_lines(value_node, path, depth - 1, out)


def _syntax_error(exc: yaml.YAMLError, filename: str, text: str) -> YAMLSyntaxError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context else problem
    hint = " (possible merge conflicts)" if "<<<<<<<" in text else ""
    return YAMLSyntaxError(f"{where}: '{filename}' is invalid{hint}: {detail}")
