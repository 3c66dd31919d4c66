"""One state of a project and the params and metrics files it holds.

A state is the workspace, a git revision (its tree extracted with
``git archive`` into a temporary directory; git stays optional) or a run
recorded in the audit trail (the files' parsed contents as that run left
them).  ``collect_params`` and ``collect_metrics`` gather files as
``dvc params show`` / ``dvc metrics show`` do (``dvc/repo/params/show.py``,
``dvc/repo/metrics/show.py``): which files, which keys, in which order,
with DVC's "tracked vars" (values read only through ``${}``) after them.
"""

from __future__ import annotations

import copy
import os
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pivot.errors import PivotError
from pivot.ir import OutKind, Stage
from pivot.project import Project

if TYPE_CHECKING:
    from pivot.ir import Pipeline
    from pivot.state.params import ParamsReader

DEFAULT_PARAMS_FILE = "params.yaml"
WORKSPACE = "workspace"


class StateNotFound(PivotError):
    """A state named on the command line that is neither a run nor a revision."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """A params or metrics file of one state: its data, or why it has none.

    ``error_type`` names the problem as DVC's JSON does (``FileNotFoundError``,
    ``JSONFileCorruptedError``, ...); ``error`` is the message for people."""

    data: Any = None
    error: str | None = None
    error_type: str | None = None
    skipped: tuple[str, ...] = ()  # metrics keys left out: "key (type)"

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": {"type": self.error_type, "msg": self.error}}
        return {"data": self.data}

    @classmethod
    def from_json(cls, raw: Any) -> "FileResult":
        if isinstance(raw, Mapping) and isinstance(raw.get("error"), Mapping):
            return cls(error=str(raw["error"].get("msg")), error_type=str(raw["error"].get("type")))
        if isinstance(raw, Mapping) and "data" in raw:
            return cls(data=raw["data"])
        return cls(error="malformed record", error_type="ValueError")


class FileProblem(Exception):
    """A file that cannot be read: DVC's error type name and a message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type

    def result(self) -> FileResult:
        return FileResult(error=str(self), error_type=self.error_type)


class Snapshot(Protocol):
    """What collecting params and metrics needs from one state."""

    label: str  # as table headers show it: "workspace", a revision, a run id

    def stages(self) -> Sequence[Stage]: ...

    def toplevel(self, section: str) -> list[str]:
        """Root-relative files listed in the top-level ``params:`` or
        ``metrics:`` of the state's dvc.yaml files."""
        ...

    def read(self, relpath: str) -> Any:
        """The parsed file; raises FileProblem."""
        ...

    def files_under(self, relpath: str) -> list[str] | None:
        """Files below ``relpath`` when it is a directory (sorted), else None."""
        ...


# -- states on disk: the workspace and git revisions --------------------------------


class DiskState:
    """A project tree on disk: the workspace, or an extracted revision."""

    def __init__(self, project: Project, label: str = WORKSPACE, *, pipeline: "Pipeline | None" = None,
                 reader: "ParamsReader | None" = None) -> None:
        from pivot.state.params import ParamsReader

        self.project = project
        self.label = label
        self._reader = reader if reader is not None else ParamsReader(project.root)
        self._stages: list[Stage] | None = None if pipeline is None else list(pipeline.stages)
        self._sources: list[str] = [] if pipeline is None else list(pipeline.sources)

    def stages(self) -> Sequence[Stage]:
        if self._stages is None:
            from pivot.frontends import load_pipeline, load_stages

            if self.label == WORKSPACE:
                pipeline = load_pipeline(self.project)
                self._stages, self._sources = list(pipeline.stages), list(pipeline.sources)
            else:  # a revision's tree: no pipeline cache there
                self._stages, self._sources = load_stages(self.project)
        return self._stages

    @property
    def sources(self) -> list[str]:
        """Files the pipeline was made from (root-relative)."""
        self.stages()
        return self._sources

    def toplevel(self, section: str) -> list[str]:
        from pivot.frontends import DVC_FILE

        found: list[str] = []
        for source in self.sources:
            if posixpath.basename(source) != DVC_FILE:
                continue
            try:  # read as a params file is: through the reader's memo
                document = self._reader.read(source)
            except PivotError:
                continue  # the pipeline loaded, so this cannot fail but for a race
            entries = document.get(section) if isinstance(document, Mapping) else None
            for entry in entries if isinstance(entries, list) else ():
                path = entry if isinstance(entry, str) else None
                if isinstance(entry, Mapping) and len(entry) == 1:  # metrics/plots may carry options
                    path = next(iter(entry))
                if isinstance(path, str) and "${" not in path:
                    found.append(posixpath.normpath(posixpath.join(posixpath.dirname(source), path)))
        return found

    def read(self, relpath: str) -> Any:
        return read_data_file(self._reader, relpath)

    def files_under(self, relpath: str) -> list[str] | None:
        directory = self.project.root / relpath
        if not directory.is_dir():
            return None
        found = []
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames.sort()
            for name in sorted(filenames):
                found.append(Path(os.path.relpath(os.path.join(dirpath, name), self.project.root)).as_posix())
        return found


def read_data_file(reader: Any, relpath: str) -> Any:
    """``relpath`` parsed by ``reader`` (a ParamsReader); FileProblem if it
    is missing or invalid."""
    try:
        data = reader.read(relpath)
    except PivotError as exc:  # invalid JSON/YAML/TOML/Python, a directory, unreadable
        raise FileProblem(_corrupted_type(relpath), str(exc)) from None
    except RecursionError:
        raise FileProblem(_corrupted_type(relpath), f"'{relpath}' is nested too deeply") from None
    if data is None:
        raise FileProblem("FileNotFoundError", f"'{relpath}' does not exist")
    return data


def _corrupted_type(relpath: str) -> str:
    """DVC's exception name for a file its loader cannot parse."""
    suffix = posixpath.splitext(relpath)[1].lower()
    return {".json": "JSONFileCorruptedError", ".toml": "TOMLFileCorruptedError",
            ".py": "PythonFileCorruptedError"}.get(suffix, "YAMLFileCorruptedError")


class GitRevision(DiskState):
    """The project as committed at a git revision, extracted to a temporary
    directory.  Use as a context manager (the directory is removed).

    A cached output is not in git; as DVC reads such a metrics file from its
    cache through ``dvc.lock``, this reads it from pivot's cache through the
    lock record committed at that revision (``.pivot/locks/``)."""

    def __init__(self, project: Project, rev: str) -> None:
        tree = _extract_revision(project, rev)
        super().__init__(Project(root=tree, cwd=tree), label=rev)
        self._cache_objects = project.state_dir / "cache" / "files"

    def __enter__(self) -> "GitRevision":
        return self

    def read(self, relpath: str) -> Any:
        try:
            return super().read(relpath)
        except FileProblem as problem:
            if problem.error_type != "FileNotFoundError" or not self._restore_from_cache(relpath):
                raise
        return super().read(relpath)

    def _restore_from_cache(self, relpath: str) -> bool:
        """Put the cached object the revision's lock record names for the
        output ``relpath`` into the extracted tree; False if there is none."""
        from pivot.state.locks import LockStore

        locks = LockStore(self.project.root / ".pivot" / "locks")
        for stage in self.stages():
            if not any(out.path == relpath and out.cache for out in stage.outs):
                continue
            record = locks.read(stage.address)
            entry = record.out(relpath) if record is not None else None
            if entry is None or entry.hash.endswith(".dir"):
                return False
            source = self._cache_objects / entry.hash[:2] / entry.hash[2:]
            target = self.project.root / relpath
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            except OSError:
                return False
            self._reader.invalidate(relpath)
            return True
        return False

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.project.root, ignore_errors=True)


def _git(project: Project, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(project.root), *args], capture_output=True, check=False)


def in_git(project: Project) -> bool:
    """Whether the project lives in a git work tree (and git is installed)."""
    try:
        return _git(project, "rev-parse", "--is-inside-work-tree").stdout.strip() == b"true"
    except OSError:
        return False


def is_revision(project: Project, rev: str) -> bool:
    if rev.startswith("-") or not in_git(project):
        return False
    return _git(project, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0


def _extract_revision(project: Project, rev: str) -> Path:
    import io
    import tarfile

    prefix = _git(project, "rev-parse", "--show-prefix").stdout.decode().strip()
    archive = _git(project, "archive", "--format=tar", f"{rev}:{prefix}" if prefix else rev)
    if archive.returncode != 0:
        raise StateNotFound(f"cannot read git revision '{rev}': {archive.stderr.decode().strip()}")
    tree = Path(tempfile.mkdtemp(prefix="pivot-rev-"))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tree, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(tree)
    return tree


# -- a state recorded by a run ------------------------------------------------------


class RecordedRun:
    """The params and metrics files a successful run left, as the audit trail
    recorded them.  Which files and keys to show comes from the current
    pipeline (a run records contents, not the pipeline)."""

    def __init__(self, run_id: str, files: Mapping[str, FileResult], current: DiskState) -> None:
        self.label = run_id
        self._files = files
        self._current = current

    def stages(self) -> Sequence[Stage]:
        return self._current.stages()

    def toplevel(self, section: str) -> list[str]:
        return self._current.toplevel(section)

    def read(self, relpath: str) -> Any:
        result = self._files.get(relpath)
        if result is None:
            raise FileProblem("FileNotFoundError", f"'{relpath}' was not recorded by run {self.label}")
        if result.error is not None:
            raise FileProblem(result.error_type or "Error", result.error)
        return result.data

    def files_under(self, relpath: str) -> list[str] | None:
        inside = sorted(path for path in self._files if path.startswith(relpath.rstrip("/") + "/"))
        return inside or None


# -- gathering, as DVC does ----------------------------------------------------------


def select_stages(state: Snapshot, project: Project, names: Iterable[str]) -> list[Stage]:
    """Stages named as ``dvc.api.params_show(stages=...)`` names them
    (relative to the current directory), in the order named."""
    from pivot.ir import Pipeline
    from pivot.targets import resolve

    stages = list(state.stages())
    pipeline = Pipeline(stages=tuple(stages), upstream={})
    chosen: list[Stage] = []
    for name in names:
        chosen.extend(pipeline.stage(address) for address in resolve(pipeline, project, name))
    return chosen


def params_files(state: Snapshot, project: Project, targets: Sequence[str] = (),
                 stages: Sequence[str] | None = None, deps_only: bool = False) -> dict[str, list[str]]:
    """Files to read and the keys to keep (``[]``: the whole file), in DVC's
    order: targets, stage params, top-level ``params:``, then ``params.yaml``."""
    requested: list[tuple[str, list[str]]] = [(posixpath.normpath(t), []) for t in targets]
    if not targets or stages:
        chosen = select_stages(state, project, stages) if stages else state.stages()
        for stage in chosen:
            for dep in stage.params:
                requested.append((dep.path, list(dep.keys) if dep.keys else []))
    if not targets and not deps_only and not stages:
        requested += [(path, []) for path in state.toplevel("params")]
        if _is_file(state, DEFAULT_PARAMS_FILE):
            requested.append((DEFAULT_PARAMS_FILE, []))
    merged = _merge_params(requested)
    expanded: dict[str, list[str]] = {}
    for path, keys in merged.items():
        for file in state.files_under(path) or [path]:
            expanded[file] = keys
    return expanded


def _is_file(state: Snapshot, relpath: str) -> bool:
    try:
        state.read(relpath)
    except FileProblem as problem:
        return problem.error_type != "FileNotFoundError"
    return True


def _merge_params(requested: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """DVC's ``_merge_params``: a file tracked whole anywhere is read whole."""
    whole = {path for path, keys in requested if not keys}
    merged: dict[str, list[str]] = {}
    for path, keys in requested:
        if path in whole:
            merged[path] = []
        else:
            merged.setdefault(path, []).extend(keys)
    return merged


def tracked_vars_files(state: Snapshot, skip: Collection[str] = ()) -> dict[str, list[str]]:
    """DVC's ``_collect_vars``: the vars-file keys every stage's interpolation
    read (``Stage.tracked_vars``), by file, files in ``skip`` (those shown
    as params files already) left out."""
    found: dict[str, dict[str, None]] = {}
    for stage in state.stages():
        for tracked in stage.tracked_vars:
            if tracked.path not in skip:
                found.setdefault(tracked.path, {})[tracked.key] = None
    return {path: list(keys) for path, keys in found.items()}


def collect_params(state: Snapshot, project: Project, targets: Sequence[str] = (),
                   stages: Sequence[str] | None = None, deps_only: bool = False) -> dict[str, FileResult]:
    """Each params file's data (or error), as ``dvc params show`` gathers it;
    without targets or stages, then each tracked-vars file as flat
    ``{dotted key: value}`` (as DVC, even with ``deps_only``)."""
    results: dict[str, FileResult] = {}
    for path, keys in params_files(state, project, targets, stages, deps_only).items():
        try:
            data = state.read(path)
        except FileProblem as problem:
            results[path] = problem.result()
            continue
        results[path] = FileResult(data=select_keys(data, keys) if keys else data)
    if not (targets or stages):
        for path, keys in tracked_vars_files(state, skip=results).items():
            try:
                data = state.read(path)
            except FileProblem as problem:
                results[path] = problem.result()
                continue
            results[path] = FileResult(data=values_at(data, keys))
    return results


def values_at(data: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``{dotted key: value}`` for each key found in ``data`` (list indices
    as numbers), as DVC reports tracked vars."""
    found: dict[str, Any] = {}
    for key in keys:
        node = data
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                break
        else:
            found[key] = copy.deepcopy(node)
    return found


def select_keys(data: Any, keys: Sequence[str]) -> dict[Any, Any]:
    """The parts of ``data`` under each dotted key, merged into one nested
    mapping (dpath's search and merge, as ``read_param_file`` does)."""
    found: dict[Any, Any] = {}
    for key in dict.fromkeys(keys):
        part = _search(data, key.split("."))
        if part is not _NOTHING:
            _merge(found, part)
    return found


_NOTHING = object()


def _search(node: Any, parts: list[str]) -> Any:
    if not parts:
        return copy.deepcopy(node)
    head, rest = parts[0], parts[1:]
    if isinstance(node, Mapping):
        for key, value in node.items():
            if str(key) == head:  # dpath compares keys as strings (YAML int keys)
                found = _search(value, rest)
                return _NOTHING if found is _NOTHING else {key: found}
        return _NOTHING
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        found = _search(node[int(head)], rest)
        # dpath keeps the index: earlier items become None
        return _NOTHING if found is _NOTHING else [None] * int(head) + [found]
    return _NOTHING


def _merge(into: dict[Any, Any], new: Mapping[Any, Any]) -> None:
    for key, value in new.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            for index, item in enumerate(value):
                if index >= len(current):
                    current.append(item)
                elif item is not None:
                    current[index] = item
        else:
            into[key] = value


def metrics_files(state: Snapshot, project: Project, targets: Sequence[str] = (),
                  stages: Sequence[str] | None = None) -> list[str]:
    """Metrics files in DVC's order: targets (relative to the current
    directory), else the metrics outputs of every stage, then the top-level
    ``metrics:`` of each dvc.yaml; directories expanded."""
    paths: list[str] = [project.relpath(t) for t in targets]
    if not targets:
        chosen = select_stages(state, project, stages) if stages else state.stages()
        paths += [out.path for stage in chosen for out in stage.outs if out.kind is OutKind.METRIC]
        if not stages:
            paths += state.toplevel("metrics")
    expanded: list[str] = []
    for path in paths:
        expanded += state.files_under(path) or [path]
    return list(dict.fromkeys(expanded))


def collect_metrics(state: Snapshot, project: Project, targets: Sequence[str] = (),
                    stages: Sequence[str] | None = None) -> dict[str, FileResult]:
    """Each metrics file's values (or error), as ``dvc metrics show`` reads them."""
    results: dict[str, FileResult] = {}
    for path in metrics_files(state, project, targets, stages):
        try:
            data = state.read(path)
        except FileProblem as problem:
            results[path] = problem.result()
            continue
        skipped = tuple(f"{key} ({kind})" for key, kind in _left_out(data))
        results[path] = FileResult(data=extract_metrics(data) or {}, skipped=skipped)
    return results


def _left_out(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Dotted keys ``extract_metrics`` leaves out, with the kind of value."""
    if not isinstance(value, Mapping):
        return []
    found: list[tuple[str, str]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            found += _left_out(item, name + ".")
        elif extract_metrics(item) is None:
            found.append((name, "null" if item is None else type(item).__name__))
    return found


def extract_metrics(value: Any) -> Any:
    """Numbers, strings and booleans, nested in mappings; anything else
    (lists, nulls, dates, empty mappings) is left out, as DVC leaves it out."""
    if isinstance(value, (int, float, str)):
        return value
    if not isinstance(value, Mapping):
        return None
    kept: dict[str, Any] = {}
    for key, item in value.items():
        extracted = extract_metrics(item)
        if extracted is not None and extracted != {}:
            kept[key] = extracted
    return kept
