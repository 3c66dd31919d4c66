"""Writing loaded stages back out as a Pivotfile or a dvc.yaml.

Both writers are pure: stages in, text out.  Every generated stage is
written expanded (a Pivotfile gets one rule per stage; a dvc.yaml gets a
``foreach`` over a dict keyed by the part after ``@``, so DVC names the
stages exactly as before), and loading the text again gives the same IR.
``base`` is the root-relative directory the file will live in; stage wdirs
are written relative to it, and paths stay as written (relative to wdir).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pivot.errors import PivotError
from pivot.ir import OutKind, ParamsDep, Stage

PIVOTFILE_KEYWORDS = frozenset({"rule", "include", "configfile"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DEFAULT_PARAMS_FILE = "params.yaml"


def check_unique_names(stages: Sequence[Stage]) -> None:
    """One exported file holds one namespace of stage names."""
    seen: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in seen:
            raise PivotError(
                f"stages '{seen[stage.name].address}' and '{stage.address}' share the name"
                f" '{stage.name}'; export the files separately (pass their stages as targets)"
            )
        seen[stage.name] = stage


def _wdir(stage: Stage, base: str) -> str:
    return posixpath.relpath(stage.wdir, base) if stage.wdir != base else "."


# ---------------------------------------------------------------- Pivotfile


def to_pivotfile(stages: Sequence[Stage], base: str = ".", *, header: str = "") -> str:
    """A Pivotfile with one rule per stage, in order."""
    check_unique_names(stages)
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    for stage in stages:
        if lines:
            lines.append("")
        lines.extend(_rule_lines(stage, base))
    return "\n".join(lines) + "\n"


def _rule_lines(stage: Stage, base: str) -> list[str]:
    if not stage.cmds:  # a rule without shell is a target-only rule, not a stage
        raise PivotError(f"stage '{stage.address}' has no command, which a Pivotfile rule cannot express")
    name = stage.name
    is_bare = _IDENTIFIER.match(name) and name not in PIVOTFILE_KEYWORDS
    lines = [f"rule {name if is_bare else pivotfile_string(name)}:"]
    if stage.desc is not None:
        lines.append(f"    desc: {pivotfile_string(stage.desc)}")
    wdir = _wdir(stage, base)
    if wdir != ".":
        lines.append(f"    wdir: {_pattern_string(wdir)}")
    lines += _block("input", [_pattern_string(dep.def_path) for dep in stage.deps])
    lines += _block("output", [_output_item(out.def_path, out.kind, out.cache, out.persist) for out in stage.outs])
    lines += _block("params", [pivotfile_string(p) for p in _params_items(stage)])
    lines += _block("shell", [_pattern_string(cmd) for cmd in stage.cmds])
    if stage.frozen:
        lines.append("    frozen: true")
    if stage.always_changed:
        lines.append("    always_changed: true")
    return lines


def _block(section: str, items: list[str]) -> list[str]:
    if not items:
        return []
    if len(items) == 1:
        return [f"    {section}: {items[0]}"]
    return [f"    {section}:", *(f"        {item}," for item in items)]


def _output_item(def_path: str, kind: OutKind, cache: bool, persist: bool) -> str:
    text = _pattern_string(def_path)
    if kind is OutKind.METRIC:
        text = f"metric({text})"
    elif kind is OutKind.PLOT:
        text = f"plot({text})"
    if persist:
        text = f"persist({text})"
    if not cache:
        text = f"nocache({text})"
    return text


def _params_items(stage: Stage) -> list[str]:
    """``key`` for the default params.yaml, ``file:key``, ``file:`` for a whole file;
    braces doubled, since params may hold wildcards."""
    items: list[str] = []
    for params in stage.params:
        file = _braces(params.def_path)
        if not params.keys:
            items.append(f"{file}:")
            continue
        for key in params.keys:
            if ":" in key or "," in key:
                raise PivotError(
                    f"stage '{stage.address}': params key '{key}' cannot be written in a Pivotfile"
                )
            is_default = params.def_path == DEFAULT_PARAMS_FILE
            items.append(_braces(key) if is_default else f"{file}:{_braces(key)}")
    return items


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _pattern_string(text: str) -> str:
    """A path or command as a Pivotfile string: braces doubled (they would be
    wildcards or placeholders), then quoted."""
    return pivotfile_string(_braces(text))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def pivotfile_string(text: str) -> str:
    """``text`` as a double-quoted Pivotfile string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return '"' + _CONTROL.sub(lambda m: named.get(m.group(0), f"\\x{ord(m.group(0)):02x}"), escaped) + '"'


# ---------------------------------------------------------------- dvc.yaml


def to_dvcyaml(stages: Sequence[Stage], base: str = ".", *, header: str = "") -> str:
    """A dvc.yaml; stages named ``group@key`` become one ``foreach`` entry."""
    check_unique_names(stages)
    entries: dict[str, Any] = {}
    for name, members in _grouped(stages):
        if len(members) == 1 and members[0].name == name:
            entries[name] = _stage_definition(members[0], base, _escape_dollar)
        else:
            entries[name] = _foreach_definition(name, members, base)
    body = _dump_yaml({"stages": entries})
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + body


def _grouped(stages: Sequence[Stage]) -> list[tuple[str, list[Stage]]]:
    groups: dict[str, list[Stage]] = {}
    for stage in stages:
        if stage.group and stage.name.startswith(stage.group + "@"):
            key = stage.group
            if key in groups and groups[key][0].name == key:
                raise PivotError(f"stage '{key}' and the generated stage '{stage.name}' cannot share a dvc.yaml")
        else:
            key = stage.name
            if key in groups:
                raise PivotError(f"stage '{key}' and the generated stages '{key}@...' cannot share a dvc.yaml")
        groups.setdefault(key, []).append(stage)
    return list(groups.items())


def _escape_dollar(text: str) -> str:
    """DVC interpolates ``${...}`` in every string; ``\\${`` keeps it literal."""
    return text.replace("${", "\\${")


def _stage_definition(stage: Stage, base: str, text: Callable[[str], Any]) -> dict[str, Any]:
    """The mapping DVC reads for one stage; ``text`` renders each string field
    (escaped literal, or an ``${item...}`` reference in a foreach)."""
    data: dict[str, Any] = {}
    cmd = _dvc_cmd(stage)
    data["cmd"] = text(cmd) if isinstance(cmd, str) else [text(c) for c in cmd]
    wdir = _wdir(stage, base)
    if wdir != ".":
        data["wdir"] = text(wdir)
    if stage.deps:
        data["deps"] = [text(dep.def_path) for dep in stage.deps]
    if stage.params:
        data["params"] = _dvc_params(stage.params, text)
    for section, kind in (("outs", OutKind.OUT), ("metrics", OutKind.METRIC), ("plots", OutKind.PLOT)):
        outs = [out for out in stage.outs if out.kind is kind]
        if outs:
            data[section] = [_dvc_out(out.def_path, out.cache, out.persist, text) for out in outs]
    if stage.frozen:
        data["frozen"] = True
    if stage.always_changed:
        data["always_changed"] = True
    if stage.desc is not None:
        data["desc"] = text(stage.desc)
    if stage.meta is not None:
        data["meta"] = stage.meta
    return data


def _dvc_cmd(stage: Stage) -> str | tuple[str, ...]:
    """The stage's ``cmd`` for a dvc.yaml.  As it was written when it came
    from one: ``dvc.lock`` records the string or list as written, and
    adopting the lock compares it.  Otherwise one string, or a list when
    there are several commands or one holds a newline (DVC would split a
    multi-line string into several commands)."""
    literal = stage.cmd_literal
    if isinstance(literal, str) and tuple(literal.splitlines()) == stage.cmds:
        return literal
    if isinstance(literal, tuple) and literal == stage.cmds:
        return literal
    if len(stage.cmds) == 1 and "\n" not in stage.cmds[0]:
        return stage.cmds[0]
    return stage.cmds


def _dvc_params(params: Sequence[ParamsDep], text: Callable[[str], Any]) -> list[Any]:
    entries: list[Any] = []
    for dep in params:
        if dep.keys is None or not dep.keys:
            entries.append({text(dep.def_path): None})
        elif dep.def_path == DEFAULT_PARAMS_FILE:
            entries.extend(text(key) for key in dep.keys)
        else:
            entries.append({text(dep.def_path): [text(key) for key in dep.keys]})
    return entries


def _dvc_out(def_path: str, cache: bool, persist: bool, text: Callable[[str], Any]) -> Any:
    flags: dict[str, bool] = {}
    if not cache:
        flags["cache"] = False
    if persist:
        flags["persist"] = True
    return {text(def_path): flags} if flags else text(def_path)


@dataclass
class _Slots:
    """Strings that differ between the stages of one foreach: each becomes a
    field of ``item`` (``s0``, ``s1``...), the rest are written literally."""

    per_stage: list[dict[str, str]]
    count: int = 0

    def field(self, values: list[str]) -> str:
        if all(v == values[0] for v in values):
            return _escape_dollar(values[0])
        name = f"s{self.count}"
        self.count += 1
        for fields, value in zip(self.per_stage, values):
            fields[name] = _escape_dollar(value)
        return "${item." + name + "}"


def _foreach_definition(group: str, members: list[Stage], base: str) -> dict[str, Any]:
    """``foreach`` over a dict keyed by each stage's name after ``group@``."""
    shapes = {_shape(stage, base) for stage in members}
    if len(shapes) > 1:
        raise PivotError(
            f"the stages of '{group}' differ in structure (number of commands, deps,"
            " outs or params), so they cannot be written as one dvc.yaml foreach"
        )
    slots = _Slots([{} for _ in members])
    # Render every stage with a recording `text`, then merge field by field.
    rendered: list[list[str]] = []
    for stage in members:
        seen: list[str] = []
        _stage_definition(stage, base, lambda value, seen=seen: seen.append(value) or value)
        rendered.append(seen)
    merged = iter([slots.field([r[i] for r in rendered]) for i in range(len(rendered[0]))])
    template = _stage_definition(members[0], base, lambda value: next(merged))
    keys = [stage.name[len(group) + 1 :] for stage in members]
    return {"foreach": dict(zip(keys, slots.per_stage)), "do": template}


def _shape(stage: Stage, base: str) -> tuple[Any, ...]:
    return (
        len(stage.cmds),
        isinstance(_dvc_cmd(stage), str),
        _wdir(stage, base) == ".",
        len(stage.deps),
        tuple((p.def_path == DEFAULT_PARAMS_FILE, None if p.keys is None else len(p.keys)) for p in stage.params),
        tuple((o.kind, o.cache, o.persist) for o in stage.outs),
        stage.frozen,
        stage.always_changed,
        stage.desc is None,
        repr(stage.meta),
    )


# YAML 1.2 (which DVC reads) resolves these plain scalars to non-strings; PyYAML
# (YAML 1.1) would write some of them bare, so they are quoted explicitly.
_YAML12_NON_STRING = re.compile(
    r"""(?x)
    ~|null|Null|NULL|true|True|TRUE|false|False|FALSE
    |[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+
    |[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    |[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)
    |yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N
    """
)


def _dump_yaml(data: Any) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = '"' if _YAML12_NON_STRING.fullmatch(value) else None
        if "\n" in value:
            style = '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_str)
    return yaml.dump(
        data, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000
    )
