"""dvc.yaml -> Stages, resolved exactly as DVC 3.x resolves them.

Order of work, as in DVC: the raw YAML is validated against the schema
(before any ``${}``), the context is built from ``params.yaml`` beside the
file plus top-level ``vars``, then each stage (or each foreach/matrix
member, in DVC's generation order) is interpolated and turned into IR.
Each stage also records which vars-file values its interpolation read
(``Stage.tracked_vars``, DVC's "tracked vars").
"""

from __future__ import annotations

import itertools
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from pivot.errors import PipelineError
from pivot.frontends import dvcschema
from pivot.frontends.datafiles import DataFiles
from pivot.frontends.interpolate import (
    Context,
    ContextError,
    ExpressionError,
    InterpolationError,
    MissingKey,
    Path,
    Reference,
    VarRead,
    VarsAlreadyLoaded,
    Template,
    check_expressions,
    compile_template,
    has_interpolation,
    join_path,
    references_in,
    to_str,
)
from pivot.ir import Dep, Location, Out, OutKind, ParamsDep, Stage, TrackedVar, is_url
from pivot.yaml12 import Document

DEFAULT_PARAMS_FILE = "params.yaml"
OUT_KINDS = (("outs", OutKind.OUT), ("metrics", OutKind.METRIC), ("plots", OutKind.PLOT))
TOO_DEEP = "nested too deeply (lists or mappings hundreds of levels deep)"


@dataclass(frozen=True)
class ParsingConfig:
    """The ``[parsing]`` section of ``.dvc/config``: how a dict in ``cmd`` renders."""

    bool: str = "store_true"
    list: str = "nargs"

    def as_mapping(self) -> dict[str, str]:
        return {"bool": self.bool, "list": self.list}


@dataclass
class DvcYamlLoader:
    """Loads one dvc.yaml (``relpath`` from the project root) into Stages."""

    relpath: str
    document: Document
    files: DataFiles
    config: ParsingConfig = field(default_factory=ParsingConfig)

    def __post_init__(self) -> None:
        self.dir = posixpath.dirname(self.relpath) or "."
        self._config = self.config.as_mapping()
        self._context: Context | None = None
        self._paths: dict[tuple[str, str], str] = {}
        self._deps: dict[tuple[str, str], Dep] = {}
        self._tracked: dict[VarRead, TrackedVar] = {}  # one shared record per value read

    # -- errors in DVC's shape

    def _fail(self, where: str, exc: InterpolationError | str) -> PipelineError:
        spacing = "\n" if isinstance(exc, InterpolationError) and exc.multiline else " "
        return PipelineError(f"failed to parse {where} in '{self.relpath}':{spacing}{exc}")

    # -- the whole file

    def stages(self) -> list[Stage]:
        data = self.document.data
        if data is None:
            data = {}
        try:
            dvcschema.validate(data, self.relpath, self.document)
            definitions = data.get("stages") or {}
            if not definitions:
                return []
            context = self._global_context(data.get("vars") or [])
        except RecursionError:  # YAML nested deeper than the checks can walk
            raise self._fail(f"'{self.relpath}'", TOO_DEEP) from None
        found: list[Stage] = []
        for name, definition in definitions.items():
            line = self.document.line_of("stages", name)
            self._check_name(name, line)
            try:
                if "matrix" in definition:
                    found.extend(self._matrix(context, name, definition, line))
                elif "foreach" in definition:
                    found.extend(self._foreach(context, name, definition, line))
                else:
                    found.append(self._entry(context, name, definition, line, group=None, generated=False))
            except RecursionError:
                raise self._fail(f"'stages.{name}'", TOO_DEEP) from None
        return found

    def _check_name(self, name: str, line: int | None) -> None:
        """Names DVC cannot address: empty, or with ``@`` (reserved for
        foreach/matrix members; DVC then reports the stage as not found)."""
        where = f"'{self.relpath}:{line}'" if line else f"'{self.relpath}'"
        if name == "":
            raise PipelineError(f"failed to parse 'stages' in {where}: Stage name not provided (the name is empty)")
        if "@" in name:
            raise PipelineError(
                f"failed to parse 'stages.{name}' in {where}: a stage name cannot contain '@'"
                " (it separates a foreach/matrix stage from its member key)"
            )

    def _global_context(self, vars_: list[Any]) -> Context:
        if has_interpolation(vars_):
            raise self._fail("'vars'", "interpolating is not allowed")
        context = Context()
        try:
            if self.files.exists(join_path(self.dir, DEFAULT_PARAMS_FILE)):
                context.merge_file(DEFAULT_PARAMS_FILE, self.dir, self.files.load)
            context.load_vars(vars_, self.dir, self.files.load)
        except InterpolationError as exc:
            raise self._fail("'vars'", exc) from None
        return context

    # -- foreach and matrix

    def _foreach(self, context: Context, name: str, definition: dict, line: int | None) -> Iterator[Stage]:
        raw = definition["foreach"]
        try:
            iterable, from_context, origins = _resolve_iterable(context, raw)
        except InterpolationError as exc:
            raise self._fail(f"'stages.{name}.foreach'", exc) from None
        # member key -> (item, where parts of the item came from in the context)
        members: dict[str, tuple[Any, dict[Path, Path]]]
        if isinstance(iterable, dict):
            members = {to_str(key): pair for key, pair in zip(iterable, zip(iterable.values(), origins))}
        elif isinstance(iterable, list):
            if any(isinstance(value, (dict, list)) for value in iterable):
                members = {str(index): pair for index, pair in enumerate(zip(iterable, origins))}
            else:
                members = {
                    _member_key(value, ctx): (value, paths)
                    for value, ctx, paths in zip(iterable, from_context, origins)
                }
        else:
            raise PipelineError(
                f"failed to resolve 'stages.{name}.foreach' in '{self.relpath}':"
                f" expected list/dictionary, got {type(iterable).__name__}"
            )
        template = definition["do"]
        if members:
            self._check_syntax(name, template)
        compiled = _compile(template) if members else {}
        references = _references(template) if members else ()
        for key, (value, paths) in members.items():
            temporary = {"item": value}
            if isinstance(iterable, dict):
                temporary["key"] = key
            aliases = {("item", *path): target for path, target in paths.items()}
            yield self._generated(context, name, key, template, compiled, references, temporary, aliases, line)

    def _matrix(self, context: Context, name: str, definition: dict, line: int | None) -> Iterator[Stage]:
        template = {k: v for k, v in definition.items() if k != "matrix"}
        # per axis, per value: (value, from the context, its aliases under item.<axis>)
        axes: dict[str, list[tuple[Any, bool, tuple[tuple[Path, Path], ...]]]] = {}
        if isinstance(definition["matrix"], dict) and not definition["matrix"]:
            raise self._fail(f"'stages.{name}.matrix'", "matrix is empty (DVC cannot load it)")
        try:
            for axis, raw in definition["matrix"].items():
                values, from_context, origins = _resolve_iterable(context, raw)
                if isinstance(values, (dict, str)):  # its keys or characters: nothing from the context
                    values, from_context, origins = list(values), [from_context[0]] * len(values), [{}] * len(values)
                if not isinstance(values, list):
                    raise ExpressionError(
                        f"expected a list for '{axis}', got {type(values).__name__}"
                    )
                under_item = [tuple((("item", axis, *p), t) for p, t in paths.items()) for paths in origins]
                axes[axis] = list(zip(values, from_context, under_item))
        except InterpolationError as exc:
            raise self._fail(f"'stages.{name}.matrix'", exc) from None
        members: dict[str, tuple[dict[str, Any], dict[Path, Path]]] = {}
        for combination in itertools.product(*(list(enumerate(v)) for v in axes.values())):
            item: dict[str, Any] = {}
            aliases: dict[Path, Path] = {}
            fragments: list[str] = []
            for axis, (index, (value, ctx, value_aliases)) in zip(axes, combination):
                item[axis] = value
                if value_aliases:
                    aliases.update(value_aliases)
                composite = isinstance(value, (dict, list))
                fragments.append(f"{axis}{index}" if composite else _member_key(value, ctx))
            members["-".join(fragments)] = (item, aliases)
        if members:
            self._check_syntax(name, template)
        compiled = _compile(template) if members else {}
        references = _references(template) if members else ()
        for key, (item, aliases) in members.items():
            yield self._generated(
                context, name, key, template, compiled, references, {"key": key, "item": item}, aliases, line
            )

    def _generated(
        self,
        context: Context,
        group: str,
        key: str,
        template: dict,
        compiled: Mapping[str, Template],
        references: tuple[Reference, ...],
        temporary: dict[str, Any],
        aliases: dict[Path, Path],
        line: int | None,
    ) -> Stage:
        previous = context.set_temporarily(temporary, aliases)
        try:
            return self._entry(
                context, f"{group}@{key}", template, line, group=group, generated=True, compiled=compiled,
                references=references,
            )
        finally:
            context.restore(previous)

    # -- one stage

    def _check_syntax(self, name: str, definition: Mapping[str, Any]) -> None:
        for key, value in definition.items():
            try:
                check_expressions(value)
            except ExpressionError as exc:
                raise self._fail(f"'stages.{name}.{key}'", exc) from None
            except RecursionError:
                raise self._fail(f"'stages.{name}.{key}'", TOO_DEEP) from None

    def _entry(
        self,
        context: Context,
        name: str,
        definition: dict,
        line: int | None,
        *,
        group: str | None,
        generated: bool,
        compiled: Mapping[str, Template] | None = None,
        references: tuple[Reference, ...] | None = None,
    ) -> Stage:
        """One stage; ``compiled`` (foreach/matrix members) holds the
        definition's values pre-parsed by :func:`compile_template`, and
        ``references`` the ``${...}`` in them (:func:`_references`)."""
        if not generated:
            self._check_syntax(name, definition)
        wdir = self.dir
        raw_wdir = definition.get("wdir")
        if raw_wdir:
            try:
                wdir = join_path(self.dir, to_str(context.resolve_str(raw_wdir)))
            except InterpolationError as exc:
                raise self._fail(f"'stages.{name}.wdir'", exc) from None
        vars_ = definition.get("vars") or []
        if has_interpolation(vars_):
            raise self._fail(f"'stages.{name}.vars'", "interpolating is not allowed")
        if vars_:
            context = context.clone()
            try:
                context.load_vars(vars_, wdir, self.files.load, stage_name=name)
            except VarsAlreadyLoaded as exc:
                raise self._fail(f"'stages.{name}.vars'", exc) from None
            except InterpolationError as exc:
                raise self._fail(f"stage '{name}'", exc) from None
        resolved: dict[str, Any] = {}
        for key, value in definition.items():
            if key == "vars":
                continue
            try:
                if compiled is not None:
                    resolved[key] = compiled[key].resolve(context, key, self._config)
                else:
                    resolved[key] = context.resolve(value, key, self._config)
            except (ExpressionError, MissingKey) as exc:
                raise self._fail(f"'stages.{name}.{key}'", exc) from None
            except ContextError as exc:
                raise self._fail(f"stage '{name}'", exc) from None
            except RecursionError:
                raise self._fail(f"'stages.{name}.{key}'", TOO_DEEP) from None
        # as DVC's Context.track: what every field but vars (wdir included) read
        reads = context.reads_of(_references(definition) if references is None else references)
        return self._build(name, resolved, wdir, line, group, self._tracked_vars(reads))

    def _tracked_vars(self, reads: list[VarRead]) -> tuple[TrackedVar, ...]:
        """Each value read once, in first-read order; records are shared
        between stages (the same value read by every foreach member)."""
        if not reads:
            return ()
        known = self._tracked
        return tuple([known.get(read) or known.setdefault(read, TrackedVar(*read)) for read in dict.fromkeys(reads)])

    def _build(self, name: str, data: dict[str, Any], wdir: str, line: int | None, group: str | None,
               tracked_vars: tuple[TrackedVar, ...]) -> Stage:
        cmd = data.get("cmd")
        if isinstance(cmd, str):
            cmds: tuple[str, ...] = tuple(cmd.splitlines())
            literal: str | tuple[str, ...] = cmd
        elif isinstance(cmd, list):
            for item in cmd:
                if not isinstance(item, str):  # a whole-value ${...} gave a bool, number, list or dict
                    raise self._fail(
                        f"'stages.{name}.cmd'",
                        f"every command must be a string, got {type(item).__name__} {to_str(item)!r}",
                    )
            cmds = literal = tuple(cmd)
        else:
            raise self._fail(f"'stages.{name}.cmd'", f"expected str or list, got {type(cmd).__name__}")
        for section in ("deps", *(section for section, _ in OUT_KINDS)):
            for entry in data.get(section) or []:
                if not isinstance(entry, (str, dict)):  # a whole-value ${...} gave a number or bool
                    raise self._fail(f"'stages.{name}.{section}'", f"'{type(entry).__name__}' not supported.")
        deps = tuple(self._dep(wdir, dep) for dep in data.get("deps") or [])
        desc = data.get("desc")
        return Stage(
            address=name if self.relpath == "dvc.yaml" else f"{self.relpath}:{name}",
            name=name,
            file=self.relpath,
            wdir=wdir,
            cmds=cmds,
            deps=deps,
            params=self._params(name, wdir, data.get("params") or []),
            outs=self._outs(name, wdir, data),
            frozen=bool(data.get("frozen", False)),
            always_changed=bool(data.get("always_changed", False)),
            desc=None if desc is None else str(desc),
            meta=data.get("meta"),
            location=Location(self.relpath, line) if line else None,
            group=group,
            cmd_literal=literal,
            tracked_vars=tracked_vars,
        )

    def _dep(self, wdir: str, path: Any) -> Dep:
        # one shared object per distinct dep (a script every stage reads): less memory
        key = (wdir, str(path))
        dep = self._deps.get(key)
        if dep is None:
            dep = self._deps[key] = Dep(path=self._path(wdir, path), def_path=key[1])
        return dep

    def _path(self, wdir: str, path: Any) -> str:
        text = str(path)
        # memoised: the same deps (scripts, shared data) recur in many stages
        joined = self._paths.get((wdir, text))
        if joined is None and is_url(text):
            joined = self._paths[wdir, text] = text  # DVC keeps URLs verbatim
        if joined is None:
            relative = os.path.relpath(text, self.files.root) if os.path.isabs(text) else text
            joined = self._paths[wdir, text] = join_path(wdir, relative.replace(os.sep, "/"))
        return joined

    def _params(self, name: str, wdir: str, entries: list[Any]) -> tuple[ParamsDep, ...]:
        """DVC's _merge_params: bare keys go to params.yaml; a file mapped to
        null or [] is tracked whole and swallows its listed keys."""
        whole = {f for e in entries if isinstance(e, dict) for f, keys in e.items() if not keys}
        merged: dict[str, list[str]] = {}
        for entry in entries:
            if isinstance(entry, str):
                if DEFAULT_PARAMS_FILE not in whole:
                    merged.setdefault(DEFAULT_PARAMS_FILE, []).append(entry)
                continue
            if not isinstance(entry, dict):
                raise self._fail(
                    f"'stages.{name}.params'",
                    f"Only list of str/dict is supported. Got: '{type(entry).__name__}'.",
                )
            for file, keys in entry.items():
                if file in whole:
                    merged[file] = []
                    continue
                if not isinstance(keys, list):
                    raise self._fail(
                        f"'stages.{name}.params'",
                        f"Expected list of params for custom params file '{file}',"
                        f" got '{type(keys).__name__}'.",
                    )
                merged.setdefault(file, []).extend(to_str(k) for k in keys)
        return tuple(
            ParamsDep(
                path=self._path(wdir, file),
                def_path=str(file),
                keys=None if file in whole else tuple(keys),
            )
            for file, keys in merged.items()
        )

    def _outs(self, name: str, wdir: str, data: dict[str, Any]) -> tuple[Out, ...]:
        outs: list[Out] = []
        sections: dict[str, str] = {}  # out path -> the section listing it
        for section, kind in OUT_KINDS:
            merged: dict[str, dict[str, Any]] = {}
            for entry in data.get(section) or []:
                if isinstance(entry, dict):
                    for path, flags in entry.items():
                        if not isinstance(flags, dict):
                            raise self._fail(
                                f"'stages.{name}.{section}'",
                                f"Expected dict for '{path}', got: '{type(flags).__name__}'",
                            )
                        merged.setdefault(str(path), {}).update(flags)
                else:
                    merged.setdefault(str(entry), {})
            for path, flags in merged.items():
                resolved = self._path(wdir, path)
                if sections.setdefault(resolved, section) != section:
                    raise self._fail(
                        f"'stages.{name}.{section}'",
                        f"output '{path}' is already specified in stage: '{name}'."
                        f" (listed in both '{sections[resolved]}' and '{section}')",
                    )
                outs.append(
                    Out(
                        path=resolved,
                        def_path=path,
                        cache=bool(flags.get("cache", True)),
                        persist=bool(flags.get("persist", False)),
                        kind=kind,
                    )
                )
        return tuple(outs)


def _compile(template: Mapping[str, Any]) -> dict[str, Template]:
    """A foreach/matrix body pre-parsed once for all its members (``vars`` is
    loaded, not interpolated)."""
    return {key: compile_template(value) for key, value in template.items() if key != "vars"}


def _references(definition: Mapping[str, Any]) -> tuple[Reference, ...]:
    """The ``${...}`` a stage's fields hold (``vars`` is loaded, not interpolated)."""
    return references_in([value for key, value in definition.items() if key != "vars"])


def _resolve_iterable(context: Context, raw: Any) -> tuple[Any, list[bool], list[dict[Path, Path]]]:
    """foreach/matrix data resolved, with, per item (per value of a
    mapping): whether it came from the context (DVC names those with
    ``str()``, literals with to_str), and where its parts came from in the
    context (:meth:`Context.paths_within`; the item's own path is ``()``)."""
    if isinstance(raw, str):
        value, from_context = context.resolve_whole(raw)
        size = max(len(value) if isinstance(value, (list, dict, str)) else 1, 1)
        base = context.path_of(raw) if from_context else None
        if base is not None and isinstance(value, dict):
            return value, [True] * size, [{(): (*base, key)} for key in value]
        if base is not None and isinstance(value, list):
            return value, [True] * size, [{(): (*base, str(index))} for index in range(len(value))]
        return value, [from_context] * size, [{}] * size
    if isinstance(raw, list):
        items: list[Any] = []
        flags: list[bool] = []
        for item in raw:
            if isinstance(item, str):
                value, from_context = context.resolve_whole(item)
            else:
                value, from_context = context.resolve(item), False
            items.append(value)
            flags.append(from_context)
        return items, flags, [context.paths_within(item) for item in raw]
    if isinstance(raw, dict):
        resolved = context.resolve(raw)
        origins = [context.paths_within(value) for value in raw.values()]
        if len(origins) != len(resolved):  # interpolated keys that collided
            origins = [{}] * len(resolved)
        return resolved, [False] * len(raw), origins
    return raw, [False], [{}]


def _member_key(value: Any, from_context: bool) -> str:
    return str(value) if from_context else to_str(value)


def read_parsing_config(root: str | os.PathLike[str]) -> ParsingConfig:
    """``[parsing]`` from ``.dvc/config`` then ``.dvc/config.local`` (configobj INI)."""
    values: dict[str, str] = {}
    for name in ("config", "config.local"):
        path = os.path.join(root, ".dvc", name)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        section = None
        continued: str | None = None  # the closing quotes of a multi-line value
        for number, raw in enumerate(lines, 1):
            text = raw.strip()
            if continued is not None:
                if continued in text:
                    continued = None
                continue
            if not text or text.startswith(("#", ";")):
                continue
            if text.startswith("[") and text.endswith("]"):
                section = text[1:-1].strip().strip("'\"")
                continue
            if "=" not in text:  # DVC (configobj) refuses the whole file
                raise PipelineError(
                    f"config file error in '.dvc/{name}':{number}: invalid line {text!r}"
                    " (neither a [section] nor key = value)"
                )
            key, _, value = text.partition("=")
            value = value.strip()
            quotes = value[:3]
            if quotes in ("\'\'\'", '\"\"\"') and quotes not in value[3:]:
                continued = quotes
            if section == "parsing":
                values[key.strip()] = value.strip("'\"")
    return ParsingConfig(
        bool=values.get("bool", "store_true"),
        list=values.get("list", "nargs"),
    )
