"""Data tracked with ``.dvc`` files (``dvc add``, ``dvc import``, ``import-url``).

A ``.dvc`` file records outputs with their md5 (DVC 3: ``hash: md5``; DVC 2:
no ``hash`` key, md5 after dos2unix) and, for imports, where they came from.
DVC shows each one as a stage of its own, addressed by the file's path
(``data/raw.csv.dvc``): in ``dvc status`` (its outs only), in ``dvc dag``,
and as the producer of the tracked path for stages that depend on it.

pivot loads it as a *tracked-data* stage: no command, its outs as written
(relative to the file's directory, or its ``wdir``), and frozen -- it never
runs.  Its state is the ``.dvc`` file's md5s (``state.dvclock.Adopter``
reads them as it reads ``dvc.lock``): changed data is re-recorded as the
user's new input, a deleted file is restored from DVC's cache when it is
there.  The sources of imports are not checked (that needs the network,
``dvc update`` does it), so their deps are not part of the stage.
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping

from pivot.errors import PipelineError
from pivot.frontends.wildcards import join_path
from pivot.ir import Location, Out, OutKind, Stage

SUFFIX = ".dvc"


def is_dvc_file(name: str) -> bool:
    """``raw.csv.dvc``; not ``.dvc`` itself (DVC's directory)."""
    return name.endswith(SUFFIX) and len(name) > len(SUFFIX)


def tracked_data_stage(relpath: str, document: Any) -> Stage:
    """The stage a ``.dvc`` file stands for (``relpath`` root-relative)."""
    if not isinstance(document, Mapping):
        raise PipelineError(f"{relpath}: a .dvc file must be a mapping with 'outs'")
    outs_data = document.get("outs") or []
    if not isinstance(outs_data, list) or not outs_data:
        raise PipelineError(f"{relpath}: 'outs' must be a non-empty list")
    base = posixpath.dirname(relpath) or "."
    wdir_text = document.get("wdir", ".")
    if not isinstance(wdir_text, str):
        raise PipelineError(f"{relpath}: 'wdir' must be a string")
    wdir = join_path(base, wdir_text)
    outs = []
    for index, entry in enumerate(outs_data):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise PipelineError(f"{relpath}: outs[{index}] needs a 'path'")
        outs.append(Out(path=join_path(wdir, entry["path"]), def_path=entry["path"],
                        cache=bool(entry.get("cache", True)), persist=bool(entry.get("persist", False)),
                        kind=OutKind.OUT))
    return Stage(
        address=relpath,
        name=relpath,
        file=relpath,
        wdir=wdir,
        cmds=(),
        outs=tuple(outs),
        frozen=True,  # tracked data never runs: a change is new input, recorded as it is
        desc=document.get("desc") if isinstance(document.get("desc"), str) else None,
        location=Location(relpath, 1),
    )

