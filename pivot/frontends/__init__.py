"""Front ends: find every pipeline file below the project root and load it.

Discovery walks the root top-down in sorted order (so the stage order is
stable), skipping ``.git``, ``.dvc``, ``.pivot``, directories that are
outputs of stages already found, and whatever ``.dvcignore`` /
``.pivotignore`` files ignore, as DVC does.  ``dvc.yaml`` files are
loaded here; a ``Pivotfile`` is handed to ``pivot.frontends.pivotfile``,
imported only when one exists (it needs lark).
"""

from __future__ import annotations

import gc
import importlib.util
import os
from typing import TYPE_CHECKING, Iterator, NamedTuple, Sequence

from pivot import graph
from pivot.frontends.dvcfiles import is_dvc_file, tracked_data_stage
from pivot.frontends.contained import refuse_outside
from pivot.ignore import IgnoreTree, is_ignored
from pivot.errors import PivotError
from pivot.ir import Pipeline, Stage
from pivot.project import Project

if TYPE_CHECKING:
    from pathlib import Path

    from pivot.frontends.cache import CacheHeader, Validator
    from pivot.frontends.datafiles import DataFiles
    from pivot.frontends.dvcyaml import ParsingConfig

DVC_FILE = "dvc.yaml"
PIVOT_FILE = "Pivotfile"
TRACKED_FILE = "*.dvc"  # the kind of a .dvc file (data tracked by dvc add/import)
SKIP_DIRS = frozenset({".git", ".dvc", ".pivot"})
# a directory below the root holding one of these is a separate project
NESTED_PROJECT_MARKERS = frozenset({".dvc", ".pivot"})
# read by dvcyaml.read_parsing_config: how dicts render in `cmd`
CONFIG_FILES = (".dvc/config", ".dvc/config.local")


class PipelineFile(NamedTuple):
    relpath: str  # root-relative POSIX
    kind: str  # DVC_FILE or PIVOT_FILE


def load_pipeline(project: Project, targets: Sequence[str] = (), *, skipped: list[str] | None = None) -> Pipeline:
    """Every stage of every pipeline file under the root, linked into one DAG.

    Taken from ``.pivot/pipeline.pickle`` when no file it was made from has
    changed (see :mod:`pivot.frontends.cache`).  With ``skipped`` (``pivot
    list``, as ``dvc stage list``), an invalid dvc.yaml or .dvc file is left
    out and its error appended there instead of raised."""
    from pivot.frontends import cache

    if skipped is not None:
        loaded = _load(project, targets, skipped)
        return graph.build_pipeline(loaded.stages, loaded.sources)

    key = cache.cache_key(project)
    file_targets = _file_targets(project, targets)
    cached = cache.load(project, key, _still_valid(project, file_targets))
    if cached is not None:
        refuse_outside(project.root, cached.stages, out_links=False)  # a cache is never trusted more than the files
        return cached
    # Loading, linking and pickling allocate objects that all stay alive
    # (with 1,000 Pivotfile rules the collector's passes cost ~5 % of it).
    enabled = gc.isenabled()
    gc.disable()
    try:
        started = cache.now_ns()
        loaded = _load(project, targets)
        pipeline = graph.build_pipeline(loaded.stages, loaded.sources)
        inputs = cache.signatures(project, loaded.consulted, started)
        if inputs is not None:
            cached_targets = file_targets if loaded.has_pivotfiles else None
            header = cache.CacheHeader(key, loaded.discovered, inputs, cached_targets,
                                       cache.CacheHeader.outs_of(pipeline),
                                       cache.signatures(project, loaded.listed, started),
                                       cache.identity_of(key, loaded.discovered, inputs, cached_targets))
            pipeline = cache.save(project, header, pipeline)
    finally:
        if enabled:
            gc.enable()
    return pipeline


def cached_identity(project: Project) -> str | None:
    """The identity (``Pipeline.identity``) ``load_pipeline(project)`` would
    give, when it would come from the pipeline cache; found without
    unpickling a stage.  None when the cache is missing or stale."""
    from pivot.frontends import cache

    return cache.valid_identity(project, cache.cache_key(project), _still_valid(project, ()))


def _file_targets(project: Project, targets: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({project.relpath(t) for t in targets if ":" not in t}))


def _still_valid(project: Project, file_targets: tuple[str, ...]) -> "Validator":
    """Whether a cached pipeline's header still holds for the files today
    (see ``cache.Validator``)."""
    from pivot.frontends import cache

    def check(header: "CacheHeader") -> "CacheHeader | None":
        if header.targets not in (None, file_targets):  # Pivotfile stages depend on file targets
            return None
        if not cache.unchanged(project, header.inputs):
            return None
        if header.listed is not None and cache.unchanged(project, header.listed):
            return header  # no directory discovery lists has changed: neither has what it finds
        started = cache.now_ns()
        listed: list[str] = []
        if not _same_discovery(project, header, listed):
            return None
        # the same files found: keep the directories' signatures for next time, once they are settled
        fresh = cache.signatures(project, listed, started)
        return header if fresh is None or fresh == header.listed else header._replace(listed=fresh)

    return check


def load_stages(project: Project, targets: Sequence[str] = ()) -> tuple[list[Stage], list[str]]:
    """Stages in discovery order and the files read to make them."""
    loaded = _load(project, targets)
    return loaded.stages, loaded.sources


class _Loaded(NamedTuple):
    stages: list[Stage]
    sources: list[str]  # files read, for Pipeline.sources
    discovered: tuple[tuple[str, str], ...]  # (kind, relpath) of each pipeline file, in discovery order
    consulted: list[str]  # every file whose content or existence the result depends on
    has_pivotfiles: bool
    listed: list[str]  # the directories discovery listed


class _DvcFileReader:
    """The stages of ``dvc.yaml`` and ``.dvc`` files.  What they need --
    YAML (about 25 ms to import) and ``.dvc/config``'s parsing options --
    is taken at the first such file: a project of Pivotfiles alone never
    imports it.  A config that is there is read at once (a broken one is an
    error, whatever the project holds)."""

    def __init__(self, root: "Path", files: "DataFiles") -> None:
        self._root = root
        self._files = files
        self._config: "ParsingConfig | None" = None
        if any(os.path.lexists(os.path.join(root, name)) for name in CONFIG_FILES):
            self._parsing_config()

    def _parsing_config(self) -> "ParsingConfig":
        if self._config is None:
            from pivot.frontends.dvcyaml import read_parsing_config

            self._config = read_parsing_config(self._root)
        return self._config

    def stages(self, kind: str, relpath: str) -> list[Stage]:
        from pivot.frontends.dvcyaml import DvcYamlLoader
        from pivot.yaml12 import load_document_file

        document = load_document_file(self._root / relpath, relpath)
        if kind == TRACKED_FILE:
            return [tracked_data_stage(relpath, document.data)]
        return DvcYamlLoader(relpath, document, self._files, self._parsing_config()).stages()


def _load(project: Project, targets: Sequence[str], skipped: list[str] | None = None) -> _Loaded:
    from pivot.frontends.datafiles import DataFiles

    root = project.root
    files = DataFiles(root)
    reader = _DvcFileReader(root, files)
    stages: list[Stage] = []
    sources: list[str] = []
    discovered: list[tuple[str, str]] = []
    pivotfiles: list[tuple[int, str]] = []
    out_dirs: set[str] = set()
    ignores = IgnoreTree(root)
    listed: list[str] = []

    for found in discover(project, out_dirs, ignores, listed):
        discovered.append((found.kind, found.relpath))
        if found.kind == PIVOT_FILE:
            pivotfiles.append((len(stages), found.relpath))
            continue
        sources.append(found.relpath)
        try:
            loaded = reader.stages(found.kind, found.relpath)
        except PivotError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        stages.extend(loaded)
        out_dirs.update(out.path for stage in loaded for out in stage.outs)
    consulted = [*sources, *CONFIG_FILES, *files.consulted, *ignores.files]
    sources.extend(files.sources)

    if pivotfiles and importlib.util.find_spec("pivot.frontends.pivotfile") is not None:
        looked_up: list[str] = []
        before = len(sources)
        stages = _with_pivotfiles(project, stages, sources, pivotfiles, targets, looked_up)
        consulted += [*sources[before:], *looked_up]
    refuse_outside(root, stages)
    return _Loaded(stages, list(dict.fromkeys(sources)), tuple(discovered), consulted, bool(pivotfiles), listed)


def _same_discovery(project: Project, header: "CacheHeader", listed: list[str]) -> bool:
    """Discovery today finds the same dvc.yaml files, in the same order,
    pruning the same output directories, as when the cached pipeline was made.
    The directories it lists are appended to ``listed``."""
    out_dirs: set[str] = set()
    outs_by_file = header.outs_by_file
    expected = iter(header.discovered)
    for found in discover(project, out_dirs, listed=listed):
        if next(expected, None) != (found.kind, found.relpath):
            return False
        if found.kind != PIVOT_FILE:  # only dvc.yaml and .dvc stages prune discovery
            out_dirs.update(outs_by_file.get(found.relpath, ()))
    return next(expected, None) is None


def _with_pivotfiles(
    project: Project,
    stages: list[Stage],
    sources: list[str],
    pivotfiles: list[tuple[int, str]],
    targets: Sequence[str],
    looked_up: list[str],
) -> list[Stage]:
    """Pivotfile stages slotted in at their place in discovery order."""
    from pivot.frontends.pivotfile import load_pivotfile

    produced = {out.path for stage in stages for out in stage.outs}
    needed = {dep.path for stage in stages for dep in stage.deps if dep.path not in produced}
    needed.update(project.relpath(t) for t in targets if ":" not in t)
    merged: list[Stage] = []
    start = 0
    read: set[str] = set()  # Pivotfiles already loaded, directly or through `include:`
    for position, relpath in pivotfiles:
        merged.extend(stages[start:position])
        start = position
        if relpath in read:
            continue
        extra, extra_sources = load_pivotfile(project, relpath, needed, provided=produced, looked_up=looked_up)
        read.update(extra_sources)
        produced.update(out.path for stage in extra for out in stage.outs)
        merged.extend(extra)
        sources.append(relpath)
        sources.extend(extra_sources)
    merged.extend(stages[start:])
    return merged


def discover(project: Project, out_dirs: set[str], ignores: IgnoreTree | None = None,
             listed: list[str] | None = None) -> Iterator[PipelineFile]:
    """Pipeline files below the root, top-down, sorted.  ``out_dirs`` may grow
    while iterating (the caller adds outs of loaded stages) and is pruned;
    ignored files and directories (``ignores``) are skipped.  Each directory
    listed is appended to ``listed`` (root-relative, the root as ".")."""
    root = str(project.root)
    ignores = ignores if ignores is not None else IgnoreTree(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if listed is not None:
            listed.append(rel)
        if rel != "." and not NESTED_PROJECT_MARKERS.isdisjoint(dirnames):
            dirnames[:] = []  # a project of its own (DVC: a subrepo): not part of this one
            continue
        prefix = "" if rel == "." else rel + "/"
        names = set(filenames)
        chain = ignores.chain(prefix.rstrip("/"), names)
        for name in (DVC_FILE, PIVOT_FILE):
            if name in names and not (chain and is_ignored(chain, prefix + name, False)):
                yield PipelineFile(prefix + name, DVC_FILE if name == DVC_FILE else PIVOT_FILE)
        # endswith first: a data directory holds thousands of names, few of them .dvc files
        for name in sorted(n for n in filenames if n.endswith(".dvc") and is_dvc_file(n)):
            if not (chain and is_ignored(chain, prefix + name, False)):
                yield PipelineFile(prefix + name, TRACKED_FILE)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and (prefix + d) not in out_dirs
            and not (chain and is_ignored(chain, prefix + d, True))
        )

