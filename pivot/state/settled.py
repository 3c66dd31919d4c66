"""The settled-pipeline memo: "every stage was up to date", for a whole pipeline.

The verdict memo (:mod:`pivot.state.verdicts`) spares a no-op plan the
reading and hashing, but the plan still loads every stage of the pipeline,
orders them and recalls each verdict on its own.  At 20,000 stages that is
most of what is left.  When a plan of *every* stage found each one up to
date or frozen with nothing to do, and each verdict was recalled or
remembered in that plan, this memo unites their entries into one: the
pipeline's identity (``Pipeline.identity``), the stages' addresses and
verdicts in run order, and each path those verdicts read, once, with the
signature it had -- lock files, deps, params files and outs, and the
cached objects of the outs.  A directory is kept by the signature of every
directory and file below it and of the ignore files that apply to it (an
entry added or removed moves its directory's mtime, an edit in place the
file's own signature), so its recall costs a ``stat`` per file instead of
hashing it again; one that cannot be signed so (a dangling link below it,
the project root, a directory outside) is kept by its hash.

The next ``plan`` or ``status`` of the whole pipeline asks for the identity
the pipeline cache would give (without unpickling a stage) and, on a match,
checks each path with one ``stat``: when all are unchanged, every verdict
stands, and the command reports them without loading the pipeline.  Any
difference means planning as usual.  The entry inherits the verdicts'
settledness (each was made only from signatures at least a racy window old,
and matched since).  The directories the stages write in and their working
directories are resolved again on each recall, as a cached pipeline's are
(:func:`pivot.frontends.contained.refuse_outside`): one that now leads out
of the project through a symlink means planning as usual, which refuses it.

A pipeline nothing has run in yet is united too, for the commands that
only print a plan (``plan``, ``run -n``): when a plan of every stage, not
forced and without ``--explain``, decided each one "never run (no lock
record)" with no run-cache entry and no remote to consult, the entry keeps
that verdict for every stage and what the plan could have seen otherwise:
the signature (or absence) of the lock directory, of each ``dvc.lock``
beside a ``dvc.yaml``, and of each dep and params file -- a dep that is
there is a regular file, one that is not is still absent, so reading it
raises nothing the plan did not.  The run cache and the remote are asked
again on each recall.  A ``pivot run`` always plans as usual.

A plan with stages to run is united too, for the same printing commands
(and with no remote to consult), when it restores nothing and adopts
nothing: each stage without work keeps its verdict's entry as above; a
stage that runs only because an upstream stage does keeps its own
(up-to-date) verdict's entry and the upstream reasons; a stage that runs
for reasons of its own keeps those reasons, as the plan worked them out,
and everything such a verdict can read: its lock file (or its absence,
and then its ``dvc.lock``), each dep, params file and out (a file by its
signature, a directory as above, or its absence), the cached objects of
its recorded outs (each there), and the run-cache entry its plan looked
for, which must still be absent; and the run cache's directory by its
signature or its absence (a plan that found the run cache empty looked
for no entry and hashed no dep to make a key: the first entry moves it).

One entry is kept, in ``.pivot/state.db`` (table ``settled``); like the
other memos it is a cache of the disk, and deleting it is always safe.
"""

from __future__ import annotations

import marshal
import os
import stat as stat_mod
from array import array
from itertools import chain
from typing import TYPE_CHECKING, Iterable, Mapping, NamedTuple, Sequence

import xxhash

from pivot.errors import StateError
from pivot.ignore import IGNORE_FILES
from pivot.state.hashing import HashInfo
from pivot.state.locks import LockRecord, lock_filename
from pivot.state.statdb import EXPLAINED
from pivot.state.verdicts import contents_unchanged, is_settled, signature_of

if TYPE_CHECKING:
    from pathlib import Path

    from pivot.ir import Pipeline, Stage
    from pivot.state import State

FORMAT = 4  # 2: never-run entries (absent paths); 3: directories by the signatures below them; 4: entries with work
_WORK_FREE = ("up to date", "frozen")  # the verdicts the verdict memo keeps (Action values)


# What an entry holds (its last field): every stage up to date or frozen;
# every stage never run; some stages to run, with their reasons.
WORK_FREE, NEVER_RUN, WITH_WORK = 0, 1, 2


class Settled:
    """What a recalled entry says: the verdict of each stage, in run order,
    and the frozen stages ``status`` warns about, in pipeline order."""

    __slots__ = ("verdicts", "frozen_notices", "kind")

    def __init__(self, verdicts: tuple, frozen_notices: tuple[str, ...], kind: int = WORK_FREE) -> None:
        # WORK_FREE: (address, Action value) each; NEVER_RUN: the addresses
        # alone (each one runs); WITH_WORK: (address, Action value) for a
        # stage without work, (address, Action value, reasons, its place in
        # the pipeline's order) for one to run (reasons as plain data)
        self.verdicts = verdicts
        self.frozen_notices = frozen_notices
        self.kind = kind


class SettledMemo:
    """Recalls and remembers the settled pipeline for one command (see the module doc)."""

    def __init__(self, state: "State") -> None:
        self._state = state
        self._prefix = str(state.project.root).rstrip("/") + "/"
        self._locks_prefix = str(state.locks.dir) + "/"
        self._locks_rel: str | None = None
        self._key: int | None = None

    def _locks_dir(self) -> str:
        """The lock records' directory, root-relative (worked out once: a
        plan with 100,000 never-run stages asks for each)."""
        if self._locks_rel is None:
            self._locks_rel = self._state.locks.dir.relative_to(self._state.project.root).as_posix()
        return self._locks_rel

    def _code_key(self) -> int:
        if self._key is None:
            from pivot.signature import code_signature

            key = (FORMAT, code_signature(
                "state/settled.py", "optimizer.py", "state/verdicts.py", "state/hashing.py", "state/params.py",
                "state/locks.py", "state/store.py", "state/runcache.py", "state/dvclock.py",
                "frontends/contained.py", "containment.py"))
            self._key = xxhash.xxh3_64_intdigest(marshal.dumps(key))
        return self._key

    # -- recalling -----------------------------------------------------------

    def recall(self, identity: str | None, *, printed_only: bool = False, explained: bool = False) -> Settled | None:
        """The verdicts of every stage of the pipeline ``identity`` when
        nothing they read has changed since they were united; else None.
        ``printed_only``: an entry with stages to run may answer too (the
        caller only prints the plan, with the run cache); ``explained``: the
        plan lists every reason (``status``, ``--explain``)."""
        if identity is None:
            return None
        if not explained:
            return self._recall(identity, identity, printed_only=printed_only)
        # an entry with work is the newer when both are there (one without work replaces it)
        settled = self._recall(EXPLAINED + identity, identity, printed_only=True) if printed_only else None
        return settled or self._recall(identity, identity, printed_only=False)

    def _recall(self, key: str, identity: str, *, printed_only: bool) -> Settled | None:
        state = self._state
        raw = state.statdb.settled(key)
        if raw is None:
            return None
        try:
            (code_key, recorded_identity, verdicts, notices, lock_names, lock_sigs, files, file_sigs, dirs,
             file_objects, dir_objects, written_dirs, absent, kind) = marshal.loads(raw)
        except (ValueError, EOFError, TypeError):
            return None  # damaged: plan as usual
        if code_key != self._code_key() or recorded_identity != identity:
            return None
        if kind != WORK_FREE and not (printed_only and state.remote is None):
            return None  # a remote would be asked about each stage to run
        # a run-cache entry would be looked up for each never-run stage (an
        # entry with work keeps the entries its stages looked for as absent)
        if kind == NEVER_RUN and state.runcache.may_hold_entries():
            return None
        if not (_unchanged(self._locks_prefix, lock_names, lock_sigs) and _unchanged(self._prefix, files, file_sigs)):
            return None
        if not _still_absent(self._prefix, absent):
            return None
        if not contents_unchanged(self._state, dirs, file_objects, dir_objects):
            return None
        if _leaves_project(self._state.project.root, written_dirs):
            return None
        return Settled(verdicts, notices, kind)

    # -- remembering ---------------------------------------------------------

    def remember(self, pipeline: "Pipeline", decided: Sequence[tuple],
                 worked_out: "Mapping[str, Worked] | None" = None, *, explained: bool = False) -> None:
        """Unite the verdicts of a plan of every stage of ``pipeline``
        (``decided``, in run order: address and Action value, and for a
        stage to run its reasons, packed), if each stage without work is up
        to date or frozen and was recalled or remembered in that plan.

        ``worked_out`` (a plan that is only printed): the stages to run for
        reasons of their own, by address, each worked out afresh by the plan;
        they are kept by everything such a verdict can read, settled when
        the command began.  Any other stage to run must run only
        because an upstream stage does, its own verdict recalled or
        remembered.  ``explained``: the reasons are every reason (``status``,
        ``--explain``), kept apart from those of plans that name the first."""
        state = self._state
        if state.statdb.readonly or pipeline.identity is None or len(decided) != len(pipeline.stages):
            return
        worked_out = worked_out or {}
        confirmed = state.verdicts.confirmed
        signed = _Signed()
        file_sigs = signed.files  # nothing is absent yet: the verdicts' entries sign files only
        dirs: dict[str, str] = {}
        file_objects: dict[str, None] = {}
        dir_objects: dict[tuple, None] = {}
        kind = WORK_FREE
        for item in decided:
            address, action = item[0], item[1]
            if address in worked_out:
                kind = WITH_WORK
                continue
            entry = confirmed.get(address)
            if entry is None or entry[3] not in _WORK_FREE:
                return
            if entry[3] != action:  # to run because an upstream stage runs
                kind = WITH_WORK
            (_key, _identity, _fp, _action, lock_name, lock_sig, files, sigs, entry_dirs,
             entry_file_objects, entry_dir_objects) = entry
            signed.locks[lock_name] = lock_sig
            for relpath, signature in zip(files, sigs):  # inline: 50,000 paths at 20,000 stages
                if file_sigs.setdefault(relpath, signature) != signature:
                    return  # two verdicts saw the file differently: nothing to unite
            for relpath, digest in entry_dirs:
                if dirs.setdefault(relpath, digest) != digest:
                    return
            file_objects.update(dict.fromkeys(entry_file_objects))
            dir_objects.update(dict.fromkeys(entry_dir_objects))
        for worked in worked_out.values():
            if not self._sign_worked_out(worked, signed, dirs, file_objects, dir_objects):
                return
        if worked_out and not self._sign_run_cache_dir(signed):
            return
        for relpath in list(dirs):
            # a directory by what its hash is made of, when all of it can be signed:
            # a stat per file instead of hashing it again through the stat cache
            tree = _tree(self._prefix, relpath, state.verdicts.started_ns)
            if tree is None:
                continue
            below, missing = tree
            for path, signature in below:
                if not signed.add(path, signature):
                    return
            for path in missing:
                if not signed.add(path, None):
                    return
            del dirs[relpath]
        notices = tuple(stage.address for stage in pipeline.stages if stage.frozen and not stage.is_tracked_data)
        written_dirs = _written_dirs(pipeline)
        try:
            entry_bytes = marshal.dumps((
                self._code_key(), pipeline.identity, tuple(decided), notices,
                tuple(signed.locks), _packed(signed.locks.values()), tuple(signed.files),
                _packed(signed.files.values()), tuple(dirs.items()), tuple(file_objects), tuple(dir_objects),
                tuple(written_dirs), tuple(signed.absent), kind,
            ))
        except ValueError:  # a reason holding a value marshal cannot (a date in a params file)
            return
        # a plan without work reads the same explained or not: it answers
        # both, and the entries with work it replaces are stale
        if kind == WORK_FREE:
            state.statdb.remember_settled(pipeline.identity, entry_bytes, replaces_both=True)
        else:
            state.statdb.remember_settled(EXPLAINED + pipeline.identity if explained else pipeline.identity,
                                          entry_bytes)

    def _absent(self, relpath: str, signed: "_Signed") -> bool:
        """Keep ``relpath`` by its absence -- or, when its directory is
        missing too, by the directory's (once for all the paths in it: the
        outputs of a never-run pipeline's 100,000 stages are two paths).
        False when it is there after all (a dangling link)."""
        parent = relpath.rpartition("/")[0]
        if parent:
            if parent in signed.gone:
                return True
            if not os.path.lexists(self._prefix + parent):
                signed.gone.add(parent)
                return signed.add(parent, None)
        if os.path.lexists(self._prefix + relpath):
            return False
        return signed.add(relpath, None)

    def _sign_run_cache_dir(self, signed: "_Signed") -> bool:
        """Keep the run cache's directory by its signature, or its absence
        (False when that cannot be done).  Its entries live in directories
        named by their keys' first two characters: the first entry, or one
        under a new prefix, moves it.  A plan that found the run cache empty
        looked for no entry (and hashed no dep to make a key); one that did
        look keeps each entry it looked for absent besides."""
        state = self._state
        path = str(state.runcache.dir)
        if not path.startswith(self._prefix):
            return False
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return not os.path.lexists(path) and signed.add(path[len(self._prefix):], None)
        except OSError:
            return False
        signature = signature_of(st)
        if not stat_mod.S_ISDIR(st.st_mode) or not is_settled(signature, state.verdicts.started_ns):
            return False
        return signed.add(path[len(self._prefix):], signature)

    def _sign_worked_out(self, worked: "Worked", signed: "_Signed", dirs: dict[str, str],
                         file_objects: dict[str, None], dir_objects: dict[tuple, None]) -> bool:
        """Add what a stage's verdict to run could have read: its lock file
        (or its absence, and then its ``dvc.lock``), each dep, params file and
        out (a file by its signature, a directory by its hash, or absent), the
        cached objects of its recorded outs, and the run-cache entry the plan
        looked for (absent).  False when something cannot be kept so."""
        stage, record, run_entry = worked
        state = self._state
        started_ns = state.verdicts.started_ns
        if record is not None and type(record) is not LockRecord:
            return False  # a dvc.lock entry, seen DVC's way
        lock_name = lock_filename(stage.address)
        if record is not None:
            try:
                st = os.stat(self._locks_prefix + lock_name)
            except OSError:
                return False
            lock_sig = signature_of(st)
            if not stat_mod.S_ISREG(st.st_mode) or not is_settled(lock_sig, started_ns):
                return False
            signed.locks[lock_name] = lock_sig
        elif not self._absent(f"{self._locks_dir()}/{lock_name}", signed):
            return False  # a record that could not be read (a warning each time), or one just made
        consulted = [*(dep.path for dep in stage.deps), *(p.path for p in stage.params),
                     *(out.path for out in stage.outs)]
        if record is None and stage.in_dvc_yaml:  # what adopting would read
            consulted.append(stage.file[:-len("dvc.yaml")] + "dvc.lock")
        seen_present = state.hasher.seen_present
        for relpath in dict.fromkeys(consulted):
            try:
                st = os.stat(self._prefix + relpath)
            except (FileNotFoundError, NotADirectoryError):
                # there when the plan looked, gone now: removed during the command
                if seen_present(relpath) or not self._absent(relpath, signed):
                    return False
                continue
            except OSError:
                return False
            if stat_mod.S_ISDIR(st.st_mode):
                try:
                    info = state.hasher.hash(relpath)  # hashed by the plan already
                except StateError:
                    return False
                if info is None or dirs.setdefault(relpath, info.hash) != info.hash:
                    return False
                continue
            signature = signature_of(st)
            if not stat_mod.S_ISREG(st.st_mode) or not is_settled(signature, started_ns):
                return False
            if not signed.add(relpath, signature):
                return False
        if record is not None:
            # with every object there, outputs a checkout could repair would
            # have been restored, not run: an object appearing changes nothing
            cached = {out.path for out in stage.outs if out.cache}
            for entry in record.outs:
                if entry.path not in cached or not entry.hash:
                    continue
                info = HashInfo(entry.hash, entry.size, entry.nfiles)
                if not state.cache.contains(info):
                    return False
                if info.is_dir:
                    dir_objects[(info.hash, info.size, info.nfiles)] = None
                else:
                    file_objects[info.hash] = None
        if run_entry is not None:
            if not run_entry.startswith(self._prefix) or os.path.lexists(run_entry):
                return False
            if not signed.add(run_entry[len(self._prefix):], None):
                return False
        return True

    def remember_never_run(self, pipeline: "Pipeline", decided: Sequence[str], started_ns: int) -> None:
        """Unite a plan of every stage of ``pipeline`` that found each one
        never run (``decided``: the addresses in run order), made from the
        disk as it was at ``started_ns``, with no run cache or remote to
        consult (see the module doc)."""
        state = self._state
        if state.statdb.readonly or pipeline.identity is None or len(decided) != len(pipeline.stages):
            return
        locks_dir = self._locks_dir()
        consulted: dict[str, None] = {locks_dir: None}
        for file in {stage.file for stage in pipeline.stages}:
            if file.endswith(".dvc"):
                return  # tracked data: its record is the .dvc file itself
            if file == "dvc.yaml" or file.endswith("/dvc.yaml"):
                consulted[file[:-len("dvc.yaml")] + "dvc.lock"] = None
        for stage in pipeline.stages:
            for dep in stage.deps:
                consulted[dep.path] = None
            for pdep in stage.params:
                consulted[pdep.path] = None
        signed = _Signed()
        files = signed.files  # each path once (consulted is a dict): set directly, 50,000 of them
        seen = state.hasher.found_regular  # the deps the plan checked, as it saw them
        prefix = self._prefix
        for relpath in consulted:
            if relpath.rpartition("/")[0] in signed.gone:
                continue  # its directory is kept absent: so is everything in it
            st = seen.get(relpath)
            if st is None:
                try:
                    st = os.stat(prefix + relpath)
                except (FileNotFoundError, NotADirectoryError):
                    if not self._absent(relpath, signed):
                        return  # a dangling link
                    continue
                except OSError:
                    return  # unreadable: nothing to remember it by
                # a directory dep's signature does not show an edit inside it
                if not (stat_mod.S_ISREG(st.st_mode) or (relpath == locks_dir and stat_mod.S_ISDIR(st.st_mode))):
                    return
            signature = signature_of(st)
            if not is_settled(signature, started_ns):
                return
            files[relpath] = signature
        written_dirs = _written_dirs(pipeline)
        try:
            entry_bytes = marshal.dumps((
                self._code_key(), pipeline.identity, tuple(decided), (),
                (), b"", tuple(files), _packed(files.values()), (), (), (), tuple(written_dirs),
                tuple(signed.absent), NEVER_RUN,
            ))
        except ValueError:
            return
        state.statdb.remember_settled(pipeline.identity, entry_bytes)


class Worked(NamedTuple):
    """A stage to run for reasons of its own, as its plan worked it out."""

    stage: "Stage"
    record: "LockRecord | None"  # what it was compared with (None: no record)
    run_entry: str | None  # the run-cache entry file the plan looked for (absolute), if it looked


class _Signed:
    """The paths an entry keeps: lock files and other files by signature,
    paths by their absence; one view of each path."""

    __slots__ = ("locks", "files", "absent", "gone")

    def __init__(self) -> None:
        self.locks: dict[str, tuple] = {}
        self.files: dict[str, tuple] = {}
        self.absent: dict[str, None] = {}
        self.gone: set[str] = set()  # directories kept absent: what they would hold is absent too

    def add(self, relpath: str, signature: tuple | None) -> bool:
        """Keep ``relpath`` by ``signature`` (None: absent); False when
        another verdict saw it otherwise."""
        if signature is None:
            if relpath in self.files:
                return False
            self.absent[relpath] = None
            return True
        if relpath in self.absent:
            return False
        return self.files.setdefault(relpath, signature) == signature


def _written_dirs(pipeline: "Pipeline") -> list[str]:
    """The directories the stages run in and write in (resolved again at
    each recall, as a cached pipeline's are)."""
    return sorted({stage.wdir for stage in pipeline.stages}
                  | {out.path.rpartition("/")[0] for stage in pipeline.stages for out in stage.outs})


def _packed(signatures: Iterable[tuple]) -> bytes:
    """Signatures as one array of 64-bit integers: read back without making
    a tuple of five ints per path (a fifth of a recall, as tuples)."""
    return array("q", chain.from_iterable(signatures)).tobytes()


_CHUNK = 2048  # paths compared at once: a changed one is found without stat'ing all the others


def _unchanged(prefix: str, paths: Sequence[str], packed: bytes) -> bool:
    """Whether each of ``paths`` still has the signature packed for it: one
    ``stat`` each, compared a chunk at a time.  Plain code: at 20,000
    stages this runs for 50,000 paths."""
    if len(packed) != len(paths) * _PACKED_SIZE:
        return False
    stat = os.stat
    for start in range(0, len(paths), _CHUNK):
        current: list[int] = []
        extend = current.extend
        for relpath in paths[start:start + _CHUNK]:
            try:
                st = stat(prefix + relpath)
            except OSError:
                return False
            extend((st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        if array("q", current).tobytes() != packed[start * _PACKED_SIZE:(start + _CHUNK) * _PACKED_SIZE]:
            return False
    return True


_PACKED_SIZE = array("q").itemsize * 5  # bytes of one packed signature


def _tree(prefix: str, relpath: str, started_ns: int) -> tuple[list[tuple[str, tuple]], list[str]] | None:
    """What the hash of directory ``relpath`` is made of, as paths to
    ``stat``: the signature of the directory and of every directory and
    file below it (ignored ones too: more than the hash reads only costs a
    needless miss), and the ignore files of the directories holding it
    (signed, or absent).  An entry added, removed or renamed moves its
    directory's mtime; a file edited in place, its own signature.  None
    when that cannot stand in for hashing: a directory outside the
    project, the root (it holds pivot's state), a dangling link below it,
    or a signature within the racy window."""
    if relpath in ("", ".") or relpath.startswith(("/", "../")) or "/../" in relpath:
        return None
    signed: list[tuple[str, tuple]] = []
    missing: list[str] = []
    holder = relpath
    while holder:  # the ignore files that apply: in each directory holding it, up to the root
        holder = holder.rpartition("/")[0]
        for name in IGNORE_FILES:
            path = f"{holder}/{name}" if holder else name
            try:
                st = os.stat(prefix + path)
            except FileNotFoundError:
                missing.append(path)
                continue
            except OSError:
                return None
            signed.append((path, signature_of(st)))
    stack = [relpath]
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(prefix + directory)
            with os.scandir(prefix + directory) as listing:
                children = list(listing)
        except OSError:
            return None
        signed.append((directory, signature_of(st)))
        for child in children:
            try:
                st = child.stat()  # follows symlinks, as the hash does
            except OSError:
                return None  # dangling, or unreadable: the hash says what to do
            if stat_mod.S_ISDIR(st.st_mode):
                if not child.is_symlink():  # not descended by the hash; its replacement moves this directory
                    stack.append(f"{directory}/{child.name}")
            elif stat_mod.S_ISREG(st.st_mode):
                signed.append((f"{directory}/{child.name}", signature_of(st)))
    if not all(is_settled(signature, started_ns) for _, signature in signed):
        return None
    return signed, missing


def _still_absent(prefix: str, paths: Sequence[str]) -> bool:
    """Whether none of ``paths`` exists (not even as a dangling link).  A
    path in a directory found absent is absent too: one ``lstat`` answers
    for all the outputs a never-run stage would write there."""
    gone: set[str] = set()
    present: set[str] = set()
    lexists = os.path.lexists
    for relpath in paths:
        parent = relpath.rpartition("/")[0]
        if parent:
            if parent in gone:
                continue
            if parent not in present:
                if not lexists(prefix + parent):
                    gone.add(parent)
                    continue
                present.add(parent)
        if lexists(prefix + relpath):
            return False
    return True


def _leaves_project(root: "Path", directories: Sequence[str]) -> bool:
    """Whether a directory stages write in (or run in) now leads out of the
    project through a symlink."""
    from pivot.containment import RealParents

    parents = RealParents(root)
    return any(parents.dir_escape(directory) is not None for directory in directories if directory not in ("", "."))
