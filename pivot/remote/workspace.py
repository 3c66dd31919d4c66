"""Putting pulled outputs into the workspace.

The one place ``pivot pull`` restores outputs through (``restore_outputs``
for pivot's records, ``restore_dvc_outputs`` for stages DVC ran), so that
when pivot gets a single home for restoring (``pivot/state/restore.py``)
only these functions change.  Every output path is checked by ``writable_path`` first:
lock records come from a clone and are not trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pivot.containment import writable_path  # noqa: F401 -- restore_dvc_outputs

if TYPE_CHECKING:
    from pivot.state.restore import RestoreReport
    from pivot.ir import Stage
    from pivot.remote.dvc import DvcOutput
    from pivot.state import State


def restore_outputs(stages: Sequence["Stage"], state: "State") -> list[tuple["Stage", "RestoreReport"]]:
    """Bring the recorded, cached outputs of ``stages`` back from the cache
    (``restore.restore_stage``); unsaved work in the workspace is kept."""
    from pivot.state.restore import RestoreSource, restore_stage

    return [(stage, restore_stage(stage, state, RestoreSource.CACHE, keep_unsaved=True)) for stage in stages]


def restore_dvc_outputs(outs: Sequence["DvcOutput"], state: "State") -> tuple[list["DvcOutput"], list["DvcOutput"]]:
    """Write outputs from DVC's cache (``.dvc/cache/``) into the workspace,
    as ``dvc checkout`` would (copies); (restored, missing from the cache).
    Each file goes to a temporary name beside it and is renamed; the stages
    are adopted by the next command that looks at them."""
    from pivot.backends.outputs import remove
    from pivot.remote.dvc import cache_path, read_manifest

    root = state.project.root
    restored: list[DvcOutput] = []
    missing: list[DvcOutput] = []
    for out in outs:
        target = writable_path(root, out.path)
        if out.md5.endswith(".dir"):
            listing = read_manifest(root, out.md5, out.legacy)
            if listing is None or not all(cache_path(root, md5, out.legacy).is_file() for md5, _ in listing):
                missing.append(out)
                continue
            remove(target)
            target.mkdir(parents=True)
            for md5, relpath in listing:
                path = writable_path(root, f"{out.path}/{relpath}")
                path.parent.mkdir(parents=True, exist_ok=True)
                _copy(cache_path(root, md5, out.legacy), path)
        else:
            source = cache_path(root, out.md5, out.legacy)
            if not source.is_file():
                missing.append(out)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                remove(target)
            _copy(source, target)
        state.hasher.invalidate(out.path)
        restored.append(out)
    return restored, missing


def _copy(source: Path, target: Path) -> None:
    """A writable copy of ``source`` at ``target``, complete or absent."""
    import os
    import shutil
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.pivot-")
    try:
        with os.fdopen(fd, "wb") as dst, open(source, "rb") as src:
            shutil.copyfileobj(src, dst)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
