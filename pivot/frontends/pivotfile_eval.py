"""Pivotfile evaluation: statements -> :class:`Rule` objects.

:class:`Evaluator` runs the statements of the Pivotfile and what it includes
top to bottom -- variables, ``configfile``, ``include`` -- and turns each
``rule`` into a :class:`Rule` (patterns parsed, sections checked, shell
placeholders validated).  Wildcards stay open: resolution fills them.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from typing import Any, Iterable, Mapping

from pivot.containment import is_inside, outside_reason
from pivot.errors import PipelineError
from pivot.frontends import pivotfile_parse as syntax
from pivot.frontends.pivotfile_parse import Pos, Source
from pivot.frontends.pivotfile_rules import Marked, ParamsItem, PathItem, Placeholder, Rule, ShellCommand
from pivot.frontends.wildcards import Pattern, PatternError, parse_pattern
from pivot.project import Project

SECTIONS = ("input", "output", "params", "shell", "wdir", "always_changed", "frozen", "desc")
OUTPUT_MARKERS = ("directory", "metric", "plot", "persist", "nocache")
_CONSTANTS: dict[str, Any] = {
    "true": True, "false": False, "True": True, "False": False, "null": None, "None": None,
}
_NO_MARKERS: frozenset[str] = frozenset()


class _Zip:
    """The ``zip`` argument of expand(): pair lists instead of their product."""


_ZIP = _Zip()


class Evaluator:
    """Runs statements in order: variables, config, includes, rules."""

    def __init__(self, project: Project, top: str) -> None:
        self.project = project
        self.top = top
        self.env: dict[str, Any] = {"config": {}, "zip": _ZIP}
        self.rules: list[tuple[syntax.RuleDecl, str]] = []
        self.rule_pos: dict[str, Pos] = {}
        self.sources: list[str] = []
        self.including: list[str] = []
        # Generated Pivotfiles repeat paths (a script, a config), params and
        # command templates in many rules: each is parsed once.
        self.path_patterns: dict[tuple[str, str], tuple[Pattern, Pattern]] = {}  # (text, wdir) -> as written, rooted
        self.params_patterns: dict[str, tuple[Pattern | None, tuple[Pattern, ...] | None]] = {}
        self.shell_parts: dict[tuple, tuple[str | Placeholder, ...]] = {}  # see _shell_command
        # parser tables and parsed files, reused across invocations; a read-only
        # command never creates .pivot/ (it would move the project root)
        # (nor writes through a .pivot/ or .pivot/parser/ linked out of the project)
        parser_cache = project.state_dir / "parser"
        usable = project.state_dir.is_dir() and is_inside(project.root, f"{project.state_dir.name}/parser/x")
        self.parser_cache = parser_cache if usable else None

    # files ---------------------------------------------------------------

    def run_file(self, relpath: str, pos: Pos | None = None) -> None:
        if relpath in self.including:
            chain = " -> ".join([*self.including, relpath])
            raise _error(pos, f"include cycle: {chain}")
        text = self._read(relpath, pos, "Pivotfile")
        self.sources.append(relpath)
        statements = syntax.parse(Source(relpath, text), self.parser_cache)
        base = posixpath.dirname(relpath) or "."
        self.including.append(relpath)
        for statement in statements:
            if isinstance(statement, syntax.Assign):
                if statement.name in ("config", "zip") or statement.name in _CONSTANTS:
                    raise statement.pos.error(f"'{statement.name}' is reserved and cannot be assigned")
                self.env[statement.name] = self.eval(statement.expr)
            elif isinstance(statement, syntax.Include):
                self.run_file(self._path_value(statement.expr, base), statement.pos)
            elif isinstance(statement, syntax.ConfigFile):
                self._load_config(self._path_value(statement.expr, base), statement.pos)
            else:
                self._declare_rule(statement, base)
        self.including.pop()

    def _read(self, relpath: str, pos: Pos | None, what: str) -> str:
        """The file's text; a UTF-8 byte order mark some editors write is dropped."""
        try:
            return self.project.abspath(relpath).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise _error(pos, f"{what} '{relpath}' does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _error(pos, f"cannot read {what} '{relpath}': {exc}") from None

    def _path_value(self, expr: syntax.Expr, base: str) -> str:
        value = self.eval(expr)
        if not isinstance(value, str) or not value:
            raise expr.pos.error("expected a path string")
        return posixpath.normpath(posixpath.join(base, value))

    def _load_config(self, relpath: str, pos: Pos) -> None:
        # read as params and vars files are: YAML 1.2 (or JSON, TOML, .py by suffix)
        from pivot import formats

        try:
            data = formats.load(self.project.abspath(relpath), relpath)
        except FileNotFoundError:
            raise _error(pos, f"configfile '{relpath}' does not exist") from None
        except formats.FormatError as exc:
            raise PipelineError(str(exc)) from None
        self.sources.append(relpath)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise pos.error(f"configfile '{relpath}' must hold a mapping, not {type(data).__name__}")
        _deep_update(self.env["config"], data)

    def _declare_rule(self, decl: syntax.RuleDecl, base: str) -> None:
        if decl.name in self.rule_pos:
            first = self.rule_pos[decl.name]
            raise decl.pos.error(
                f"duplicate rule name '{decl.name}' (first defined at {first.source.relpath}:{first.line})"
            )
        self.rule_pos[decl.name] = decl.pos
        self.rules.append((decl, base))

    def finish(self) -> list[Rule]:
        """Build every rule once all statements ran (so `config` is complete)."""
        return [self._rule(decl, base) for decl, base in self.rules]

    # expressions ----------------------------------------------------------

    def eval(self, expr: syntax.Expr) -> Any:
        """The value of ``expr``; brackets nested deeper than Python can
        recurse are an error at the expression, not a crash."""
        try:
            return self._eval(expr)
        except RecursionError:
            raise expr.pos.error(
                "brackets and calls nested too deeply to evaluate (keep nesting under a few hundred levels)"
            ) from None

    def _eval(self, expr: syntax.Expr) -> Any:
        if isinstance(expr, syntax.Literal):
            return expr.value
        if isinstance(expr, syntax.Var):
            if expr.name in self.env:
                return self.env[expr.name]
            if expr.name in _CONSTANTS:
                return _CONSTANTS[expr.name]
            raise expr.pos.error(f"unknown variable '{expr.name}'")
        if isinstance(expr, syntax.ListExpr):
            return [self._eval(item) for item in expr.items]
        if isinstance(expr, syntax.DictExpr):
            result = {}
            for key_expr, value_expr in expr.pairs:
                key = self._eval(key_expr)
                if not isinstance(key, (str, int, float, bool)):
                    raise key_expr.pos.error("a dict key must be a string or a number")
                result[key] = self._eval(value_expr)
            return result
        if isinstance(expr, syntax.GetItem):
            return self._lookup(expr, self._eval(expr.target), self._eval(expr.key))
        if isinstance(expr, syntax.GetAttr):
            target = self._eval(expr.target)
            if not isinstance(target, dict):
                raise expr.pos.error(f"cannot read '.{expr.name}' of a {_type_name(target)}")
            return self._lookup(expr, target, expr.name)
        if isinstance(expr, syntax.Call):
            return self._call(expr)
        raise AssertionError(f"unhandled expression {expr!r}")

    @staticmethod
    def _lookup(expr: syntax.Expr, target: Any, key: Any) -> Any:
        if isinstance(target, dict):
            if key in target:
                return target[key]
            raise expr.pos.error(f"key '{key}' not found")
        if isinstance(target, (list, str)) and isinstance(key, int) and not isinstance(key, bool):
            if -len(target) <= key < len(target):
                return target[key]
            raise expr.pos.error(f"index {key} out of range (length {len(target)})")
        raise expr.pos.error(f"cannot index a {_type_name(target)} with {key!r}")

    def _call(self, call: syntax.Call) -> Any:
        args = [self._eval(a) for a in call.args]
        kwargs = {name: (self._eval(value), value.pos) for name, value in call.kwargs}
        if call.function == "expand":
            return self._expand(call, args, kwargs)
        if call.function in OUTPUT_MARKERS:
            if len(args) != 1 or kwargs:
                raise call.pos.error(f"{call.function}() takes exactly one path")
            inner = args[0]
            if isinstance(inner, str):
                return Marked(inner, frozenset({call.function}))
            if isinstance(inner, Marked):
                return Marked(inner.path, inner.markers | {call.function})
            raise call.pos.error(f"{call.function}() takes a path string, not a {_type_name(inner)}")
        known = ", ".join(("expand", *OUTPUT_MARKERS))
        raise call.pos.error(f"unknown function '{call.function}' (known: {known})")

    def _expand(self, call: syntax.Call, args: list[Any], kwargs: dict[str, tuple[Any, Pos]]) -> list[str]:
        """Snakemake's expand(): every pattern formatted with every combination
        (the product of the keyword lists, or their zip)."""
        if not args or len(args) > 2 or (len(args) == 2 and args[1] is not _ZIP):
            raise call.pos.error("expand() takes a pattern (or a list of them), optionally zip, and keyword lists")
        patterns = args[0] if isinstance(args[0], list) else [args[0]]
        names = list(kwargs)
        lists = []
        for name, (value, pos) in kwargs.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                    raise pos.error(f"expand(): values of '{name}' must be strings or numbers")
            lists.append([_scalar_text(v) for v in values])
        if len(args) == 2:
            if len({len(values) for values in lists}) > 1:
                raise call.pos.error("expand(..., zip, ...) needs lists of equal length")
            combos = list(zip(*lists))
        else:
            combos = list(itertools.product(*lists))
        result: list[str] = []
        for pattern_text in patterns:
            if not isinstance(pattern_text, str):
                raise call.pos.error("expand(): a pattern must be a string")
            try:
                pattern = parse_pattern(pattern_text)
            except PatternError as exc:
                raise call.pos.error(f"expand(): {exc}") from None
            for combo in combos:
                values = dict(zip(names, combo))
                missing = [w for w in pattern.wildcards if w not in values]
                if missing:
                    raise call.pos.error(
                        f"expand(): no values for {{{missing[0]}}} (write {{{{{missing[0]}}}}} to keep it a wildcard)"
                    )
                # literals unescape, so {{x}} becomes the wildcard {x}; values stay literal
                result.append(
                    "".join(
                        p if isinstance(p, str) else values[p.name].replace("{", "{{").replace("}", "}}")
                        for p in pattern.parts
                    )
                )
        return result

    # rules ----------------------------------------------------------------

    def _rule(self, decl: syntax.RuleDecl, base: str) -> Rule:
        sections: dict[str, syntax.Section] = {}
        for section in decl.sections:
            if section.name not in SECTIONS:
                raise section.pos.error(
                    f"unknown section '{section.name}' in rule '{decl.name}' (expected one of: {', '.join(SECTIONS)})"
                )
            if section.name in sections:
                raise section.pos.error(f"section '{section.name}' given twice in rule '{decl.name}'")
            if not section.items:
                raise section.pos.error(f"section '{section.name}' is empty")
            sections[section.name] = section

        wdir = base
        if "wdir" in sections:
            wdir_text = self._single(sections["wdir"], str)
            wdir = posixpath.normpath(posixpath.join(base, _literal_path(wdir_text, sections["wdir"].pos)))
            if wdir.startswith("/") or wdir == ".." or wdir.startswith("../"):
                raise sections["wdir"].pos.error(
                    f"refusing wdir '{wdir_text}' of rule '{decl.name}': it is outside the project root"
                    " (outputs and wdir must stay inside the project)"
                )
        outputs = self._paths(sections.get("output"), wdir, allow_markers=True)
        for item in outputs:
            _refuse_outside_output(item, decl.name)
        wildcards = tuple(dict.fromkeys(w for item in outputs for w in item.pattern.wildcards))
        for item in outputs:  # else a match on one output could not name the others
            lacking = [w for w in wildcards if w not in item.pattern.wildcards]
            if lacking:
                raise item.pos.error(
                    f"every output of rule '{decl.name}' must use the same wildcards;"
                    f" this one lacks {{{lacking[0]}}}"
                )
        inputs = self._paths(sections.get("input"), wdir, allow_markers=False)
        for item in inputs:
            for name in item.pattern.wildcards:
                if name not in wildcards:
                    raise item.pos.error(
                        f"wildcard '{{{name}}}' in the input of rule '{decl.name}' does not appear in its output"
                    )
        if wildcards and "@" in decl.name:
            raise decl.pos.error(f"rule '{decl.name}' has wildcards, so its name cannot contain '@'")
        params = self._params(sections.get("params"), wildcards, decl.name)
        shell = tuple(
            self._shell_command(item, decl.name, inputs, outputs, wildcards)
            for item in self._strings(sections.get("shell"))
        )
        if outputs and not shell:
            raise decl.pos.error(f"rule '{decl.name}' has an output but no shell command")
        return Rule(
            name=decl.name,
            pos=decl.pos,
            wdir=wdir,
            inputs=inputs,
            outputs=outputs,
            params=params,
            shell=shell,
            frozen=self._flag(sections.get("frozen")),
            always_changed=self._flag(sections.get("always_changed")),
            desc=self._single(sections["desc"], str) if "desc" in sections else None,
            wildcards=wildcards,
        )

    def _single(self, section: syntax.Section, kind: type) -> Any:
        item = section.items[0]
        if len(section.items) > 1 or item.name is not None:
            raise section.pos.error(f"section '{section.name}' takes exactly one value")
        value = self.eval(item.expr)
        if not isinstance(value, kind):
            raise item.pos.error(f"'{section.name}' must be a {kind.__name__}, not a {_type_name(value)}")
        return value

    def _flag(self, section: syntax.Section | None) -> bool:
        return bool(self._single(section, bool)) if section else False

    def _values(self, section: syntax.Section | None) -> Iterable[tuple[syntax.Item, Any]]:
        """Each item's value(s), lists flattened, with the item they came from."""
        if section is None:
            return
        for item in section.items:
            value = self.eval(item.expr)
            if not isinstance(value, list):
                yield item, value
                continue
            # depth first, in order; a stack of iterators, as popping the
            # front of a list copies the rest (quadratic in a 50,000-item list)
            stack = [iter(value)]
            while stack:
                for element in stack[-1]:
                    if isinstance(element, list):
                        stack.append(iter(element))
                        break
                    yield item, element
                else:
                    stack.pop()

    def _strings(self, section: syntax.Section | None) -> Iterable[tuple[syntax.Item, str]]:
        """Positional string items (shell commands, params entries)."""
        if section is None:
            return
        for item, value in self._values(section):
            if item.name is not None:
                raise item.pos.error(f"section '{section.name}' takes no named items")
            if not isinstance(value, str):
                raise item.pos.error(f"expected a string in '{section.name}', not a {_type_name(value)}")
            yield item, value

    def _paths(self, section: syntax.Section | None, wdir: str, *, allow_markers: bool) -> tuple[PathItem, ...]:
        items: list[PathItem] = []
        for item, value in self._values(section):
            markers: frozenset[str] = _NO_MARKERS
            if isinstance(value, Marked):
                if not allow_markers:
                    raise item.pos.error(f"{'/'.join(sorted(value.markers))}() marks outputs, not inputs")
                markers, value = value.markers, value.path
                if {"metric", "plot"} <= markers:
                    raise item.pos.error("an output cannot be both metric() and plot()")
            if not isinstance(value, str) or not value:
                raise item.pos.error(f"expected a path string, not {_type_name(value)}")
            patterns = self.path_patterns.get((value, wdir))
            if patterns is None:
                try:
                    pattern = parse_pattern(value)
                except PatternError as exc:
                    raise item.pos.error(f"{exc} in '{value}'") from None
                patterns = self.path_patterns[value, wdir] = (pattern, pattern.joined(wdir))
            pattern, rooted = patterns
            if not allow_markers and pattern.wildcards and any(w.constraint for w in pattern.parts if not isinstance(w, str)):
                raise item.pos.error("wildcard constraints belong in output patterns")
            items.append(PathItem(item.pos, item.name, pattern, rooted, markers))
        return tuple(items)

    def _params(self, section: syntax.Section | None, wildcards: tuple[str, ...], rule: str) -> tuple[ParamsItem, ...]:
        items: list[ParamsItem] = []
        for item, text in self._strings(section):
            if text not in self.params_patterns:
                self.params_patterns[text] = _params_patterns(text, item.pos)
            file, keys = self.params_patterns[text]
            for pattern in ([file] if file else []) + list(keys or ()):
                for name in pattern.wildcards:
                    if name not in wildcards:
                        raise item.pos.error(f"wildcard '{{{name}}}' in params of rule '{rule}' does not appear in its output")
            items.append(ParamsItem(item.pos, text, file, keys))
        return tuple(items)

    def _shell_command(self, entry: tuple[syntax.Item, str], rule: str, inputs, outputs, wildcards) -> ShellCommand:
        item, text = entry
        # the parts depend only on the text and on what the placeholders can name
        key = (text, tuple(i.name for i in inputs), tuple(o.name for o in outputs), wildcards)
        parts = self.shell_parts.get(key)
        if parts is None:
            parts = self.shell_parts[key] = self._shell_parts(item, text, rule, inputs, outputs, wildcards)
        return ShellCommand(item.pos, parts)

    def _shell_parts(self, item: syntax.Item, text: str, rule: str, inputs, outputs, wildcards) -> tuple[str | Placeholder, ...]:
        parts: list[str | Placeholder] = []
        for literal, field_text in _split_format(text, item.pos):
            if literal:
                parts.append(literal)
            if field_text is None:
                continue
            placeholder = _placeholder(field_text, item.pos, rule, inputs, outputs, wildcards)
            if placeholder.kind == "config":  # config is complete by now: render once
                parts.append(_config_text(_config_value(self.env["config"], placeholder.keys, item.pos)))
            else:
                parts.append(placeholder)
        return tuple(parts)


def _params_patterns(text: str, pos: Pos) -> tuple[Pattern | None, tuple[Pattern, ...] | None]:
    """A params entry -- ``key``, ``a,b``, ``file:key``, ``file:`` -- as the
    file pattern (None: the default) and key patterns (None: the whole file)."""
    file_text, colon, keys_text = text.rpartition(":") if ":" in text else ("", "", text)
    try:
        file = parse_pattern(file_text) if colon else None
        if keys_text.strip():
            keys = tuple(parse_pattern(k.strip()) for k in keys_text.split(",") if k.strip())
        elif colon:
            keys = None
        else:
            raise PatternError("empty params key")
    except PatternError as exc:
        raise pos.error(f"{exc} in params '{text}'") from None
    return file, keys


def _refuse_outside_output(item: PathItem, rule: str) -> None:
    """An output that leaves the project whatever its wildcards stand for
    (absolute, the root, ``..``) is refused where it is written."""
    parts = item.rooted.parts
    sample = "".join(part if isinstance(part, str) else "w" for part in parts)
    reason = outside_reason(sample)
    if reason is not None:
        written = "".join(part if isinstance(part, str) else "{" + part.name + "}" for part in item.pattern.parts)
        raise item.pos.error(
            f"refusing output '{written}' of rule '{rule}': {reason} (outputs and wdir must stay inside the project)"
        )


def _literal_path(text: str, pos: Pos) -> str:
    try:
        pattern = parse_pattern(text)
    except PatternError as exc:
        raise pos.error(str(exc)) from None
    if not pattern.is_concrete:
        raise pos.error("wdir cannot contain wildcards")
    return pattern.format({})


_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _split_format(text: str, pos: Pos) -> list[tuple[str, str | None]]:
    """``(literal, field)`` pairs of a shell template; ``{{``/``}}`` are braces."""
    pieces: list[tuple[str, str | None]] = []
    literal: list[str] = []
    start = 0
    for found in _FIELD.finditer(text):
        literal.append(text[start : found.start()])
        start = found.end()
        token = found.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token in ("{", "}"):
            raise pos.error(f"single '{token}' in shell command (write '{token}{token}' for a literal brace)")
        else:
            pieces.append(("".join(literal), found.group(1).strip()))
            literal = []
    literal.append(text[start:])
    pieces.append(("".join(literal), None))
    return pieces


_PLACEHOLDER = re.compile(
    r"(?P<io>input|output)(?:\[(?P<index>\d+)\]|\.(?P<name>[A-Za-z_]\w*))?\Z"
    r"|wildcards\.(?P<wildcard>[A-Za-z_]\w*)\Z"
    r"|config(?P<keys>(?:\.[\w\-]+|\[[^\]]+\])+)\Z"
)


def _placeholder(text: str, pos: Pos, rule: str, inputs, outputs, wildcards) -> Placeholder:
    found = _PLACEHOLDER.match(text)
    if not found:
        raise pos.error(
            f"unknown placeholder '{{{text}}}' in rule '{rule}' (use input, input[N], input.NAME, "
            "output, output[N], output.NAME, wildcards.NAME, config.KEY; '{{' for a literal brace)"
        )
    if found.group("io"):
        kind = found.group("io")
        items = inputs if kind == "input" else outputs
        if found.group("index") is not None:
            index = int(found.group("index"))
            if index >= len(items):
                raise pos.error(f"'{{{text}}}': rule '{rule}' has {len(items)} {kind} item(s)")
            return Placeholder(kind, index=index, items=(index,))
        if found.group("name"):
            name = found.group("name")
            named = tuple(i for i, item in enumerate(items) if item.name == name)
            if not named:
                known = ", ".join(sorted({i.name for i in items if i.name})) or "none"
                raise pos.error(f"'{{{text}}}': rule '{rule}' has no {kind} named '{name}' (named: {known})")
            return Placeholder(kind, name=name, items=named)
        return Placeholder(kind, items=tuple(range(len(items))))
    if found.group("wildcard"):
        name = found.group("wildcard")
        if name not in wildcards:
            raise pos.error(f"'{{{text}}}': rule '{rule}' has no wildcard '{name}' (its outputs define: {', '.join(wildcards) or 'none'})")
        return Placeholder("wildcards", name=name)
    keys = tuple(k.strip("'\"") for k in re.findall(r"\.([\w\-]+)|\[([^\]]+)\]", found.group("keys")) for k in k if k)
    return Placeholder("config", keys=keys)


def _config_value(config: Any, keys: tuple[str, ...], pos: Pos) -> Any:
    value = config
    for depth, key in enumerate(keys):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            dotted = ".".join(keys[: depth + 1])
            raise pos.error(f"'{{config.{'.'.join(keys)}}}': config has no key '{dotted}'")
    if isinstance(value, dict):
        raise pos.error(f"'{{config.{'.'.join(keys)}}}' is a mapping; name one of its keys")
    return value



def _config_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_scalar_text(v) for v in value)
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(value: Any) -> str:
    return {str: "string", int: "number", float: "number", bool: "boolean", list: "list",
            dict: "dict", type(None): "null", Marked: "marked output"}.get(type(value), type(value).__name__)


def _deep_update(target: dict, new: Mapping) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _error(pos: Pos | None, message: str) -> PipelineError:
    return pos.error(message) if pos else PipelineError(message)
