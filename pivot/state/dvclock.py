"""Adopting an existing ``dvc.lock``: stages DVC already ran are up to date.

A stage with no pivot record but an entry in the ``dvc.lock`` beside its
``dvc.yaml`` is adopted when the entry matches the definition (command,
every dep, out and params file by the path as written) and the files on
disk still have the md5 hashes DVC recorded:

- ``hash: md5`` entries (DVC 3): md5 of the bytes;
- entries without ``hash:`` (DVC 2): md5 after CRLF -> LF in chunks that
  look like text (DVC's ``md5-dos2unix``);
- directories (``.dir``): md5 of ``json.dumps(sorted [{"md5", "relpath"}],
  sort_keys=True)``.

Adoption then writes an ordinary pivot record (and caches the outs), so the
md5 check happens once.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from typing import TYPE_CHECKING, Any, Mapping

from pivot.errors import PivotError
from pivot.ir import Stage
from pivot.state.notices import warn
from pivot.state.params import normalise

if TYPE_CHECKING:
    from pivot.ignore import IgnoreTree
    from pivot.state import State
    from pivot.state.locks import LockRecord

CHUNK = 1 << 20
TEXT_PROBE = 512
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def md5_file(path: str | os.PathLike[str], *, dos2unix: bool = False) -> str:
    """md5 of a file as DVC computes it (``dos2unix`` for legacy entries)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            if dos2unix and _looks_like_text(chunk[:TEXT_PROBE]):
                chunk = chunk.replace(b"\r\n", b"\n")
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_text(block: bytes) -> bool:
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


def md5_dir(
    path: str | os.PathLike[str],
    *,
    dos2unix: bool = False,
    ignores: "IgnoreTree | None" = None,
    relpath: str = "",
) -> tuple[str, int, int]:
    """DVC's ``.dir`` hash of a directory, its total size and file count.

    Walked as DVC walks: symlinks to directories are not descended, and
    paths that ``ignores`` ignores (``relpath`` is the directory's
    root-relative path) are left out; ``isexec`` is no part of the hash."""
    from pivot.ignore import is_ignored

    entries: list[dict[str, str]] = []
    size = 0
    base = "" if relpath in ("", ".") else relpath.rstrip("/") + "/"
    for dirpath, dirs, files in os.walk(path):
        inner = os.path.relpath(dirpath, path).replace(os.sep, "/")
        inner = "" if inner == "." else inner + "/"
        chain = ignores.chain((base + inner).rstrip("/"), files) if ignores is not None else ()
        if chain:
            dirs[:] = [d for d in dirs if not is_ignored(chain, base + inner + d, True)]
            files = [f for f in files if not is_ignored(chain, base + inner + f, False)]
        for name in files:
            full = os.path.join(dirpath, name)
            entries.append({"md5": md5_file(full, dos2unix=dos2unix), "relpath": inner + name})
            size += os.path.getsize(full)
    entries.sort(key=lambda e: e["relpath"])
    manifest = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(manifest).hexdigest() + ".dir", size, len(entries)


class Adopter:
    """Reads each ``dvc.lock`` once and adopts matching stages."""

    def __init__(self, state: "State") -> None:
        self.state = state
        self._locks: dict[str, Mapping[str, Any]] = {}

    def adopt(self, stage: Stage) -> "LockRecord | None":
        if posixpath.basename(stage.file) != "dvc.yaml":
            return None
        lock_path = posixpath.join(posixpath.dirname(stage.file), "dvc.lock")
        entry = self._stages(lock_path).get(stage.name)
        if not isinstance(entry, Mapping) or not self._matches(stage, entry):
            return None
        from pivot.state.record import commit_stage, snapshot

        try:
            if self.state.readonly:
                return snapshot(stage, self.state, adopted_from=lock_path)
            return commit_stage(stage, self.state, adopted_from=lock_path)
        except PivotError:
            return None

    def _stages(self, lock_path: str) -> Mapping[str, Any]:
        if lock_path in self._locks:
            return self._locks[lock_path]
        stages: Mapping[str, Any] = {}
        full = self.state.project.root / lock_path
        if full.is_file():
            from pivot.state.params import load_yaml_text

            try:
                data = load_yaml_text(full.read_text(encoding="utf-8"), lock_path)
                stages = (data.get("stages") or {}) if isinstance(data, Mapping) else {}
                if not isinstance(stages, Mapping):
                    raise PivotError("'stages' is not a mapping")
            except (PivotError, OSError, UnicodeDecodeError) as exc:
                warn(f"cannot read '{lock_path}' ({exc}); not adopting its stages")
                stages = {}
        self._locks[lock_path] = stages
        return stages

    # -- matching ------------------------------------------------------------

    def _matches(self, stage: Stage, entry: Mapping[str, Any]) -> bool:
        if not _same_cmd(stage, entry.get("cmd")):
            return False
        deps = _by_path(entry.get("deps"))
        outs = _by_path(entry.get("outs"))
        if deps is None or outs is None:
            return False
        for dep in stage.deps:
            if dep.def_path not in deps or not self._same_content(dep.path, deps[dep.def_path]):
                return False
        for out in stage.outs:
            if out.def_path not in outs or not self._same_content(out.path, outs[out.def_path]):
                return False
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            return False
        for pdep in stage.params:
            recorded = params.get(pdep.def_path)
            current = self.state.params.values(pdep)
            if not isinstance(recorded, Mapping) or current is None:
                return False
            recorded = normalise(recorded)
            if pdep.keys is None:
                if recorded != current:
                    return False
            elif any(key not in recorded or recorded[key] != current.get(key) for key in pdep.keys):
                return False
        return True

    def _same_content(self, relpath: str, entry: Mapping[str, Any]) -> bool:
        recorded = entry.get("md5")
        if not isinstance(recorded, str):
            return False
        dos2unix = entry.get("hash") != "md5"
        full = self.state.project.root / relpath
        try:
            if recorded.endswith(".dir"):
                if not full.is_dir():
                    return False
                return md5_dir(full, dos2unix=dos2unix, ignores=self.state.hasher.ignores, relpath=relpath)[0] == recorded
            if not full.is_file():
                return False
            return md5_file(full, dos2unix=dos2unix) == recorded
        except OSError:
            return False


def _same_cmd(stage: Stage, recorded: Any) -> bool:
    """dvc.lock keeps the command as written: a string or a list."""
    literal = stage.cmd_literal
    if isinstance(recorded, list):
        recorded_cmds = tuple(str(c) for c in recorded)
        if literal is not None:
            return isinstance(literal, tuple) and literal == recorded_cmds
        return recorded_cmds == stage.cmds
    if isinstance(recorded, str):
        if literal is not None:
            return isinstance(literal, str) and literal == recorded
        return tuple(recorded.splitlines()) == stage.cmds or (recorded,) == stage.cmds
    return False


def _by_path(entries: Any) -> dict[str, Mapping[str, Any]] | None:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        return None
    found: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
            found[entry["path"]] = entry
    return found
