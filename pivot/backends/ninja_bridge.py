"""``pivot emit ninja``: the pipeline as a Ninja file (``templates/build.ninja.j2``).

Two steps, as Meson does it: ``build_ninja`` turns the IR into a small
Ninja-shaped model (``NinjaRule``, ``NinjaBuild``, ``NinjaFile``), then the
template writes it.  Ninja decides by mtimes, pivot by content; the bridge
(details in docs/emit.md):

* each stage edge also reads a key file (``.pivot/ninja/keys/``) holding its
  commands and params values, rewritten only when they change -- at emit
  time and by the regenerate edge, which reruns when a pipeline, params or
  vars file changes;
* downstream edges read per-output stamps (``.pivot/ninja/outs/``) holding the
  output's content hash, rewritten only when it changes; with ``restat``
  an output rewritten with the same content stops propagation;
* a source directory dep is read through a stamp (``.pivot/ninja/dirs/``)
  whose edge depends on every file and subdirectory listed at emit time; the
  same edge compares the directory's entries with that listing (kept in
  ``.pivot/ninja/lists/``) and, when files came or went, touches
  ``.pivot/ninja/relist`` so that the next ``ninja`` rewrites the file --
  outputs written into the directory change its mtime, not its listing;
* an edge Ninja finds dirty first asks pivot (``pivot emit ninja-prepare``)
  whether the stage is stale by content; if not, it does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Mapping, Sequence

from pivot import __version__, atomic
from pivot.backends.environment import stage_env
from pivot.backends.execute import shell_prefix_sh
from pivot.backends.escape import (
    check_path,
    comment_text,
    needs_binding,
    ninja_escape,
    ninja_escape_path,
    sh_path,
    sh_quote,
)
from pivot.graph import OutIndex
from pivot.ir import Pipeline, Stage

if TYPE_CHECKING:
    from pivot.optimizer import Decision
    from pivot.state import State

NINJA_DIR = ".pivot/ninja"
ALWAYS = f"{NINJA_DIR}/always"  # a phony target that is never built: always dirty
PROBE = f"{NINJA_DIR}/missing"  # touched when a dep or params file missing at emit time appears
RELIST = f"{NINJA_DIR}/relist"  # touched when a source directory no longer matches its listing
FRESH_EXIT = 3  # ninja-prepare: the stage is up to date, run nothing
_ROOT_MARK = Path("/__pivot_root__")


# -- where the bridge files live ------------------------------------------------


def _flat(name: str) -> str:
    """``name`` as one safe file name (percent-encoded, bounded length)."""
    flat = urllib.parse.quote(name, safe="@+,=-._")
    if len(flat) > 150:
        flat = flat[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return flat


def key_path(address: str) -> str:
    return f"{NINJA_DIR}/keys/{_flat(address)}"


def out_stamp(path: str) -> str:
    return f"{NINJA_DIR}/outs/{_flat(path)}"


def dir_stamp(path: str) -> str:
    return f"{NINJA_DIR}/dirs/{_flat(path)}"


def list_path(path: str) -> str:
    """The listing of a source directory written into the Ninja file."""
    return f"{NINJA_DIR}/lists/{_flat(path)}"


def wrote_stamp(address: str) -> str:
    """Touched when a stage edge writes into a directory dep (see build_ninja)."""
    return f"{NINJA_DIR}/wrote/{_flat(address)}"


def done_stamp(address: str) -> str:
    """The output of a stage that declares none."""
    return f"{NINJA_DIR}/done/{_flat(address)}"


def fresh_marker(address: str) -> str:
    """Written at emit time for a stage found up to date (see mark_fresh)."""
    return f"{NINJA_DIR}/fresh/{_flat(address)}"


# -- the Ninja model --------------------------------------------------------------


@dataclass(frozen=True)
class NinjaRule:
    """A ``rule``; ``command`` and ``description`` are Ninja text already."""

    name: str
    command: str
    description: str
    restat: bool = False
    generator: bool = False

    def text(self) -> str:
        lines = [f"rule {self.name}", f"  command = {self.command}", f"  description = {self.description}"]
        if self.restat:
            lines.append("  restat = 1")
        if self.generator:
            lines.append("  generator = 1")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NinjaBuild:
    """A ``build`` edge.  Paths and variable values are plain text; ``text``
    escapes them, binding paths with ``|`` (unescapable) to variables."""

    outputs: tuple[str, ...]
    rule: str
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()
    implicit_outputs: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    comment: str | None = None
    stage: str | None = None  # the address of the stage a `stage` edge runs

    def text(self) -> str:
        bound: list[tuple[str, str]] = []

        def token(path: str) -> str:
            if needs_binding(path):
                name = f"path{len(bound)}"
                bound.append((name, path))
                return f"${name}"
            return ninja_escape_path(path)

        def tokens(paths: Sequence[str]) -> str:
            return "".join(" " + token(p) for p in paths)

        head = "build" + tokens(self.outputs)
        if self.implicit_outputs:
            head += " |" + tokens(self.implicit_outputs)
        head += f": {self.rule}" + tokens(self.inputs)
        if self.implicit:
            head += " |" + tokens(self.implicit)
        lines = [f"# {comment_text(self.comment)}"] if self.comment else []
        lines.append(head)
        lines += [f"  {name} = {ninja_escape(value)}" for name, value in (*self.variables, *bound)]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NinjaFile:
    version: str
    sources: tuple[str, ...]
    variables: tuple[tuple[str, str], ...]
    rules: tuple[NinjaRule, ...]
    builds: tuple[NinjaBuild, ...]


# -- what is on disk ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceDir:
    """A directory dep no stage produces, as listed at emit time."""

    path: str
    files: tuple[str, ...]
    subdirs: tuple[str, ...]
    outs: tuple[str, ...] = ()  # outputs inside it, left out of the listing

    def listing_text(self) -> str:
        """What ``lists/<path>`` holds: enough to list the directory again."""
        fields = {"path": self.path, "files": self.files, "subdirs": self.subdirs, "outs": self.outs}
        return json.dumps(fields, indent=1) + "\n"

    @classmethod
    def from_listing_text(cls, text: str) -> "SourceDir | None":
        """The listing written by :meth:`listing_text`; None when unreadable."""
        try:
            fields = json.loads(text)
            return cls(
                str(fields["path"]),
                tuple(map(str, fields["files"])),
                tuple(map(str, fields["subdirs"])),
                tuple(map(str, fields["outs"])),
            )
        except (ValueError, KeyError, TypeError):
            return None


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
                found[path] = _list_dir(root, path, tuple(index.outs_inside(path)))
    return found


def _list_dir(root: Path, path: str, outs: tuple[str, ...]) -> SourceDir:
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


# -- IR -> model ------------------------------------------------------------------------


def scan_missing(root: Path, pipeline: Pipeline) -> frozenset[str]:
    """Deps and params files that no stage produces and that are absent now."""
    index = OutIndex.build(pipeline.stages)
    paths = dict.fromkeys(p.path for stage in pipeline.stages for p in (*stage.deps, *stage.params))
    return frozenset(p for p in paths if not os.path.lexists(root / p) and not _related_outs(index, p))


def build_ninja(
    pipeline: Pipeline,
    *,
    build_file: str,
    pivot_command: str,
    source_dirs: Mapping[str, SourceDir],
    missing: Collection[str] = frozenset(),
) -> NinjaFile:
    """The Ninja model of every stage of ``pipeline``.

    ``source_dirs`` and ``missing`` (see :func:`scan_source_dirs`,
    :func:`scan_missing`) are what the disk held at emit time.  Every source
    path an edge reads gets a ``phony`` fallback, so that deleting it never
    leaves Ninja with "no known rule to make it"; a path missing now is
    watched by the probe edge instead of the regenerate edge, which would
    otherwise stay dirty for ever.

    Raises PivotError naming the stage when a path or command cannot be
    written in a Ninja file (line breaks, tabs in paths).
    """
    index = OutIndex.build(pipeline.stages)
    builds: list[NinjaBuild] = []
    sources: dict[str, None] = {}  # every path read that no edge produces

    regen_inputs = [p for p in _regenerate_sources(pipeline) if p not in missing and not _related_outs(index, p)]
    # Not the directories themselves: outputs written into one change its
    # mtime, and the file would be rewritten after every build that wrote
    # there.  Their stamp edges touch RELIST when files come or go.
    regen_watch = ((RELIST,) if source_dirs else ()) + ((PROBE,) if missing else ())
    sources.update(dict.fromkeys((*regen_inputs, *regen_watch)))
    builds.append(
        NinjaBuild(
            outputs=(build_file,),
            rule="regenerate",
            inputs=tuple(regen_inputs),
            implicit=regen_watch,
            comment=(
                "rewrite this file when the pipeline, params or vars files change"
                " or a directory dep gains or loses entries"
            ),
        )
    )
    if missing:
        builds.append(
            NinjaBuild(
                outputs=(PROBE,),
                rule="probe",
                implicit=(ALWAYS,),
                variables=(("paths", " ".join(sh_path(p) for p in sorted(missing))),),
                comment="rewrite this file when a missing dep or params file appears",
            )
        )

    # A stage writing outputs into a directory dep changes the directory's
    # mtime.  The dirstamp edge must run after it even when restat finds the
    # outputs unchanged (it would be pruned, and stay dirty for the next
    # `ninja`), so the stage edge also touches a stamp the dirstamp reads.
    writers: dict[str, None] = {}
    for sd in source_dirs.values():
        writing = dict.fromkeys(index.owner[o] for o in index.outs_inside(sd.path))
        writers.update(writing)
        sources.update(dict.fromkeys((*sd.subdirs, *sd.files)))
        builds.append(
            NinjaBuild(
                outputs=(dir_stamp(sd.path),),
                rule="dirstamp",
                implicit=(*sd.subdirs, *sd.files, *(wrote_stamp(a) for a in writing)),
                variables=(("dir", sh_path(sd.path)), ("desc", sd.path)),
                comment=f"content and listing of directory {sd.path}",
            )
        )

    uses_always = bool(missing)
    for stage in pipeline.stages:
        build = _stage_build(stage, index, source_dirs, sources, writes_into_dep=stage.address in writers)
        uses_always |= ALWAYS in build.implicit
        builds.append(build)
    if uses_always:
        builds.append(NinjaBuild(outputs=(ALWAYS,), rule="phony"))
    produced = {path for build in builds for path in (*build.outputs, *build.implicit_outputs)}
    builds += [NinjaBuild(outputs=(path,), rule="phony") for path in sources if path not in produced]

    return NinjaFile(
        version=__version__,
        sources=pipeline.sources,
        variables=(("pivot", pivot_command),),
        rules=RULES,
        builds=tuple(builds),
    )


RULES = (
    NinjaRule(
        name="stage",
        command=(
            # Found up to date at emit time, every output there and no input
            # newer since: nothing to ask pivot (see mark_fresh).
            "m=; for p in $made; do [ -e \"$$p\" ] || m=1; done;"
            " if [ -z \"$$m\" ] && [ -f $fresh ] && [ -z \"$$(find -L $watch -prune -newer $fresh 2>&1)\" ];"
            " then exit 0; fi;"
            f" $pivot emit ninja-prepare $addr $touch; case $$? in 0) ;; {FRESH_EXIT}) exit 0 ;; *) exit 1 ;; esac;"
            f" {ninja_escape(shell_prefix_sh())};"  # "$@": the shell `pivot run` would use
            " $script && $pivot commit -q $addr && $pivot emit ninja-finish $addr"
        ),
        description="$desc",
        restat=True,
    ),
    NinjaRule(
        name="dirstamp",
        command="$pivot emit ninja-dirstamp $dir $out",
        description="checking $desc",
        restat=True,
    ),
    NinjaRule(
        # Touches its stamp when one of $paths exists; restat keeps the
        # regenerate edge clean while they all stay missing.
        name="probe",
        command='for p in $paths; do if [ -e "$$p" ] || [ -L "$$p" ]; then touch $out; break; fi; done',
        description="looking for missing files",
        restat=True,
    ),
    NinjaRule(
        name="regenerate",
        command="$pivot emit ninja -o $out",
        description="regenerating $out",
        generator=True,
    ),
)


def _regenerate_sources(pipeline: Pipeline) -> list[str]:
    sources = dict.fromkeys(pipeline.sources)
    for stage in pipeline.stages:
        sources.update(dict.fromkeys(p.path for p in stage.params))
    return list(sources)


def _related_outs(index: OutIndex, path: str) -> list[str]:
    """Outputs equal to ``path``, enclosing it, or inside it."""
    related = []
    if path in index.owner:
        related.append(path)
    outer = index.enclosing_out(path)
    if outer is not None:
        related.append(outer)
    related += index.outs_inside(path)
    return related


def _stage_build(
    stage: Stage,
    index: OutIndex,
    source_dirs: Mapping[str, SourceDir],
    sources: dict[str, None],
    *,
    writes_into_dep: bool,
) -> NinjaBuild:
    """The stage's edge; the source files it reads are added to ``sources``.
    ``writes_into_dep``: it has outputs inside a directory dep, and touches
    its ``wrote/`` stamp when it writes them."""
    where = f"stage '{stage.address}'"
    inputs: dict[str, None] = {}
    for dep in stage.deps:
        check_path(dep.path, what=f"dependency of {where}")
        related = _related_outs(index, dep.path)
        inputs.update(dict.fromkeys(out_stamp(o) for o in related))
        if dep.path in source_dirs:
            inputs[dir_stamp(dep.path)] = None
        elif not related:
            inputs[dep.path] = None
            sources[dep.path] = None
    for params in stage.params:
        # Params values reach the edge through the key file; a params file
        # some stage writes is also read through that output's stamp.
        inputs.update(dict.fromkeys(out_stamp(o) for o in _related_outs(index, params.path)))
    implicit = [key_path(stage.address)]
    if stage.always_changed or stage.is_callback:
        implicit.append(ALWAYS)

    for out in stage.outs:
        check_path(out.path, what=f"output of {where}")
    outputs = tuple(out.path for out in stage.outs) or (done_stamp(stage.address),)
    stamps = tuple(out_stamp(out.path) for out in stage.outs)
    touch: tuple[tuple[str, str], ...] = ()
    if writes_into_dep:
        stamps += (wrote_stamp(stage.address),)
        touch = (("touch", f"--touch {sh_path(wrote_stamp(stage.address))}"),)
    return NinjaBuild(
        outputs=outputs,
        rule="stage",
        inputs=tuple(inputs),
        implicit=tuple(implicit),
        implicit_outputs=stamps,
        variables=(
            ("addr", sh_quote(stage.address)),
            ("desc", stage.address),
            *touch,
            ("fresh", sh_path(fresh_marker(stage.address))),
            ("watch", " ".join(sh_path(p) for p in (*inputs, *implicit))),
            ("made", " ".join(sh_path(p) for p in (*outputs, *stamps))),
            ("script", stage_script(stage)),
        ),
        comment=f"{stage.address} ({stage.location or stage.file})",
        stage=stage.address,
    )


def stage_script(stage: Stage) -> str:
    """The stage's commands as one shell line: the environment of `pivot run`,
    then each command run by ``"$@"`` (the stage rule sets it to the shell
    `pivot run` would use), started in the wdir, stdin from /dev/null."""
    env = stage_env(_ROOT_MARK, stage)
    exports = " ".join(
        f'{name}="$PIVOT_ROOT"' if value == str(_ROOT_MARK) else f"{name}={sh_quote(value)}"
        for name, value in env.items()
        if name != "PIVOT_ROOT"
    )
    cd = "" if stage.wdir == "." else f"cd -- {sh_quote(stage.wdir)} && "
    for cmd in stage.cmds:
        ninja_escape(cmd, what=f"a command of stage '{stage.address}'")  # refuse line breaks early
    run = [f'"$@" {sh_quote(cmd)} < /dev/null' for cmd in stage.cmds]
    commands = " && ".join(f"( {cd}{r} )" if cd else r for r in run) or "true"
    return f'PIVOT_ROOT="$(pwd -P)" && export PIVOT_ROOT {exports} && {commands}'


def render_ninja(model: NinjaFile) -> str:
    from pivot.backends.templates import environment

    return environment().get_template("build.ninja.j2").render(n=model)


# -- bridge files (side effects) ----------------------------------------------------------


def key_text(stage: Stage, state: "State") -> str:
    """What the key file of ``stage`` holds: its commands and params values."""
    params = {p.path: state.params.values(p) for p in stage.params}
    return json.dumps({"cmds": list(stage.cmds), "params": params}, sort_keys=True, indent=1, default=str) + "\n"


# A key file created for a stage that is already up to date gets this mtime,
# so that it does not look newer than the stage's outputs.
_OLD = 1.0


def write_keys(root: Path, decisions: Iterable["Decision"], state: "State") -> None:
    """Bring every stage's key file up to date with the plan.

    A stage the plan would run for reasons of its own gets a key newer than
    anything, so Ninja reruns it even when no mtime shows it (an output
    edited by hand, a dep restored with an old mtime).  Other keys are
    rewritten only when their text changes.
    """
    from pivot.optimizer import Action

    for decision in decisions:
        stage = decision.stage
        path = root / key_path(stage.address)
        text = key_text(stage, state)
        stale = decision.action is Action.CHECKOUT or (
            decision.action in (Action.RUN, Action.RESTORE_RUN) and bool(decision.own_reasons)
        )
        changed = write_if_changed(path, text)
        if stale:
            now = time.time()
            os.utime(path, (now, now))
        elif changed:
            os.utime(path, (_OLD, _OLD))


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically write ``text`` unless ``path`` already holds it (its mtime
    is what Ninja looks at).  True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
    return True


def write_probe(root: Path, missing: Collection[str]) -> None:
    """Create the probe edge's stamp (its text: the paths it looks for)."""
    write_if_changed(root / PROBE, "".join(f"{p}\n" for p in sorted(missing)))


def write_listings(root: Path, source_dirs: Mapping[str, SourceDir]) -> None:
    """Keep the listing of each source directory the Ninja file reads, and
    create the RELIST stamp (older than the Ninja file written next)."""
    for sd in source_dirs.values():
        write_if_changed(root / list_path(sd.path), sd.listing_text())
    if source_dirs:
        write_if_changed(root / RELIST, "newer than the Ninja file: a directory dep gained or lost entries\n")


def listing_changed(root: Path, relpath: str) -> bool:
    """True when directory ``relpath`` no longer holds what the Ninja file
    lists (entries added or removed, the directory gone); outputs inside it
    do not count.  A missing or unreadable listing counts as changed."""
    try:
        listed = SourceDir.from_listing_text((root / list_path(relpath)).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return True
    if listed is None or listed.path != relpath:
        return True
    full = root / relpath
    if not full.is_dir() or full.is_symlink():
        return True
    return _list_dir(root, relpath, listed.outs) != listed


def touch(path: Path) -> None:
    """Create ``path`` or set its mtime to now (what Ninja looks at)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path)


def write_out_stamps(root: Path, stage: Stage, state: "State") -> None:
    """Stamp each output with its recorded hash; untouched when unchanged,
    so ``restat`` stops Ninja from rerunning what depends on it."""
    record = state.locks.read(stage.address)
    for out in stage.outs:
        entry = record.out(out.path) if record else None
        write_if_changed(root / out_stamp(out.path), (entry.hash if entry else "absent") + "\n")
    if not stage.outs:
        path = root / done_stamp(stage.address)
        write_if_changed(path, "done\n")
        os.utime(path)


def mark_fresh(
    root: Path, model: NinjaFile, decisions: Iterable["Decision"], source_dirs: Collection[str], state: "State"
) -> None:
    """Spare Ninja a pivot start-up for each stage the plan finds up to date.

    Without a ``.ninja_log`` (the first ``ninja``, say after ``pivot run``)
    Ninja finds every edge dirty, and each would start pivot only to hear
    that its stage is fresh.  So for each fresh stage this writes the stamps
    that ``ninja-prepare`` would write, then a marker whose mtime is that of
    the edge's newest input: while every output exists and no input is newer
    than the marker, the edge knows without pivot that nothing changed since
    (Ninja's own rule, with the marker for the log).  Any other stage loses
    its marker, and so does one reading a file changed in the last two
    seconds (see _newest_mtime).
    """
    from pivot.optimizer import Action
    from pivot.state.statdb import RACY_WINDOW_NS

    fresh = {d.stage.address: d.stage for d in decisions if d.action in (Action.UP_TO_DATE, Action.FROZEN)}
    for relpath in source_dirs:
        write_dir_stamp(root, relpath, root / dir_stamp(relpath), state)
    edges = [build for build in model.builds if build.stage is not None]
    for build in edges:
        if build.stage in fresh:
            write_out_stamps(root, fresh[build.stage], state)
            for stamp in build.implicit_outputs:
                if not (root / stamp).exists():
                    touch(root / stamp)  # a wrote/ stamp
    racy_after = time.time_ns() - RACY_WINDOW_NS
    for build in edges:
        assert build.stage is not None
        marker = root / fresh_marker(build.stage)
        newest = _newest_mtime(root, (*build.inputs, *build.implicit), racy_after) if build.stage in fresh else None
        if newest is None or not all(os.path.lexists(root / p) for p in (*build.outputs, *build.implicit_outputs)):
            marker.unlink(missing_ok=True)
            continue
        write_if_changed(marker, "up to date when the Ninja file was written\n")
        os.utime(marker, ns=(newest, newest))


_BRIDGE_DIRS = ("keys", "outs", "dirs", "lists", "wrote", "done", "fresh")


def prune_bridge_files(root: Path, model: NinjaFile, source_dirs: Collection[str]) -> None:
    """Remove the files under ``.pivot/ninja/`` that the Ninja file no longer
    names: stages, outputs and directory deps that are gone."""
    named = {path for build in model.builds
             for path in (*build.outputs, *build.implicit_outputs, *build.inputs, *build.implicit)}
    named.update(list_path(path) for path in source_dirs)
    named.update(fresh_marker(build.stage) for build in model.builds if build.stage is not None)
    for kind in _BRIDGE_DIRS:
        directory = root / NINJA_DIR / kind
        if not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False) and f"{NINJA_DIR}/{kind}/{entry.name}" not in named:
                os.unlink(entry.path)


def _newest_mtime(root: Path, paths: Iterable[str], racy_after: int) -> int | None:
    """The newest mtime (ns, symlinks followed, as Ninja stats) of ``paths``;
    None when one is missing, or when a file of the user's changed after
    ``racy_after``: a change within the same mtime tick would then go unseen
    (the stat cache's racy rule; pivot's own stamps are not edited behind it)."""
    newest = 0
    for path in paths:
        try:
            mtime = os.stat(root / path).st_mtime_ns
        except OSError:
            return None
        if mtime > racy_after and not path.startswith(NINJA_DIR + "/"):
            return None
        newest = max(newest, mtime)
    return newest


def write_dir_stamp(root: Path, relpath: str, stamp: Path, state: "State") -> None:
    """Stamp a source directory with its content hash, only when it changed."""
    state.hasher.invalidate(relpath)
    info = state.hasher.hash(relpath)
    write_if_changed(stamp, (info.hash if info else "absent") + "\n")


def prepare_stage(root: Path, stage: Stage, state: "State", *, wrote: Path | None = None) -> bool:
    """Before a stage edge's commands: True when the stage must run (its
    outputs are then prepared as the runner does); otherwise restore damaged
    outputs or an earlier run's outputs (run cache) if the plan says so,
    refresh the stamps, and return False.

    ``wrote`` (the stage's ``wrote/`` stamp) is touched when its outputs are
    about to be written, and created when missing (it is an edge output)."""
    from pivot import optimizer
    from pivot.backends import outputs
    from pivot.errors import PivotError
    from pivot.optimizer import Action

    decision = optimizer.consult_run_cache(optimizer.check_stage(stage, state), state)
    writes = decision.action in (Action.RUN, Action.RESTORE_RUN, Action.CHECKOUT)
    if wrote is not None and (writes or not wrote.exists()):
        touch(wrote)
    if decision.action is Action.RUN:
        outputs.prepare(root, stage)
        return True
    if decision.action is Action.RESTORE_RUN:
        from pivot.state import record

        record.restore_run(stage, state, decision.run_entry)
    if decision.action is Action.CHECKOUT:
        report = outputs.restore(stage, state, decision.record)
        if report.missing:
            raise PivotError(f"stage '{stage.address}': not in the cache: {', '.join(report.missing)}")
    write_out_stamps(root, stage, state)
    return False
