"""Where DVC keeps its cache, and whether it holds an object.

DVC's cache is ``.dvc/cache`` unless ``cache.dir`` says otherwise in
``.dvc/config`` or ``.dvc/config.local`` (the local file wins; a relative
directory is relative to ``.dvc/``, which is how monorepos share one cache).
DVC 3 keeps md5 objects (``hash: md5`` entries) under ``files/md5/xx/rest``
and DVC 2's (``md5-dos2unix``, entries without ``hash:``) in the legacy
layout ``xx/rest`` at the cache's top.  A directory is a ``.dir`` object
(a JSON list of ``{"md5", "relpath"}``) plus its files' objects.

Only reads; DVC's cache is never written by pivot.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_SECTION = re.compile(r"\s*\[\s*(?P<name>[^\]]+?)\s*\]\s*$")
_OPTION = re.compile(r"\s*(?P<key>[A-Za-z0-9_.-]+)\s*=\s*(?P<value>.*?)\s*$")


def valid_md5(digest: object, *, directory: bool | None = None) -> bool:
    """A DVC md5: 32 lower-case hex digits, ``.dir`` suffixed for directories
    (``directory=None`` accepts both).  Anything else never names a path."""
    if not isinstance(digest, str) or _MD5.fullmatch(digest) is None:
        return False
    return directory is None or digest.endswith(".dir") == directory


def _options(path: Path, section: str) -> dict[str, str]:
    """The options of ``[section]`` in a DVC config file (configobj's INI:
    indented keys, ``#`` comments, optional quotes)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}
    current = None
    for line in lines:
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if match := _SECTION.match(line):
            current = match["name"].strip("'\"")
            continue
        if current == section and (match := _OPTION.match(line)):
            found[match["key"]] = match["value"].strip("'\"")
    return found


def cache_dir(root: Path) -> Path:
    """The DVC cache directory of the project at ``root``."""
    dvc_dir = root / ".dvc"
    configured = None
    for name in ("config", "config.local"):  # later files win, as in DVC
        value = _options(dvc_dir / name, "cache").get("dir")
        if value:
            configured = value
    if configured is None:
        return dvc_dir / "cache"
    path = Path(os.path.expanduser(configured))
    return path if path.is_absolute() else Path(os.path.normpath(dvc_dir / path))


def object_path(top: Path, digest: str, *, legacy: bool = False) -> Path | None:
    """Where DVC's cache ``top`` keeps the object ``digest``; None for a
    digest that is not an md5 (it would name some other path)."""
    if not valid_md5(digest):
        return None
    base = top if legacy else top / "files" / "md5"
    return base / digest[:2] / digest[2:]


def contains(top: Path, digest: str, *, legacy: bool = False) -> bool:
    """Whether DVC's cache holds ``digest`` whole: the object, and for a
    directory every file its ``.dir`` object lists (as ``dvc status``
    checks before it calls an out "not in cache")."""
    path = object_path(top, digest, legacy=legacy)
    if path is None or not path.is_file():
        return False
    if not digest.endswith(".dir"):
        return True
    try:
        entries = json.loads(path.read_bytes())
        digests = [entry["md5"] for entry in entries]
    except (OSError, ValueError, TypeError, KeyError):
        return False
    for inner in digests:
        inner_path = object_path(top, inner, legacy=legacy) if isinstance(inner, str) else None
        if inner_path is None or not inner_path.is_file():
            return False
    return True
