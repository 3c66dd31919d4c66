"""The loaded pipeline, remembered between commands (``.pivot/pipeline.pickle``).

Resolving ``dvc.yaml`` files is pure: the same files give the same stages.
So the resolved pipeline is kept with the *signature* (mode, inode, size,
mtime, ctime; or "absent") of every file the loader consulted -- each
``dvc.yaml``, every params/vars file it read or looked for, ``.dvc/config``
-- plus the sequence of pipeline files discovery found and the signature of
each directory it listed.  A later command compares the signatures -- and
walks the tree again only when a listed directory changed (an entry added,
removed or renamed moves its mtime and ctime), storing the directories'
fresh signatures once they are settled -- and on an exact match takes the
stages from the cache instead of importing YAML and interpolating.  Anything else -- a changed or new file, other pivot code,
other file targets in a project with Pivotfiles (wildcard rules are resolved
for them), an unreadable cache -- means loading as usual.  For Pivotfiles the
consulted files include every input whose existence was checked.

The pipeline's identity (``Pipeline.identity``, the key of the verdict
and settled memos) is the hash of that header's code key, pipeline files
and signatures: known before a stage is pickled, so a large pipeline is
pickled and written by a child process (:mod:`pivot.background`) while
the command plans; the command waits for it before it exits.

Racy files: a pipeline is saved only when every file it was built from is
settled (:mod:`pivot.signature`).  The cache is written only into an
existing ``.pivot/``, atomically.  It is read with an unpickler that
resolves only pivot's IR records (:mod:`pivot.frontends.safepickle`), and
what it holds is checked for outs outside the project like a fresh load.
"""

from __future__ import annotations

import enum
import gc
import io
import operator
import time
from dataclasses import replace
from typing import Callable, Iterable, NamedTuple

from pivot.containment import is_inside
from pivot.ir import Pipeline
from pivot.project import Project
from pivot.signature import Signature, code_signature, file_signature

CACHE_NAME = "pipeline.pickle"
# From this many stages the pickling (about 13 us a stage) is left to a child
# process: below, it costs less than forking one (1-2 ms).
PICKLED_ASIDE_FROM = 1_000
# 5: header and pipeline as two pickles; 6: Stage.tracked_vars (TrackedVar records); 7: listed dirs;
# 8: the identity in the header
FORMAT = 8
# Modules whose code decides what a pipeline file resolves to.
_CODE = (
    "frontends/__init__.py",
    "frontends/cache.py",
    "frontends/contained.py",
    "frontends/safepickle.py",
    "containment.py",
    "frontends/datafiles.py",
    "frontends/dvcschema.py",
    "frontends/dvcyaml.py",
    "frontends/interpolate.py",
    "yaml12.py",
    "ignore.py",
    "frontends/pivotfile.py",
    "frontends/pivotfile_eval.py",
    "frontends/pivotfile_lalr.py",
    "frontends/pivotfile_parse.py",
    "frontends/pivotfile_tables.py",
    "frontends/pivotfile_producers.py",
    "frontends/pivotfile_resolve.py",
    "frontends/pivotfile_rules.py",
    "frontends/wildcards.py",
    "formats.py",
    "graph.py",
    "ir.py",
    "signature.py",
)


class CacheHeader(NamedTuple):
    """Everything the stored pipeline was made from, stored before it, so
    that a stale cache is rejected without unpickling the stages."""

    key: tuple  # format, pivot code and Python version, project root
    discovered: tuple[tuple[str, str], ...]  # (kind, relpath) of each pipeline file, in discovery order
    inputs: tuple[tuple[str, Signature | None], ...]  # every file consulted (root-relative)
    # With Pivotfiles, the file targets wildcard rules were resolved for
    # (root-relative, sorted); None without Pivotfiles (targets do not matter).
    targets: tuple[str, ...] | None
    # The out paths of each pipeline file's stages (discovery prunes them).
    outs_by_file: dict[str, tuple[str, ...]]
    # The directories discovery listed, with their signatures, taken when all
    # were settled (None otherwise): while each is unchanged, so is every
    # listing, and discovery need not walk the tree again.
    listed: tuple[tuple[str, Signature | None], ...] | None = None
    # The pipeline's identity (``Pipeline.identity``): see ``identity_of``.
    identity: str = ""

    @staticmethod
    def outs_of(pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
        outs: dict[str, list[str]] = {}
        for stage in pipeline.stages:
            outs.setdefault(stage.file, []).extend(out.path for out in stage.outs)
        return {file: tuple(paths) for file, paths in outs.items()}


def cache_key(project: Project) -> tuple:
    return (FORMAT, code_signature(*_CODE), str(project.root))


# Given a stored header: None when it no longer holds, else the header to
# keep (itself, or one with fresher ``listed`` signatures, stored in its place).
Validator = Callable[[CacheHeader], "CacheHeader | None"]


def load(project: Project, key: tuple, still_valid: Validator) -> Pipeline | None:
    """The stored pipeline if it was made by this code for this root and
    ``still_valid`` accepts its header; None when there is none, it is stale,
    or it cannot be read."""
    found = _valid_body(project, key, still_valid)
    if found is None:
        return None
    raw, body, header = found
    from pivot.frontends.safepickle import RestrictedUnpickler

    # Unpickling allocates many objects at once; collecting meanwhile only costs time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        # a pickle of its own (its memo numbered from zero): a fresh unpickler
        stream = io.BytesIO(raw)
        stream.seek(body)
        pipeline = RestrictedUnpickler(stream, _allowed_classes()).load()
    except Exception:  # a damaged or foreign file is only a cache miss
        return None
    finally:
        if enabled:
            gc.enable()
    if not isinstance(pipeline, Pipeline):
        return None
    return replace(pipeline, identity=header.identity)


def valid_identity(project: Project, key: tuple, still_valid: Validator) -> str | None:
    """The identity ``load`` would give the stored pipeline, without
    unpickling its stages; None where ``load`` would find nothing."""
    found = _valid_body(project, key, still_valid)
    return None if found is None else found[2].identity


def _valid_body(project: Project, key: tuple, still_valid: Validator) -> tuple[bytes, int, CacheHeader] | None:
    """The cache file's bytes, where its pipeline starts and its header
    (as kept), when the header is valid; None otherwise.  A header the
    validator refreshed is stored."""
    from pivot import background

    background.wait()  # a cache this process is still writing is read once written
    path = project.state_dir / CACHE_NAME
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    from pivot.frontends.safepickle import RestrictedUnpickler

    enabled = gc.isenabled()
    gc.disable()
    try:
        # .pivot/ may come with a checkout: only pivot's own records are resolved
        stream = io.BytesIO(raw)
        header = RestrictedUnpickler(stream, _allowed_classes()).load()
        if not isinstance(header, CacheHeader) or header.key != key:
            return None
        kept = still_valid(header)
        if kept is None:
            return None
    except Exception:  # a damaged or foreign file is only a cache miss
        return None
    finally:
        if enabled:
            gc.enable()
    body = stream.tell()
    if kept is not header:
        _write(project, _dumps(kept), raw[body:])
    return raw, body, kept


def identity_of(key: tuple, discovered: tuple[tuple[str, str], ...],
                inputs: tuple[tuple[str, Signature | None], ...], targets: tuple[str, ...] | None) -> str:
    """The identity of the pipeline loaded from these: the code, the
    pipeline files found, every file consulted as it was (its signature)
    and the file targets.  Loading is pure, so equal identities mean equal
    stages.  Known before the stages are pickled, which a child process
    does (:mod:`pivot.background`).  (Touching a pipeline file without
    changing it gives a new identity: its memos are made again, once.)"""
    import marshal

    import xxhash

    # marshal version 2 writes no back-references: equal values, equal bytes
    plain = (key, [tuple(found) for found in discovered],
             [(path, None if sig is None else tuple(sig)) for path, sig in inputs], targets)
    return xxhash.xxh3_128_hexdigest(marshal.dumps(plain, 2))


def _allowed_classes() -> frozenset[tuple[str, str]]:
    """What a pipeline pickle may name: the IR records, the header, and
    value constructors for data in ``meta``."""
    from pivot.frontends.safepickle import SAFE_VALUE_CLASSES, classes_of

    return (
        classes_of("pivot.ir", "Pipeline", "Stage", "Dep", "Out", "ParamsDep", "TrackedVar", "Location", "OutKind")
        | classes_of(__name__, "CacheHeader")
        | classes_of("pivot.signature", "Signature")
        | SAFE_VALUE_CLASSES
    )


def unchanged(project: Project, signatures: Iterable[tuple[str, Signature | None]]) -> bool:
    """Whether each file (or directory) still has its signature."""
    root = str(project.root)
    return all(file_signature(f"{root}/{relpath}") == signature for relpath, signature in signatures)


def signatures(project: Project, relpaths: Iterable[str], started_ns: int) -> tuple[tuple[str, Signature | None], ...] | None:
    """Signatures of ``relpaths``; None if any file is too recent to trust
    (changed less than RACY_WINDOW_NS before loading started, or since)."""
    root = str(project.root)
    found: list[tuple[str, Signature | None]] = []
    for relpath in dict.fromkeys(relpaths):
        signature = file_signature(f"{root}/{relpath}")
        if signature is not None and not signature.settled(started_ns):
            return None
        found.append((relpath, signature))
    return tuple(found)


def save(project: Project, header: CacheHeader, pipeline: Pipeline) -> Pipeline:
    """Write the cache atomically -- in a child process where one can be
    forked (:mod:`pivot.background`) -- and return ``pipeline`` with its
    identity; silently skipped without ``.pivot/`` or on any error (it is
    only a cache)."""
    if not project.state_dir.is_dir():
        return pipeline  # nothing to write into, and no memo to key either
    if len(pipeline.stages) >= PICKLED_ASIDE_FROM:
        from pivot import background

        background.run(lambda: _store(project, header, pipeline))
    else:
        _store(project, header, pipeline)
    return replace(pipeline, identity=header.identity)


def _store(project: Project, header: CacheHeader, pipeline: Pipeline) -> None:
    import pickle

    try:
        body = _dumps(pipeline)
        header_bytes = _dumps(header)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return
    _write(project, header_bytes, body)


def _dumps(value: object) -> bytes:
    import pickle

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump(value)
    return buffer.getvalue()


def _write(project: Project, header: bytes, body: bytes) -> bool:
    """Store the cache file atomically; False where it cannot be (it is only a cache)."""
    state_dir = project.state_dir
    if not state_dir.is_dir():
        return False  # a read-only command must not create .pivot/
    if not is_inside(project.root, f"{state_dir.name}/{CACHE_NAME}"):
        return False  # a .pivot/ linked out of the project (a hostile checkout) is not written to
    from pivot import atomic

    try:
        with atomic.writing(state_dir / CACHE_NAME) as handle:
            handle.write(header)
            handle.write(body)
    except OSError:
        return False
    return True


def _dispatch_table() -> dict:
    """Slotted IR records pickled as constructor calls: unpickling them then
    costs one ``__init__`` instead of the generic field-by-field setstate."""
    import copyreg

    from pivot.ir import Dep, Location, Out, OutKind, ParamsDep, TrackedVar

    table = copyreg.dispatch_table.copy()
    for cls in (Dep, Out, ParamsDep, TrackedVar, Location):
        table[cls] = _by_fields(cls)
    # some Python releases (3.11.2) pickle enum members as getattr(cls, name),
    # which the restricted unpickler rightly refuses: name the value instead
    table[OutKind] = _by_value
    return table


def _by_value(member: enum.Enum) -> tuple:
    return type(member), (member.value,)


def _by_fields(cls: type) -> Callable[[object], tuple]:
    """The reducer of a slotted record class (its fields read in C: a
    pipeline holds thousands of records)."""
    fields = cls.__slots__  # type: ignore[attr-defined]
    assert len(fields) > 1, "attrgetter of several names returns a tuple"
    read = operator.attrgetter(*fields)
    return lambda record: (cls, read(record))


def now_ns() -> int:
    return time.time_ns()
