"""``${...}`` interpolation exactly as DVC 3.x does it.

The context is a plain nested dict built from ``params.yaml`` and ``vars``;
merging is recursive and never overrides a value.  A string that is one
whole ``${expr}`` keeps the type of the value; several references are
rendered with :func:`to_str` (``true``/``false``, ``1e-05``, ``None``) and a
dict inside ``cmd`` becomes ``--key value`` flags.  ``\\${`` escapes.

Errors are the exceptions below; the dvc.yaml loader adds the
``failed to parse '<where>' in '<file>'`` preamble.

After a stage is resolved, :meth:`Context.reads_of` says which values of
vars files its references read (DVC's "tracked vars").
"""

from __future__ import annotations

import posixpath
import re
import shlex
from functools import lru_cache
from typing import Any, Callable, Iterator, Mapping, Sequence

# DVC's KEYCRE: non-greedy, a preceding backslash escapes the reference.
KEYCRE = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
# DVC's pyparsing grammar: word (("." word) | ("[" word "]"))*, word = [^.[\]]+
_WORD = r"[^.\[\]]+"
_EXPR = re.compile(rf"{_WORD}(?:\s*\.{_WORD}|\s*\[{_WORD}\])*")
_SEGMENT = re.compile(rf"\s*\.({_WORD})|\s*\[({_WORD})\]")
PRIMITIVES = (int, float, str, bytes, bool)


class InterpolationError(Exception):
    """Base of every error below; ``multiline`` puts the message on its own
    line after DVC's preamble (DVC does so for parse and merge errors)."""

    multiline = False


class ExpressionError(InterpolationError):
    """``${...}`` is malformed, or its value cannot go where it is used."""

    multiline = True


class MissingKey(InterpolationError):
    def __init__(self, key: str) -> None:
        super().__init__(f"Could not find '{key}'")
        self.key = key


class ContextError(InterpolationError):
    """Building the context failed (vars files, merging, reserved keys)."""


class MergeConflict(ContextError):
    multiline = True


class VarsAlreadyLoaded(ContextError):
    multiline = True


class ReservedKeys(ContextError):
    def __init__(self, keys: Sequence[str], source: str | None = None) -> None:
        noun = "key" + ("s" if len(keys) > 1 else "")
        message = f"attempted to modify reserved {noun} {_join_words(keys)}"
        if source:
            message += f" in '{source}'"
        super().__init__(message)
        self.keys = tuple(keys)


def _join_words(words: Sequence[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


# --------------------------------------------------------------------------
# expressions


@lru_cache(maxsize=8192)
def parse_expression(inner: str) -> str:
    """``a[0].b`` -> ``a.0.b`` (segments keep their spaces, as DVC's do)."""
    if _EXPR.fullmatch(inner) is None:
        raise ExpressionError(_syntax_message(inner))
    first = re.match(_WORD, inner)
    assert first is not None
    parts = [first.group(0)]
    parts.extend(dotted or indexed for dotted, indexed in _SEGMENT.findall(inner, first.end()))
    return ".".join(parts)


def _syntax_message(inner: str) -> str:
    text = "${" + inner + "}"
    # point at the first character the grammar cannot take
    ok = 0
    match = re.match(_WORD, inner)
    if match:
        ok = match.end()
        for segment in _SEGMENT.finditer(inner, ok):
            if segment.start() != ok:
                break
            ok = segment.end()
    found = inner[ok] if ok < len(inner) else "}"
    pointer = " " * (ok + 2) + "^"
    return f"{text}\n{pointer}\nParseException: unexpected '{found}' (at char {ok + 2})"


def check_expressions(data: Any) -> None:
    """Raise ExpressionError for the first malformed ``${...}`` in ``data``."""
    for text in _strings(data):
        if "${" in text:
            for match in KEYCRE.finditer(text):
                parse_expression(match.group("inner"))


def has_interpolation(data: Any) -> bool:
    return any("${" in s and KEYCRE.search(s) for s in _strings(data))


def references_in(data: Any) -> tuple["Reference", ...]:
    """Every ``${...}`` in ``data``, once each (by expression), in the order
    resolution reaches them (keys before values); escaped ones are text."""
    found: dict[str | None, Reference] = {}
    for text in _strings(data):
        if "${" in text:
            compiled = compile_text(text)
            if isinstance(compiled, Whole):
                found.setdefault(compiled.reference.expr, compiled.reference)
            elif isinstance(compiled, Text):
                for reference in compiled.references:
                    found.setdefault(reference.expr, reference)
    return tuple(found.values())


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(data, (list, tuple, set)):
        for item in data:
            yield from _strings(item)


# --------------------------------------------------------------------------
# rendering


def to_str(value: Any, config: Mapping[str, Any] | None = None) -> str:
    """A value inside a string, rendered as DVC renders it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return dict_to_flags(value, config or {})
    return str(value)


def dict_to_flags(data: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """``{epochs: 10, verbose: true, layers: [1, 2]}`` -> ``--epochs 10 --verbose --layers 1 2``."""
    bool_mode = config.get("bool", "store_true")
    list_mode = config.get("list", "nargs")
    parts: list[str] = []
    for key, value in _flatten(data, ""):
        if isinstance(value, bool):
            if value:
                parts.append(f"--{key}")
            elif bool_mode == "boolean_optional":
                parts.append(f"--no-{key}")
        elif isinstance(value, str):
            parts.append(f"--{key} {shlex.quote(value)}")
        elif isinstance(value, (list, tuple, set, dict)):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    item = shlex.quote(item)
                elif isinstance(item, (list, tuple, set, dict)):
                    raise ExpressionError(f"Cannot interpolate nested iterable in '{key}'")
                if list_mode == "append" or index == 0:
                    parts.append(f"--{key} {item}")
                else:
                    parts.append(str(item))
        else:
            parts.append(f"--{key} {value}")
    return " ".join(parts)


def _flatten(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def check_value(value: Any, key: str | None) -> None:
    """DVC's validate_value: only scalars go into stage fields (a dict may
    go into ``cmd``); ``key`` None (wdir, foreach, top level) skips it."""
    if value is None or isinstance(value, PRIMITIVES) or key is None or "foreach" in key:
        return
    if isinstance(value, dict) and key == "cmd":
        return
    raise ExpressionError(f"Cannot interpolate data of type '{type(value).__name__}'")


# --------------------------------------------------------------------------
# the context

Loader = Callable[[str], Any]  # root-relative path -> parsed data (raises ContextError)
Path = tuple[str, ...]  # a place in the context: keys and list indices, canonical ("0", never "-1")
VarRead = tuple[str, str]  # (vars file, dotted key in it) a reference read


class Context:
    """Variables for interpolation, with where each one came from.

    ``data`` is shared structurally between clones: merging copies a nested
    dict before writing into it, so cloning is a shallow copy.

    :meth:`reads_of` gives the vars-file values references read (DVC's
    tracked vars).  A foreach/matrix ``item`` that came from the context
    keeps its origin through ``aliases``: ``("item", "lr")`` ->
    ``("models", "cnn", "lr")``.
    """

    __slots__ = ("data", "origins", "imports", "reserved", "aliases", "_read_of", "_read_of_path")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origins: dict[Path, str] = {}  # path -> source that set it
        self.imports: dict[str, list[str] | None] = {}  # file -> keys loaded (None: all)
        self.reserved: tuple[str, ...] = ()
        self.aliases: Mapping[Path, Path] = {}  # path under a reserved key -> where its value came from
        # what a reference outside the reserved keys reads, by expression;
        # merging only adds paths, so an entry never goes stale
        self._read_of: dict[str, VarRead | None] = {}
        self._read_of_path: dict[Path, VarRead | None] = {}  # the same by context path (item aliases)

    def clone(self) -> "Context":
        new = Context()
        new.data = dict(self.data)
        new.origins = dict(self.origins)
        new.imports = {k: (list(v) if v is not None else None) for k, v in self.imports.items()}
        new.reserved = self.reserved
        new.aliases = self.aliases
        new._read_of = dict(self._read_of)
        new._read_of_path = dict(self._read_of_path)
        return new

    # -- building

    def merge(self, update: Mapping[Any, Any], source: str) -> None:
        """Merge ``update`` recursively; any existing leaf is a conflict."""
        from pivot.yaml12 import parse_deep  # deep data (a params file 3,000 levels deep) is copied all the same

        clean = parse_deep(lambda: context_value(update, source), source)
        taken = [key for key in self.reserved if key in clean]
        if taken:
            raise ReservedKeys(taken)
        self._merge_into(self.data, clean, (), source)

    def _merge_into(self, into: dict, update: Mapping, path: tuple[str, ...], source: str) -> None:
        for key, value in update.items():
            here = path + (key,)
            current = into.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                into[key] = dict(current)  # copy on write: clones share nested dicts
                self._merge_into(into[key], value, here, source)
            elif key in into:
                raise MergeConflict(
                    f"cannot redefine '{'.'.join(here)}' from '{source}'"
                    f" as it already exists in '{self._origin(here)}'"
                )
            else:
                into[key] = value
                self.origins[here] = source

    def _origin(self, path: tuple[str, ...]) -> str:
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return "<local>"

    def merge_file(self, item: str, wdir: str, load: Loader) -> None:
        """A ``vars`` entry ``path`` or ``path:key1,key2`` (relative to ``wdir``)."""
        file_part, _, keys_part = item.partition(":")
        path = join_path(wdir, file_part)
        keys = [k for k in keys_part.split(",") if k] if keys_part else None
        if path in self.imports:
            if not keys and self.imports[path] is None:
                return  # the same whole file twice is fine
            self._check_loaded(path, item, keys)
        data = load(path)
        if not isinstance(data, Mapping):
            raise ContextError(f"expected a dictionary, got '{type(data).__name__}' in file '{path}'")
        if keys:
            missing = next((k for k in keys if k not in data), None)
            if missing is not None:
                raise ContextError(f"could not find '{missing}' in '{path}'")
            data = {k: data[k] for k in keys}
        try:
            self.merge(data, path)
        except ReservedKeys as exc:
            raise ReservedKeys(exc.keys, item) from None
        except RecursionError:  # merging two deep mappings into each other
            raise ContextError(f"'{path}' is nested too deeply to merge into the variables") from None
        if path not in self.imports:
            self.imports[path] = list(keys) if keys else None
        elif keys:
            loaded = self.imports[path]
            assert loaded is not None
            loaded.extend(keys)

    def _check_loaded(self, path: str, item: str, keys: list[str] | None) -> None:
        loaded = self.imports[path]
        if not keys and isinstance(loaded, list):
            raise VarsAlreadyLoaded(f"cannot load '{item}' as it's partially loaded already")
        if keys and loaded is None:
            raise VarsAlreadyLoaded(f"cannot partially load '{item}' as it's already loaded.")
        if isinstance(loaded, list) and keys and set(keys) & set(loaded):
            raise VarsAlreadyLoaded(f"cannot load '{item}' as it's partially loaded already")

    def load_vars(self, entries: Sequence[Any], wdir: str, load: Loader, stage_name: str = "") -> None:
        """A ``vars`` list: files relative to ``wdir`` and inline dicts."""
        joiner = "." if stage_name else ""
        for index, entry in enumerate(entries):
            if isinstance(entry, str):
                self.merge_file(entry, wdir, load)
            else:
                self.merge(entry, f"{stage_name}{joiner}vars[{index}]")

    def set_temporarily(self, values: Mapping[str, Any], aliases: Mapping[Path, Path] | None = None) -> dict[str, Any]:
        """Set reserved top-level values (foreach ``item``/``key``); returns
        what to pass to :meth:`restore`.  ``aliases`` maps paths under them
        to the context paths their values came from (see :meth:`paths_within`)."""
        previous = {key: self.data.get(key, _MISSING) for key in values}
        self.data.update(values)
        self.reserved = tuple(values)
        self.aliases = aliases or {}
        return previous

    def restore(self, previous: Mapping[str, Any]) -> None:
        for key, value in previous.items():
            if value is _MISSING:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        self.reserved = ()
        self.aliases = {}

    # -- which vars-file values were read (DVC's tracked vars)

    def reads_of(self, references: Sequence["Reference"]) -> list[VarRead]:
        """``(file, dotted key)`` of each vars-file value ``references`` (all
        resolved in this context already) read, in their order; a mapping,
        an inline ``vars`` value, a literal item or ``key`` reads nothing."""
        reads: list[VarRead] = []
        memo, by_path, aliases, reserved = self._read_of, self._read_of_path, self.aliases, self.reserved
        for reference in references:
            if reference.root not in reserved:
                read = memo.get(reference.expr, _MISSING)  # type: ignore[arg-type]
                if read is _MISSING:
                    read = memo[reference.expr] = self._read_by(reference)  # type: ignore[index]
            elif reference.root != "item":
                read = None  # ``key`` is a name made for the member, never a value from a file
            else:  # another value for every member; the fast path takes an aliased
                # one (``item``, ``item.<axis>``, ``item.lr``) by its context path
                segments = reference.segments
                target = aliases.get(segments)
                if target is None and not reference.may_index:
                    base = aliases.get(segments[:1])
                    target = None if base is None else base + segments[1:]
                if target is None:
                    read = self._read_by(reference)
                else:
                    read = by_path.get(target, _MISSING)
                    if read is _MISSING:
                        read = by_path[target] = self._read_in_context(target)
            if read is not None:
                reads.append(read)  # type: ignore[arg-type]
        return reads

    def _read_in_context(self, path: Path) -> VarRead | None:
        """What reading the context at ``path`` (canonical, existing) reads."""
        if type(_lookup(self.data, ".".join(path), path)) is dict:
            return None  # DVC never tracks a mapping
        return self._origin_read(path)

    def _read_by(self, reference: "Reference") -> VarRead | None:
        segments = reference.segments
        if type(_lookup(self.data, reference.expr, segments)) is dict:  # type: ignore[arg-type]
            return None  # DVC never tracks a mapping
        return self._read_at(self._canonical(segments) if reference.may_index else segments)

    def _canonical(self, segments: Path) -> Path:
        """``segments`` (of a reference that resolved) with list indices as
        DVC names them: ``-1`` -> the index counted from the start."""
        node: Any = self.data
        path: list[str] = []
        for segment in segments:
            if isinstance(node, list):
                index = int(segment)
                index = index + len(node) if index < 0 else index
                node, segment = node[index], str(index)
            else:
                node = node[segment]
            path.append(segment)
        return tuple(path)

    def _read_at(self, path: Path) -> VarRead | None:
        """The vars file and dotted key the value at ``path`` came from;
        None for inline ``vars``, literal foreach/matrix items, ``key``."""
        if path[0] in self.reserved:
            target = self.aliases.get(path)
            if target is None:  # a part of an aliased value, or nothing from the context
                for length in range(len(path) - 1, 0, -1):
                    target = self.aliases.get(path[:length])
                    if target is not None:
                        target += path[length:]
                        break
                else:
                    return None
            return self._origin_read(target)
        return self._origin_read(path)

    def _origin_read(self, path: Path) -> VarRead | None:
        for length in range(len(path), 0, -1):
            source = self.origins.get(path[:length])
            if source is not None:
                return (source, ".".join(path)) if source in self.imports else None
        return None

    def path_of(self, text: str) -> Path | None:
        """The context path a whole ``${...}`` string resolves to (it must
        have resolved already); None for anything else."""
        compiled = compile_text(text) if "${" in text else None
        if not isinstance(compiled, Whole):
            return None
        reference = compiled.reference
        return self._canonical(reference.segments) if reference.may_index else reference.segments

    def paths_within(self, raw: Any) -> dict[Path, Path]:
        """For a foreach/matrix item as written: ``{path inside the item:
        context path}`` for each whole ``${...}`` in it, as DVC keeps the
        origin of a value taken from the context."""
        if isinstance(raw, str):
            found = self.path_of(raw)
            return {} if found is None else {(): found}
        inner: dict[Path, Path] = {}
        if isinstance(raw, dict):
            for key, value in raw.items():
                name = self.resolve(key) if isinstance(key, str) else key
                if isinstance(name, str):
                    inner.update({(name, *p): target for p, target in self.paths_within(value).items()})
        elif isinstance(raw, list):
            for index, value in enumerate(raw):
                inner.update({(str(index), *p): target for p, target in self.paths_within(value).items()})
        return inner

    # -- lookup and resolution

    def select(self, expr: str) -> Any:
        return _lookup(self.data, expr, tuple(raw.strip() for raw in expr.split(".")))

    def resolve(self, data: Any, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        """``data`` with every string interpolated (dict keys too)."""
        if isinstance(data, str):
            return self.resolve_str(data, key, config) if "${" in data else data
        if isinstance(data, dict):
            return {self.resolve(k, key, config): self.resolve(v, key, config) for k, v in data.items()}
        if isinstance(data, list):
            return [self.resolve(item, key, config) for item in data]
        return data

    def resolve_str(self, text: str, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        return compile_text(text).resolve(self, key, config)

    def resolve_whole(self, text: str) -> tuple[Any, bool]:
        """Resolve one foreach/matrix entry: ``(value, came_from_context)``.

        DVC names generated stages after context values with ``str()``
        (``True``) and after literals with :func:`to_str` (``true``).
        """
        if "${" not in text:
            return text, False
        compiled = compile_text(text)
        if isinstance(compiled, Whole):
            return compiled.reference.value(self), True
        return compiled.resolve(self), False


def _lookup(data: dict[str, Any], expr: str, segments: tuple[str, ...]) -> Any:
    """The value at ``segments`` (dict keys, list indices); MissingKey names ``expr``."""
    node: Any = data
    for segment in segments:
        try:
            if isinstance(node, dict):
                node = node[segment]
            elif isinstance(node, list):
                node = node[int(segment)]
            else:
                raise MissingKey(expr)
        except (KeyError, IndexError, ValueError):
            raise MissingKey(expr) from None
    return node


# --------------------------------------------------------------------------
# pre-parsed templates
#
# A foreach/matrix ``do`` body is resolved once per member.  Splitting every
# string into literal text and references once, up front, leaves only
# lookups and joins for each member.  The nodes resolve exactly as
# Context.resolve does, in the same order, raising the same errors.


class Reference:
    """One ``${inner}``, parsed; a malformed one raises when it is used,
    at the point DVC's resolver would reach it."""

    __slots__ = ("inner", "expr", "segments", "root", "may_index")

    def __init__(self, inner: str) -> None:
        self.inner = inner
        try:
            self.expr: str | None = parse_expression(inner)
        except ExpressionError:
            self.expr = None
            self.segments: tuple[str, ...] = ()
        else:
            self.segments = tuple(raw.strip() for raw in self.expr.split("."))
        self.root = self.segments[0] if self.segments else ""
        # only a segment ending in a digit can index a list (and need canonical form)
        self.may_index = any(segment[-1:].isdigit() for segment in self.segments)

    def value(self, context: Context) -> Any:
        if self.expr is None:
            parse_expression(self.inner)  # raises the syntax error
        return _lookup(context.data, self.expr, self.segments)  # type: ignore[arg-type]


class Literal:
    """A value with nothing to interpolate (strings and scalars, shared)."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data

    def resolve(self, context: Context, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        return self.data


class Whole:
    """A string that is exactly one ``${expr}``: the value keeps its type."""

    __slots__ = ("reference",)

    def __init__(self, reference: Reference) -> None:
        self.reference = reference

    def resolve(self, context: Context, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        value = self.reference.value(context)
        check_value(value, key)
        return value


class Text:
    """Literal text around references: ``literals`` has one more entry."""

    __slots__ = ("literals", "references")

    def __init__(self, literals: tuple[str, ...], references: tuple[Reference, ...]) -> None:
        self.literals = literals
        self.references = references

    def resolve(self, context: Context, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        pieces = [self.literals[0]]
        for reference, literal in zip(self.references, self.literals[1:]):
            value = reference.value(context)
            if type(value) is not str:  # a str passes check_value and renders as itself
                check_value(value, key)
                value = to_str(value, config)
            pieces.append(value)
            pieces.append(literal)
        text = "".join(pieces)
        return text.replace("\\${", "${") if "\\${" in text else text


class MappingNode:
    """A dict: keys and values are both interpolated, in order."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[Any, Any], ...]) -> None:
        self.items = items

    def resolve(self, context: Context, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        return {k.resolve(context, key, config): v.resolve(context, key, config) for k, v in self.items}


class ListNode:
    __slots__ = ("items",)

    def __init__(self, items: tuple[Any, ...]) -> None:
        self.items = items

    def resolve(self, context: Context, key: str | None = None, config: Mapping[str, Any] | None = None) -> Any:
        return [item.resolve(context, key, config) for item in self.items]


Template = Literal | Whole | Text | MappingNode | ListNode


def compile_template(data: Any) -> Template:
    """``data`` pre-parsed; ``.resolve(context, key, config)`` gives what
    ``context.resolve(data, key, config)`` gives."""
    if isinstance(data, str):
        return compile_text(data) if "${" in data else Literal(data)
    if isinstance(data, dict):
        return MappingNode(tuple((compile_template(k), compile_template(v)) for k, v in data.items()))
    if isinstance(data, list):
        return ListNode(tuple(compile_template(item) for item in data))
    return Literal(data)


@lru_cache(maxsize=4096)
def compile_text(text: str) -> Template:
    """One string as Context.resolve_str sees it (an escaped ``\\${`` is text)."""
    matches = list(KEYCRE.finditer(text))
    if len(matches) == 1 and matches[0].group(0) == text:
        return Whole(Reference(matches[0].group("inner")))
    if not matches:
        return Literal(text.replace("\\${", "${"))
    literals: list[str] = []
    index = 0
    for match in matches:
        literals.append(text[index : match.start()])
        index = match.end()
    literals.append(text[index:])
    return Text(tuple(literals), tuple(Reference(m.group("inner")) for m in matches))


_MISSING = object()


def context_value(data: Any, source: str = "", path: str = "") -> Any:
    """``data`` as the context holds it: DVC drops non-string dict keys and
    refuses values that are not scalars, lists or dicts (dates)."""
    if isinstance(data, dict):
        return {
            k: context_value(v, source, f"{path}.{k}" if path else k)
            for k, v in data.items()
            if isinstance(k, str)
        }
    if isinstance(data, list):
        return [context_value(v, source, f"{path}.{i}" if path else str(i)) for i, v in enumerate(data)]
    if data is None or isinstance(data, PRIMITIVES):
        return data
    raise ContextError(f"Unsupported value of type '{type(data).__name__}' in '{source}:{path}'")


def join_path(base: str, path: str) -> str:
    """``base``/``path`` normalised, POSIX, ``"."`` for the root."""
    return posixpath.normpath(posixpath.join(base or ".", path)) if path else posixpath.normpath(base or ".")
