"""The run-time side of ``pivot emit ninja``: what Ninja edges call back into.

``pivot.backends.ninja`` turns the IR into text and touches nothing; this
module does the disk work, as Meson's ``mesonbuild/scripts/`` does for the
files Meson generates:

* at emit time: scan source directories and missing paths (the emitter's
  input), write key files, listings, the probe stamp and fresh markers,
  prune the files of stages that are gone;
* at build time, through the hidden ``pivot emit ninja-*`` commands:
  ``prepare_stage`` before a stage edge's commands (do what ``pivot run``
  does for the stage's action, short of running the commands),
  ``finish_stage`` after them (record the stage, settle its outputs'
  mtimes), and the directory stamps.

Every path written, replaced or removed is checked first: outputs with
``pivot.containment.writable_path``, the files under ``.pivot/ninja`` through
``pivot.backends.bridge_files`` (each directory checked once, no symlink
followed): a cloned repository can hold a symlink on the way to an output
or to ``.pivot/ninja``.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Mapping, assert_never

from pivot.backends.bridge_files import BridgeFiles
from pivot.backends.ninja import (
    EDGE_SCRIPT,
    NINJA_DIR,
    PROBE,
    RELIST,
    NinjaFile,
    SourceDir,
    dir_stamp,
    done_stamp,
    fresh_marker,
    key_path,
    list_path,
    out_record,
    related_outs,
    wrote_stamp,
)
from pivot.containment import writable_path
from pivot.errors import PivotError
from pivot.graph import OutIndex
from pivot.ir import Pipeline, Stage
from pivot.optimizer import Action, Decision

if TYPE_CHECKING:
    from pivot.state import State
    from pivot.state.locks import LockRecord


# -- what is on disk at emit time ---------------------------------------------------


def scan_source_dirs(root: Path, pipeline: Pipeline) -> dict[str, SourceDir]:
    """Every dep that is a directory on disk and not inside (or equal to) an
    output, with what it holds (outputs below it left out)."""
    index = OutIndex.build(pipeline.stages)
    found: dict[str, SourceDir] = {}
    for stage in pipeline.stages:
        for dep in stage.deps:
            path = dep.path
            if path in found or path in index.owner or index.enclosing_out(path):
                continue
            if os.path.isdir(root / path) and not os.path.islink(root / path):
                found[path] = list_dir(root, path, tuple(index.outs_inside(path)))
    return found


def list_dir(root: Path, path: str, outs: tuple[str, ...]) -> SourceDir:
    """What directory ``path`` holds, not descending into symlinks, with the
    ``outs`` inside it left out."""
    owned = frozenset(outs)
    files: list[str] = []
    subdirs: list[str] = [path]
    for dirpath, dirnames, filenames in os.walk(root / path):
        rel = Path(os.path.relpath(dirpath, root)).as_posix()
        kept = []
        for name in sorted(dirnames):
            child = posixpath.join(rel, name)
            if child in owned or os.path.islink(os.path.join(dirpath, name)):
                if child not in owned:
                    files.append(child)
                continue
            kept.append(name)
            subdirs.append(child)
        dirnames[:] = kept
        files += [posixpath.join(rel, name) for name in sorted(filenames) if posixpath.join(rel, name) not in owned]
    return SourceDir(path, tuple(files), tuple(subdirs), outs)


def scan_missing(root: Path, pipeline: Pipeline) -> frozenset[str]:
    """Deps and params files that no stage produces and that are absent now."""
    index = OutIndex.build(pipeline.stages)
    paths = dict.fromkeys(p.path for stage in pipeline.stages for p in (*stage.deps, *stage.params))
    base = os.fspath(root)
    return frozenset(p for p in paths if not os.path.lexists(os.path.join(base, p)) and not related_outs(index, p))


# -- writing bridge files -------------------------------------------------------------


def key_text(decision: Decision) -> str:
    """What a key file holds: why emit forced the stage's edge (for people;
    Ninja reads only its mtime)."""
    return "".join(f"{reason.describe()}\n" for reason in decision.own_reasons) or f"{decision.action.name}\n"


def _has_work_ninja_cannot_see(decision: Decision) -> bool:
    """Whether the plan has work for the stage that no mtime may show (a
    params value changed, an output edited by hand, a dep restored with an
    old mtime, a frozen stage's outputs to re-record): its edge must read a
    key newer than anything."""
    action = decision.action
    match action:
        case Action.CHECKOUT | Action.RECORD_FROZEN:
            return True
        case Action.RUN | Action.RESTORE_RUN:
            return bool(decision.own_reasons)  # an upstream rerun shows through its outputs' mtimes
        case Action.UP_TO_DATE | Action.FROZEN:
            return False
    assert_never(action)


def forced_stages(decisions: Iterable[Decision]) -> dict[str, Decision]:
    """The decisions, by address, of the stages whose edges read a key file."""
    return {d.stage.address: d for d in decisions if _has_work_ninja_cannot_see(d)}


def write_keys(files: BridgeFiles, forced: Mapping[str, Decision]) -> None:
    """Write the key file of every forced stage with a newer mtime than
    anything, so that Ninja reruns its edge even when no other mtime shows
    why.  Other stages have none (``prune_bridge_files`` removes them)."""
    files.directory(f"{NINJA_DIR}/keys")  # always there: rsp files go there too
    now = time.time_ns()
    for address, decision in forced.items():
        relpath = key_path(address)
        files.write_if_changed(relpath, key_text(decision))
        files.set_mtime_ns(relpath, now)


def write_probe(files: BridgeFiles, missing: Collection[str]) -> None:
    """Create the probe edge's stamp (its text: the paths it looks for)."""
    files.write_if_changed(PROBE, "".join(f"{p}\n" for p in sorted(missing)))


def write_edge_script(files: BridgeFiles, text: str) -> None:
    """Write the edge script with the current time as its mtime, written or
    not: it is an output of the regenerate edge, which must find it newer
    than its inputs once it has run."""
    if not files.write_if_changed(EDGE_SCRIPT, text):
        files.touch(EDGE_SCRIPT)


def write_listings(files: BridgeFiles, source_dirs: Mapping[str, SourceDir]) -> None:
    """Keep the listing of each source directory the Ninja file reads, and
    create the RELIST stamp (older than the Ninja file written next)."""
    for sd in source_dirs.values():
        files.write_if_changed(list_path(sd.path), sd.listing_text())
    if source_dirs:
        files.write_if_changed(RELIST, "newer than the Ninja file: a directory dep gained or lost entries\n")


def listing_changed(files: BridgeFiles, relpath: str) -> bool:
    """True when directory ``relpath`` no longer holds what the Ninja file
    lists (entries added or removed, the directory gone); outputs inside it
    do not count.  A missing or unreadable listing counts as changed."""
    text = files.read_text(list_path(relpath))
    listed = SourceDir.from_listing_text(text) if text is not None else None
    if listed is None or listed.path != relpath:
        return True
    root = files.root
    full = root / relpath
    if not full.is_dir() or full.is_symlink():
        return True
    return list_dir(root, relpath, listed.outs) != listed


def _read_out_record(files: BridgeFiles, relpath: str) -> tuple[str, int] | None:
    """(hash, mtime in ns) from an ``outs/`` record; None when there is none
    (or it is unreadable, or from an older pivot: nothing to go by)."""
    text = files.read_text(relpath)
    parts = text.split() if text is not None else ()
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _write_out_record(files: BridgeFiles, out_path: str, digest: str | None, mtime_ns: int | None) -> None:
    relpath = out_record(out_path)
    if digest is None or mtime_ns is None:
        files.unlink(relpath)  # nothing recorded or nothing there: no mtime to keep
    else:
        files.write_if_changed(relpath, f"{digest} {mtime_ns}\n")


def _mark_done(files: BridgeFiles, stage: Stage) -> None:
    """A stage without outputs: its edge's output is a marker, new each time."""
    if not stage.outs:
        files.write_if_changed(done_stamp(stage.address), "done\n")
        files.touch(done_stamp(stage.address))


def _recorded_hash(record: "LockRecord | None", path: str) -> str | None:
    entry = record.out(path) if record is not None else None
    return entry.hash if entry is not None else None


def remember_outputs(files: BridgeFiles, stage: Stage, state: "State") -> None:
    """Record each output of a stage found up to date as it is (its recorded
    hash, its mtime now): what ``settle_outputs`` compares with next."""
    record = state.locks.read(stage.address)
    base = os.fspath(files.root)
    for out in stage.outs:
        try:
            mtime: int | None = os.stat(os.path.join(base, out.path)).st_mtime_ns
        except OSError:
            mtime = None
        _write_out_record(files, out.path, _recorded_hash(record, out.path), mtime)
    _mark_done(files, stage)


def settle_outputs(files: BridgeFiles, stage: Stage, state: "State") -> None:
    """After pivot wrote a stage's outputs (its commands ran, or they were
    restored or re-recorded): give each the mtime Ninja must see.

    Ninja reruns what reads a file newer than its last build; pivot, what
    reads changed content.  So an output whose content is what the last
    record says gets that record's mtime back (with ``restat``, Ninja then
    stops there: pivot's early cutoff), and one whose content changed gets
    the current time, newer than anything read before, even when it was
    written with an old mtime (``cp -p``, a link to an older cache object).
    The stat cache learns the restored mtime, so no later command hashes
    the file again.

    A file shared with others (a cache object in hardlink or symlink mode,
    which every output of the same content links to) is never set back: its
    one mtime is theirs too, and it already stays put while its content
    does (the same content is the same object).  An output leading outside
    the project keeps its mtime: pivot changes nothing there."""
    record = state.locks.read(stage.address)
    base = os.fspath(files.root)
    real_root = os.path.realpath(base)
    now = time.time_ns()
    for out in stage.outs:
        digest = _recorded_hash(record, out.path)
        path = os.path.join(base, out.path)
        previous = _read_out_record(files, out_record(out.path))
        unchanged = previous is not None and previous[0] == digest
        try:
            st = os.stat(path)
            shared = os.path.islink(path) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1)
            wanted = st.st_mtime_ns if unchanged and shared else previous[1] if unchanged else now
            real = os.path.realpath(path)
            if st.st_mtime_ns != wanted and (real == real_root or real.startswith(real_root + os.sep)):
                os.utime(path, ns=(st.st_atime_ns, wanted))
                st = os.stat(path)
                _teach_stat_cache(state, out.path, st, digest)
            mtime: int | None = st.st_mtime_ns
        except OSError:  # gone, or not ours to change: Ninja sees what is there
            mtime = None
        _write_out_record(files, out.path, digest, mtime)
    _mark_done(files, stage)


def _teach_stat_cache(state: "State", relpath: str, st: os.stat_result, digest: str | None) -> None:
    """Remember a file's hash under the mtime it was just given (the hash
    was taken a moment ago, under the mtime its writer left)."""
    info = state.hasher.hash(relpath)  # known already: recorded just now
    statdb = state.hasher.statdb
    if statdb is not None and info is not None and not info.is_dir and info.hash == digest:
        statdb.store(relpath, st, digest)


def write_dir_stamp(files: BridgeFiles, relpath: str, stamp: str, state: "State") -> None:
    """Stamp source directory ``relpath`` with its content hash, only when it changed."""
    state.hasher.invalidate(relpath)
    info = state.hasher.hash(relpath)
    files.write_if_changed(stamp, (info.hash if info else "absent") + "\n")


def _is_fresh(action: Action) -> bool:
    """Whether a stage with ``action`` has nothing to do now."""
    match action:
        case Action.UP_TO_DATE | Action.FROZEN:
            return True
        case Action.RUN | Action.CHECKOUT | Action.RESTORE_RUN | Action.RECORD_FROZEN:
            return False
    assert_never(action)


def mark_fresh(
    files: BridgeFiles, model: NinjaFile, decisions: Iterable[Decision], source_dirs: Collection[str],
    state: "State",
) -> None:
    """Spare Ninja a pivot start-up for each stage the plan finds up to date.

    Without a ``.ninja_log`` (the first ``ninja``, say after ``pivot run``)
    Ninja finds every edge dirty, and each would start pivot only to hear
    that its stage is fresh.  So for each fresh stage this records its
    outputs as ``ninja-prepare`` would, then a marker whose mtime is that of
    the edge's newest input: while every output exists and no input is newer
    than the marker, the edge knows without pivot that nothing changed since
    (Ninja's own rule, with the marker for the log).  Any other stage loses
    its marker, and so does one reading a file changed in the last two
    seconds (see _newest_mtime).
    """
    from pivot.state.statdb import RACY_WINDOW_NS

    root = files.root
    base = os.fspath(root)  # str joins: pathlib is slow at 10,000 stages
    fresh = {d.stage.address: d.stage for d in decisions if _is_fresh(d.action)}
    for relpath in source_dirs:
        write_dir_stamp(files, relpath, dir_stamp(relpath), state)
    for build in model.stage_edges:
        if build.stage in fresh:
            remember_outputs(files, fresh[build.stage], state)
            wrote = wrote_stamp(build.stage)
            if wrote in build.outputs and not files.exists(wrote):
                files.touch(wrote)
    racy_after = time.time_ns() - RACY_WINDOW_NS
    # Outputs just recorded above: a later change comes from their stage's
    # edge (settle_outputs: a new mtime) or by hand (which Ninja never saw
    # through a marker either way; the next emit's plan does).
    recorded = {out.path for stage in fresh.values() for out in stage.outs}
    for build in model.stage_edges:
        assert build.stage is not None
        relpath = fresh_marker(build.stage)
        newest = None
        if build.stage in fresh and build.fresh is not None:
            newest = _newest_mtime(root, (*build.inputs, *build.implicit), racy_after, recorded)
        if newest is None or not all(os.path.lexists(os.path.join(base, p))
                                     for p in (*build.outputs, *build.implicit_outputs)):
            files.unlink(relpath)
            continue
        files.write_if_changed(relpath, "up to date when the Ninja file was written\n")
        files.set_mtime_ns(relpath, newest)


def _newest_mtime(root: Path, paths: Iterable[str], racy_after: int, recorded: Collection[str]) -> int | None:
    """The newest mtime (ns, symlinks followed, as Ninja stats) of ``paths``;
    None when one is missing, or when a file of the user's changed after
    ``racy_after``: a change within the same mtime tick would then go unseen
    (the stat cache's racy rule; pivot's own stamps are not edited behind
    it, nor are the ``recorded`` outputs of fresh stages)."""
    newest = 0
    base = os.fspath(root)
    for path in paths:
        try:
            mtime = os.stat(os.path.join(base, path)).st_mtime_ns
        except OSError:
            return None
        if mtime > racy_after and path not in recorded and not path.startswith(NINJA_DIR + "/"):
            return None
        newest = max(newest, mtime)
    return newest


_BRIDGE_DIRS = ("keys", "outs", "dirs", "lists", "wrote", "done", "fresh")


def prune_bridge_files(files: BridgeFiles, model: NinjaFile, source_dirs: Collection[str]) -> None:
    """Remove the files under ``.pivot/ninja/`` that the Ninja file no longer
    names: stages, outputs and directory deps that are gone."""
    named = {path for build in model.builds
             for path in (*build.outputs, *build.implicit_outputs, *build.inputs, *build.implicit)}
    named.update(list_path(path) for path in source_dirs)
    named.update(build.fresh for build in model.stage_edges if build.fresh is not None)
    named.update(out_record(path) for build in model.stage_edges for path in build.outputs)
    for kind in _BRIDGE_DIRS:
        relpath = f"{NINJA_DIR}/{kind}"
        for name in files.file_names(relpath):
            if f"{relpath}/{name}" not in named:
                files.unlink(f"{relpath}/{name}")


# -- around a stage edge's commands ---------------------------------------------------


SETTLE_LOCK = f"{NINJA_DIR}/settle.lock"  # one edge at a time repairs an upstream output


def prepare_stage(files: BridgeFiles, stage: Stage, state: "State", *, pipeline: Pipeline | None = None,
                  wrote: str | None = None) -> bool:
    """Before a stage edge's commands, do what ``pivot run`` does for the
    stage's action, short of running the commands: True when they must run
    (outputs then prepared as the runner does); otherwise restore, re-record
    a frozen stage, settle or remember the outputs, and return False.

    With ``pipeline``, an output of a direct upstream stage edited by hand
    since it was recorded is first restored (re-recorded, for a frozen
    stage), as ``pivot run`` would have done before reaching this stage:
    Ninja sees such an edit through this stage's input, never through the
    upstream edge, whose inputs did not change.

    ``wrote`` (the stage's ``wrote/`` stamp) is touched when its outputs are
    about to be written, and created when missing (it is an edge output)."""
    decision = _decide(stage, state)
    if pipeline is not None and decision.action in (Action.RUN, Action.RESTORE_RUN):
        if _repair_upstream(files, stage, pipeline, state):
            decision = _decide(stage, state)
    return _carry_out(files, decision, state, wrote)


def _decide(stage: Stage, state: "State") -> Decision:
    from pivot import optimizer

    return optimizer.consult_run_cache(optimizer.check_stage(stage, state), state)


def _repair_upstream(files: BridgeFiles, stage: Stage, pipeline: Pipeline, state: "State") -> bool:
    """Repair the outputs of direct upstream stages that ``stage`` reads and
    that no longer hold what their stage recorded; True when any was looked
    at (then the stage's deps are read again: an edge beside this one may
    have repaired them meanwhile).  One edge at a time, under SETTLE_LOCK."""
    from pivot import optimizer
    from pivot.optimizer import ReasonKind

    explained = optimizer.check_stage(stage, state, explain=True)
    changed = {r.path: r.new for r in explained.reasons
               if r.kind in (ReasonKind.DEP_MODIFIED, ReasonKind.DEP_DELETED) and r.path is not None}
    if not changed:
        return False
    suspects = [producer for producer in (pipeline.stage(a) for a in pipeline.upstream.get(stage.address, ()))
                if _may_differ_from_record(producer, changed, state)]
    if not suspects:
        return False
    with files.exclusive(SETTLE_LOCK):
        for producer in suspects:
            for out in producer.outs:
                state.hasher.invalidate(out.path)
            _repair(files, optimizer.check_stage(producer, state), state)
    for path in changed:
        state.hasher.invalidate(path)
    return True


def _may_differ_from_record(producer: Stage, changed: Mapping[str, str | None], state: "State") -> bool:
    """Whether a changed dep of the consumer is (in, or around) an output of
    ``producer`` that may not hold what ``producer`` recorded.  The usual
    case, an upstream stage that just ran, is settled by one comparison
    with its record: the dep's hash is the output's recorded hash."""
    record = state.locks.read(producer.address)
    for out in producer.outs:
        for path, digest in changed.items():
            if not _related(out.path, path):
                continue
            entry = record.out(out.path) if record is not None else None
            if path != out.path or entry is None or entry.hash != digest:
                return True
    return False


def _repair(files: BridgeFiles, decision: Decision, state: "State") -> None:
    """An upstream stage's work when it needs no command; else nothing."""
    stage = decision.stage
    action = decision.action
    match action:
        case Action.CHECKOUT:
            if _restore(files.root, decision, state):
                _touch_wrote(files, _existing_wrote(files, stage), writes=True)
                settle_outputs(files, stage, state)
            return
        case Action.RECORD_FROZEN:
            _record_frozen(decision, state)
            settle_outputs(files, stage, state)
            return
        case Action.RUN | Action.RESTORE_RUN | Action.UP_TO_DATE | Action.FROZEN:
            return  # its own edge's work (Ninja runs it first when its inputs changed), or none
    assert_never(action)


def _related(out: str, path: str) -> bool:
    """Whether output ``out`` is ``path``, holds it or lies inside it."""
    return out == path or path.startswith(out + "/") or out.startswith(path + "/") or path == "."


def _existing_wrote(files: BridgeFiles, stage: Stage) -> str | None:
    """The stage's ``wrote/`` stamp, when its edge has one (it writes into a directory dep)."""
    stamp = wrote_stamp(stage.address)
    return stamp if files.exists(stamp) else None


def _carry_out(files: BridgeFiles, decision: Decision, state: "State", wrote: str | None) -> bool:
    """The work of ``decision`` (True: the commands must run now)."""
    root = files.root
    stage = decision.stage
    action = decision.action
    match action:
        case Action.RUN:
            _touch_wrote(files, wrote, writes=True)
            prepare_outputs(root, stage)
            return True
        case Action.CHECKOUT | Action.RESTORE_RUN:
            _touch_wrote(files, wrote, writes=True)
            if not _restore(root, decision, state):
                prepare_outputs(root, stage)  # the restore could not happen: run instead, as `pivot run` does
                return True
            settle_outputs(files, stage, state)
            return False
        case Action.RECORD_FROZEN:
            _touch_wrote(files, wrote, writes=False)
            _record_frozen(decision, state)
            settle_outputs(files, stage, state)
            return False
        case Action.UP_TO_DATE | Action.FROZEN:
            _touch_wrote(files, wrote, writes=False)
            remember_outputs(files, stage, state)
            return False
    assert_never(action)


def _touch_wrote(files: BridgeFiles, wrote: str | None, *, writes: bool) -> None:
    if wrote is not None and (writes or not files.exists(wrote)):
        files.touch(wrote)


def prepare_outputs(root: Path, stage: Stage) -> None:
    """Clear the outputs as the runner does, after checking that each one
    (and the way to it) stays inside the project."""
    from pivot.backends import outputs

    for out in stage.outs:
        writable_path(root, out.path, what=f"output of stage '{stage.address}'")
    outputs.prepare(root, stage)


def _restore(root: Path, decision: Decision, state: "State") -> bool:
    """Restore the outputs from where the plan says (``restore.restore_stage``,
    as the runner does); False when that cannot happen (an object missing,
    or corrupt and removed): the stage must run."""
    from pivot.state.restore import restore_stage

    assert decision.source is not None
    report = restore_stage(decision.stage, state, decision.source, record=decision.record,
                           run_entry=decision.run_entry)
    return report.complete


def _record_frozen(decision: Decision, state: "State") -> None:
    """A frozen stage never runs: its outputs must exist, and are recorded
    as they are (what ``pivot run`` does)."""
    from pivot.state import record

    stage = decision.stage
    missing = [out.path for out in stage.outs if not os.path.exists(state.project.root / out.path)]
    if missing:
        names = ", ".join(f"'{path}'" for path in missing)
        raise PivotError(f"stage '{stage.address}': frozen stage is missing output {names}"
                         " (frozen stages never run; restore it or unfreeze the stage)")
    adopted_from = decision.record.adopted_from if decision.record is not None else None
    record.commit_stage(stage, state, adopted_from=adopted_from)


def finish_stage(files: BridgeFiles, stage: Stage, state: "State") -> None:
    """After a stage edge's commands: record the stage (as ``pivot commit``
    does) and settle its outputs' mtimes."""
    from pivot.state import record

    for out in stage.outs:
        state.hasher.invalidate(out.path)
    record.commit_stage(stage, state)
    settle_outputs(files, stage, state)
