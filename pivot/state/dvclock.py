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

Inspection (``status``, ``plan``, ``why``) only decides adoption; ``run``
(and ``emit``) then write an ordinary pivot record and cache the outs
(``record.persist_adoptions``), so the md5 check happens once more at most.

A ``dvc.lock`` comes with the checkout, so its md5s are untrusted: only
32 lowercase hex digits (plus ``.dir`` for directories) count as an md5;
anything else makes its entry unusable (never adopted, never restored) and
is never turned into a path.  What is copied from DVC's cache is hashed on
the way and placed only when its md5 is the recorded one.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Mapping

from pivot.errors import PivotError
from pivot.ir import Stage
from pivot.state.locks import LockEntry, LockRecord
from pivot.state.notices import warn
from pivot.state.params import normalise

if TYPE_CHECKING:
    from pivot.ignore import IgnoreTree
    from pivot.state import State
    from pivot.state.hashing import HashInfo

CHUNK = 1 << 20
FILE_MD5 = re.compile(r"[0-9a-f]{32}")
DIR_MD5 = re.compile(r"[0-9a-f]{32}\.dir")
TEXT_PROBE = 512
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def valid_md5(value: object) -> str | None:
    """``value`` as an md5 DVC could have written (a file's, or a directory's
    with ``.dir``), lowercased as DVC's schema does; None for anything else."""
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value if FILE_MD5.fullmatch(value) or DIR_MD5.fullmatch(value) else None


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
    file_md5: "Callable[[str, str], str] | None" = None,
) -> tuple[str, int, int]:
    """DVC's ``.dir`` hash of a directory, its total size and file count.

    Walked as DVC walks: symlinks to directories are not descended, and
    paths that ``ignores`` ignores (``relpath`` is the directory's
    root-relative path) are left out; ``isexec`` is no part of the hash.
    ``file_md5(path, root-relative path)``, when given, hashes each file
    (the stat-cached way)."""
    from pivot.ignore import is_ignored

    entries: list[dict[str, str]] = []
    size = 0
    base = "" if relpath in ("", ".") else relpath.rstrip("/") + "/"
    for dirpath, dirs, files in os.walk(path):
        inner = os.path.relpath(dirpath, path).replace(os.sep, "/")
        inner = "" if inner == "." else inner + "/"
        if inner and ".dvc" in dirs:
            dirs[:] = []  # a DVC repository of its own (a subrepo): not part of the hash
            continue
        chain = ignores.chain((base + inner).rstrip("/"), files) if ignores is not None else ()
        if chain:
            dirs[:] = [d for d in dirs if not is_ignored(chain, base + inner + d, True)]
            files = [f for f in files if not is_ignored(chain, base + inner + f, False)]
        for name in files:
            full = os.path.join(dirpath, name)
            digest = file_md5(full, base + inner + name) if file_md5 else md5_file(full, dos2unix=dos2unix)
            entries.append({"md5": digest, "relpath": inner + name})
            size += os.path.getsize(full)
    entries.sort(key=lambda e: e["relpath"])
    manifest = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(manifest).hexdigest() + ".dir", size, len(entries)


@dataclass(frozen=True)
class DvcLockRecord(LockRecord):
    """A ``dvc.lock`` entry that no longer matches, as a record to compare
    with: hashes are DVC's md5s (``legacy`` paths: md5 after dos2unix), so
    the current side must be hashed the same way (``current_hash``)."""

    legacy: frozenset[str] = frozenset()
    adopter: "Adopter | None" = field(default=None, compare=False, repr=False)

    def current_hash(self, relpath: str) -> "HashInfo | None":
        assert self.adopter is not None
        return self.adopter.md5(relpath, dos2unix=relpath in self.legacy)

    def dvc_object(self, relpath: str) -> "Path | None":
        """DVC's cache object for a recorded file out, if DVC's cache holds it."""
        from pivot.state import dvccache

        entry = self.out(relpath)
        if self.adopter is None or entry is None or not FILE_MD5.fullmatch(entry.hash) or relpath in self.legacy:
            return None
        obj = dvccache.object_path(self.adopter.dvc_cache, entry.hash)
        try:  # DVC stores objects as plain files; a symlink could lead anywhere
            return obj if obj is not None and stat.S_ISREG(os.lstat(obj).st_mode) else None
        except OSError:
            return None

    def in_dvc_cache(self, entry: LockEntry) -> bool:
        """Whether DVC's cache holds the recorded object of ``entry`` (an out)."""
        from pivot.state import dvccache

        if self.adopter is None:
            return False
        return dvccache.contains(self.adopter.dvc_cache, entry.hash, legacy=entry.path in self.legacy)


class Adopter:
    """Reads each ``dvc.lock`` once and adopts matching stages."""

    def __init__(self, state: "State") -> None:
        self.state = state
        self._locks: dict[str, Mapping[str, Any]] = {}
        self._md5s: dict[tuple[str, bool], "HashInfo | None"] = {}
        self.files_read = 0  # how many files had their md5 computed (tests, benchmarks)

    @cached_property
    def dvc_cache(self) -> Path:
        """DVC's cache directory (``cache.dir``), read once per command."""
        from pivot.state import dvccache

        return dvccache.cache_dir(self.state.project.root)

    def adopt(self, stage: Stage) -> "LockRecord | None":
        """The stage's record: adopted (a snapshot, not written) when its ``dvc.lock`` entry
        matches the workspace, else a ``DvcLockRecord`` to compare with
        (DVC's exact reasons), or None when there is no usable entry."""
        found = self._entry(stage)
        if found is None:
            return None
        entry, lock_path = found
        if self._matches(stage, entry):
            from pivot.state.record import snapshot

            try:  # decided here, written by run/commit (record.persist_adoptions)
                return snapshot(stage, self.state, adopted_from=lock_path)
            except PivotError:
                pass
        return self._view(stage, entry, lock_path)

    def _entry(self, stage: Stage) -> tuple[Mapping[str, Any], str] | None:
        """What DVC recorded for ``stage`` and where: its ``dvc.lock`` entry,
        or for tracked data the ``.dvc`` file itself."""
        if stage.is_tracked_data:
            entry = self._tracked(stage.file)
            return (entry, stage.file) if entry is not None else None
        if not stage.in_dvc_yaml:  # a Pivotfile's stage
            return None
        lock_path = posixpath.join(posixpath.dirname(stage.file), "dvc.lock")
        entry = self._stages(lock_path).get(stage.name)
        return (entry, lock_path) if isinstance(entry, Mapping) else None

    def _tracked(self, relpath: str) -> Mapping[str, Any] | None:
        if relpath not in self._locks:
            from pivot.state.params import load_yaml_text

            try:
                data = load_yaml_text((self.state.project.root / relpath).read_text(encoding="utf-8"), relpath)
            except (PivotError, OSError, UnicodeDecodeError):
                data = None
            self._locks[relpath] = data if isinstance(data, Mapping) else {}
        return self._locks[relpath] or None

    def outs_not_in_dvc_cache(self, stage: Stage) -> list[str]:
        """The cached outs of ``stage`` whose ``dvc.lock`` object DVC's cache
        lacks: what ``dvc status`` calls "not in cache" (a fresh clone)."""
        from pivot.state import dvccache

        found = self._entry(stage)
        outs = _by_path(found[0].get("outs")) if found is not None else None
        missing = []
        for out in stage.outs:
            recorded = (outs or {}).get(out.def_path)
            digest = recorded.get("md5") if recorded is not None else None
            if out.cache and isinstance(digest, str) and not dvccache.contains(
                    self.dvc_cache, digest, legacy=recorded.get("hash") != "md5"):
                missing.append(out.path)
        return missing

    def _view(self, stage: Stage, entry: Mapping[str, Any], lock_path: str) -> "DvcLockRecord | None":
        """The ``dvc.lock`` entry as a record of md5 hashes, keyed like pivot's."""
        deps = _by_path(entry.get("deps"))
        outs = _by_path(entry.get("outs"))
        params = entry.get("params") or {}
        if deps is None or outs is None or not isinstance(params, Mapping):
            return None
        legacy: set[str] = set()

        def entries(items, recorded) -> tuple[LockEntry, ...]:
            found = []
            for item in items:
                data = recorded.get(item.def_path)
                if data is None:
                    continue
                digest, size, nfiles = valid_md5(data.get("md5")), data.get("size"), data.get("nfiles")
                if data.get("hash") != "md5":
                    legacy.add(item.path)
                found.append(LockEntry(item.path, digest or "",
                                       size if type(size) is int else 0, nfiles if type(nfiles) is int else None))
            return tuple(found)

        recorded_params: dict[str, dict[str, Any]] = {}
        for pdep in stage.params:
            values = params.get(pdep.def_path)
            if isinstance(values, Mapping):
                recorded_params[pdep.path] = normalise(values)
        same = stage.is_tracked_data or _same_cmd(stage, entry.get("cmd"))
        cmd = stage.cmds if same else _recorded_cmd(entry.get("cmd"), stage)
        return DvcLockRecord(
            address=stage.address,
            cmd=cmd,
            deps=entries(stage.deps, deps),
            params=recorded_params,
            outs=entries(stage.outs, outs),
            adopted_from=lock_path,
            legacy=frozenset(legacy),
            adopter=self,
        )

    def md5(self, relpath: str, *, dos2unix: bool) -> "HashInfo | None":
        """DVC's hash of a workspace path (None when missing), once per command."""
        key = (relpath, dos2unix)
        if key in self._md5s:
            return self._md5s[key]
        from pivot.state.hashing import HashInfo

        full = self.state.project.root / relpath
        variant = "md5-dos2unix" if dos2unix else "md5"
        statdb = self.state.statdb

        def file_md5(path: str, inner_relpath: str) -> str:
            # stat-cached as pivot's own hashes are: a never-run DVC project
            # is not read in full by every status until pivot records it
            st = os.stat(path)
            known = statdb.lookup_md5(inner_relpath, variant, st)
            if known is not None:
                return known
            digest = md5_file(path, dos2unix=dos2unix)
            self.files_read += 1
            statdb.store_md5(inner_relpath, variant, st, digest)
            return digest

        info = None
        try:
            if full.is_dir():
                digest, size, nfiles = md5_dir(full, dos2unix=dos2unix, ignores=self.state.hasher.ignores,
                                               relpath=relpath, file_md5=file_md5)
                info = HashInfo(digest, size, nfiles)
            elif full.is_file():
                info = HashInfo(file_md5(str(full), relpath), full.stat().st_size)
        except OSError:
            info = None
        self._md5s[key] = info
        return info

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
        if not stage.is_tracked_data and not _same_cmd(stage, entry.get("cmd")):
            return False
        deps = _by_path(entry.get("deps"))
        outs = _by_path(entry.get("outs"))
        if deps is None or outs is None:
            return False
        for out in stage.outs:
            if out.def_path not in outs or not self._same_content(out.path, outs[out.def_path]):
                return False
        if stage.frozen:
            return True  # DVC checks neither deps nor params of a frozen stage
        for dep in stage.deps:
            if dep.def_path not in deps or not self._same_content(dep.path, deps[dep.def_path]):
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
        recorded = valid_md5(entry.get("md5"))
        if recorded is None:
            return False
        info = self.md5(relpath, dos2unix=entry.get("hash") != "md5")
        return info is not None and info.hash == recorded and info.is_dir == recorded.endswith(".dir")


def _recorded_cmd(recorded: Any, stage: Stage) -> tuple[str, ...]:
    """The command DVC recorded, as pivot keeps commands (differs from the stage's)."""
    if isinstance(recorded, list):
        cmds = tuple(str(c) for c in recorded)
    elif isinstance(recorded, str):
        cmds = (recorded,)
    else:
        cmds = ()
    # same text written as a string vs. a list is still a changed command for DVC
    return cmds if cmds != stage.cmds else (*cmds, "")


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


def restore_from_dvc_cache(stage: Stage, state: "State", record: DvcLockRecord) -> LockRecord:
    """Put back the outs DVC's own cache holds as ``dvc.lock`` recorded them
    (what ``dvc repro`` does by checking them out), then record the stage
    as adopted.  Each file is copied to a temporary name beside it, hashed
    on the way, and renamed only when its md5 is the recorded one, so a
    failure leaves the old file or none, never half of one or another.
    A damaged or foreign object raises ``CorruptObject``: the stage runs."""
    import shutil
    import tempfile

    from pivot.containment import writable_path
    from pivot.state.record import commit_stage
    from pivot.state.store import CorruptObject

    root = state.project.root
    for out in stage.outs:
        entry = record.out(out.path)
        current = record.current_hash(out.path)
        if entry is None or (current is not None and current.hash == entry.hash):
            continue
        obj = record.dvc_object(out.path)
        if obj is None:
            raise PivotError(f"stage '{stage.address}': '{out.path}' is not in DVC's cache (.dvc/cache)")
        target = writable_path(root, out.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as dst, open(obj, "rb") as src:
                digest = _copy_hashing(src, dst)
            if digest != entry.hash:
                raise CorruptObject(
                    f"DVC's cache object for '{out.path}' does not have the md5 dvc.lock records"
                    f" ({entry.hash}, found {digest}); not restoring it"
                )
            os.chmod(temp, 0o666 & ~_umask())
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(temp, target)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        state.hasher.invalidate(out.path)
    return commit_stage(stage, state, adopted_from=record.adopted_from)


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    """Copy ``src`` to ``dst``; the md5 of what was copied (DVC 3: raw bytes)."""
    digest = hashlib.md5()
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
