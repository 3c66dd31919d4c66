"""The remotes a DVC project already has: reading them, read-only.

A fresh clone of a DVC project holds ``dvc.lock`` but not the outputs; they
are in the DVC remote of ``.dvc/config`` (``.dvc/config.local`` overrides,
``[core] remote`` is the default).  For every stage without a pivot record
whose ``dvc.lock`` entry names md5 outputs, ``fetch`` downloads them into
DVC's own cache (``.dvc/cache/``, DVC's layout, so ``dvc`` can use them
too), verifying each md5 as DVC does, and ``pull`` then writes them into
the workspace, where pivot adopts the stages (``docs/state.md``).

Layouts: DVC 3 keeps ``<url>/files/md5/<md5[:2]>/<md5[2:]>``; entries
without ``hash: md5`` come from DVC 2, which kept ``<url>/<md5[:2]>/...``
and hashed text files after CRLF -> LF.  A directory is a ``.dir`` object,
``json.dumps`` of ``[{"md5", "relpath"}]`` sorted by path, whose md5 is its
name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pivot.errors import PivotError
from pivot.remote.config import ConfigError, Remote, RemoteSettings
from pivot.remote.storage import DVC_LEGACY_OBJECTS, DVC_OBJECTS, Kind, RemoteError, RemoteStorage
from pivot.remote.transfer import Progress, TransferReport
from pivot.state.store import valid_relpath

if TYPE_CHECKING:
    from pivot.ir import Stage
    from pivot.state import State

DVC_DIR = ".dvc"
_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_HEADER = re.compile(r"""\s*\[\s*'?\s*(remote|core)\s*(?:"([^"]*)")?\s*'?\s*\]\s*$""")


def load_settings(root: Path) -> RemoteSettings:
    """DVC's remotes (``.dvc/config``, then ``.dvc/config.local``).  A
    relative local URL is relative to ``.dvc/``, as DVC reads it."""
    import configparser

    dvc_dir = root / DVC_DIR
    urls: dict[str, tuple[str, str]] = {}
    options: dict[str, dict[str, str]] = {}
    default: str | None = None
    for name in ("config", "config.local"):
        path = dvc_dir / name
        show = f"{DVC_DIR}/{name}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {show}: {exc}") from None
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=False)
        try:
            parser.read_string(_plain_ini(text), source=show)
        except configparser.Error as exc:
            raise ConfigError(f"{show} is invalid: {' '.join(str(exc).split())}") from None
        for section in parser.sections():
            if section.startswith("remote "):
                remote = section[len("remote ") :]
                values = dict(parser.items(section))
                if "url" in values:
                    urls[remote] = (_resolve(values.pop("url"), dvc_dir), show)
                options.setdefault(remote, {}).update(values)
        if parser.has_option("core", "remote"):
            default = parser.get("core", "remote").strip() or None
    remotes = {
        name: Remote(name, url, _known_options(url, options.get(name, {})), source)
        for name, (url, source) in urls.items()
    }
    return RemoteSettings(remotes, default, tuple(n for n in options if n not in urls))


def _plain_ini(text: str) -> str:
    """configobj's syntax (indented keys, ``['remote "x"']``) as plain INI."""
    lines = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            lines.append(f"[{match.group(1)} {match.group(2)}]" if match.group(2) is not None else f"[{match.group(1)}]")
        else:
            lines.append(line.strip())
    return "\n".join(lines) + "\n"


def _resolve(url: str, dvc_dir: Path) -> str:
    from pivot.remote.fs import scheme_of

    if scheme_of(url) or os.path.isabs(os.path.expanduser(url)):
        return url
    return os.path.normpath(dvc_dir / url)


def _known_options(url: str, values: dict[str, str]) -> dict[str, str]:
    """The options pivot understands for this kind of remote (DVC's
    credentials keys, if a user put any there, are never passed on)."""
    from pivot.remote.fs import COMMON_KEYS, backend_for

    try:
        allowed = COMMON_KEYS | backend_for(url).keys
    except PivotError:
        return {}
    return {k: v for k, v in values.items() if k in allowed}


# -- what DVC's lock files name ----------------------------------------------


@dataclass(frozen=True)
class DvcOutput:
    """An output as ``dvc.lock`` records it: md5 (``.dir`` for a directory)."""

    address: str
    path: str
    md5: str
    legacy: bool  # DVC 2 entry: its layout, md5 after dos2unix

    @property
    def kind(self) -> Kind:
        return DVC_LEGACY_OBJECTS if self.legacy else DVC_OBJECTS


def dvc_outputs(stages: Sequence["Stage"], state: "State") -> list[DvcOutput]:
    """The cached outputs of those ``stages`` that have no pivot record and
    whose ``dvc.lock`` entry the workspace does not match (a match is
    adopted on the way: that stage is up to date already)."""
    from pivot.state.dvclock import DvcLockRecord

    found: list[DvcOutput] = []
    for stage in stages:
        if stage.is_tracked_data or state.locks.read(stage.address) is not None:
            continue  # .dvc files: see tracked_outputs
        view = state.adopt(stage)
        if not isinstance(view, DvcLockRecord):
            continue
        for out in stage.outs:
            entry = view.out(out.path)
            if out.cache and entry is not None and _MD5.fullmatch(entry.hash):
                found.append(DvcOutput(stage.address, out.path, entry.hash, out.path in view.legacy))
    return found


def tracked_outputs(state: "State") -> tuple[list[DvcOutput], list[str]]:
    """Data tracked by ``.dvc`` files (``dvc add``) that the workspace does
    not hold as recorded, and one warning per entry that cannot be used."""
    import posixpath

    from pivot.containment import outside_reason
    from pivot.state.dvclock import md5_dir, md5_file
    from pivot.state.params import load_yaml_text

    root = state.project.root
    found: list[DvcOutput] = []
    problems: list[str] = []
    for dvc_file in _dvc_files(root):
        try:
            data = load_yaml_text((root / dvc_file).read_text(encoding="utf-8"), dvc_file)
            outs = data.get("outs") if isinstance(data, dict) else None
            if not isinstance(outs, list):
                raise PivotError("no 'outs' list")
        except (PivotError, OSError, UnicodeDecodeError) as exc:
            problems.append(f"cannot read '{dvc_file}' ({exc}); not fetching what it tracks")
            continue
        base = posixpath.dirname(dvc_file)
        for out in outs:
            md5, path = (out.get("md5"), out.get("path")) if isinstance(out, dict) else (None, None)
            if not isinstance(md5, str) or _MD5.fullmatch(md5) is None or not isinstance(path, str):
                problems.append(f"'{dvc_file}': an entry without a usable md5 and path; skipping it")
                continue
            relpath = posixpath.normpath(posixpath.join(base, path))
            reason = outside_reason(relpath)
            if reason is not None:
                problems.append(f"'{dvc_file}': refusing '{path}': {reason}")
                continue
            legacy = out.get("hash") != "md5"
            full = root / relpath
            try:
                if md5.endswith(".dir") and full.is_dir():
                    current = md5_dir(full, dos2unix=legacy, ignores=state.hasher.ignores, relpath=relpath)[0]
                elif not md5.endswith(".dir") and full.is_file():
                    current = md5_file(full, dos2unix=legacy)
                else:
                    current = None
            except OSError:
                current = None
            if current != md5:
                found.append(DvcOutput(dvc_file, relpath, md5, legacy))
    return found, problems


def _dvc_files(root: Path) -> list[str]:
    """Root-relative paths of the ``.dvc`` files, hidden directories (.git,
    .dvc, .pivot) left out."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            if name.endswith(".dvc") and not name.startswith("."):
                found.append(name if rel == "." else f"{Path(rel).as_posix()}/{name}")
    return found


def cache_path(root: Path, md5: str, legacy: bool) -> Path:
    cache = root / DVC_DIR / "cache"
    if legacy:
        return cache / md5[:2] / md5[2:]
    return cache / "files" / "md5" / md5[:2] / md5[2:]


# -- fetch -------------------------------------------------------------------


def fetch(outs: Sequence[DvcOutput], root: Path, storage: RemoteStorage, report: TransferReport,
          progress: Progress) -> None:
    """Download what ``outs`` need into ``.dvc/cache/``, each object verified."""
    lock = threading.Lock()

    def get(item: tuple[str, bool, str]) -> None:
        md5, legacy, why = item
        if cache_path(root, md5, legacy).is_file():
            with lock:
                report.already += 1
            return
        try:
            size = download(storage, root, md5, legacy)
        except FileNotFoundError:
            kind = DVC_LEGACY_OBJECTS if legacy else DVC_OBJECTS
            with lock:
                report.missing.append(f"not on DVC remote '{storage.name}': {storage.shown(kind, md5)} (for {why})")
            return
        except (PivotError, OSError) as exc:
            with lock:
                report.failed.append(f"{exc} (for {why})")
            return
        with lock:
            report.objects += 1
            report.bytes += size
        progress.advance(size)

    dirs = [(o.md5, o.legacy, f"'{o.path}' ({o.address})") for o in outs if o.md5.endswith(".dir")]
    storage.map(get, dirs)
    files: dict[tuple[str, bool], str] = {}
    for out in outs:
        why = f"'{out.path}' ({out.address})"
        if not out.md5.endswith(".dir"):
            files.setdefault((out.md5, out.legacy), why)
            continue
        for entry_md5, _ in read_manifest(root, out.md5, out.legacy) or ():
            files.setdefault((entry_md5, out.legacy), why)
    progress.start(len(files), 0)
    storage.map(get, [(md5, legacy, why) for (md5, legacy), why in files.items()])


def download(storage: RemoteStorage, root: Path, md5: str, legacy: bool) -> int:
    """One DVC object into ``.dvc/cache/``, verified; its size."""
    from pivot.remote.transfer import place_download

    kind = DVC_LEGACY_OBJECTS if legacy else DVC_OBJECTS
    return place_download(storage, kind, md5, cache_path(root, md5, legacy), lambda path: _verify(path, md5, legacy),
                          what=f"DVC remote '{storage.name}'", mode=0o444)


def _verify(path: Path, md5: str, legacy: bool) -> str | None:
    from pivot.state.dvclock import md5_file

    if md5.endswith(".dir"):
        raw = path.read_bytes()
        actual = hashlib.md5(raw).hexdigest() + ".dir"
        if actual != md5:
            return f"its md5 is {actual}, expected {md5}"
        try:
            _parse_manifest(raw)
        except ValueError as exc:
            return f"not a DVC directory manifest: {exc}"
        return None
    actual = md5_file(path, dos2unix=legacy)
    return None if actual == md5 else f"its md5 is {actual}, expected {md5}"


def _parse_manifest(raw: bytes) -> list[tuple[str, str]]:
    """(md5, relpath) of each file of a ``.dir`` object, held to safe paths."""
    try:
        items = [(e["md5"], e["relpath"]) for e in json.loads(raw)]
    except (KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    for md5, relpath in items:
        if not isinstance(md5, str) or _MD5.fullmatch(md5) is None or md5.endswith(".dir"):
            raise ValueError(f"bad md5 {md5!r}")
        if not valid_relpath(relpath):
            raise ValueError(f"unsafe path {relpath!r}")
    return items


def read_manifest(root: Path, md5: str, legacy: bool) -> list[tuple[str, str]] | None:
    try:
        return _parse_manifest(cache_path(root, md5, legacy).read_bytes())
    except (OSError, ValueError):
        return None


def open_storage(root: Path, name: str | None, jobs: int | None) -> RemoteStorage | None:
    """The DVC remote ``name`` (default: DVC's default); None when the
    project has no such DVC remote."""
    settings = load_settings(root)
    chosen = name if name is not None else settings.default
    if chosen is None or chosen not in settings.remotes:
        return None
    return RemoteStorage(settings.remotes[chosen], root, jobs)


__all__ = ["DvcOutput", "RemoteError", "dvc_outputs", "fetch", "load_settings", "open_storage"]
