"""``pivot emit ninja``, the emitter: IR -> Ninja model -> text (``templates/build.ninja.j2``).

Two steps, as Meson does it: ``build_ninja`` turns the IR into a small
Ninja-shaped model (``NinjaRule``, ``NinjaBuild``, ``NinjaFile``), then each
element writes itself as text, long lines broken with Ninja's ``$``
continuation.  Nothing here reads or writes the disk: what the disk held at
emit time comes in as ``SourceDir``s and missing paths, and everything the
Ninja file's edges call back into at build time lives in
``pivot.backends.ninja_bridge`` (details in docs/emit.md).

Ninja decides by mtimes, pivot by content.  The file bridges the two
through small files under ``.pivot/ninja/`` named here:

* the edge of a stage the plan has work for that no mtime shows (a params
  value changed, an output edited by hand, a frozen stage to re-record)
  also reads a key file (``keys/``) that emit makes newer than anything;
  other edges read none (a changed command reruns an edge through Ninja's
  own command hash in ``.ninja_log``);
* downstream edges read the outputs themselves; the bridge gives an output
  rewritten with the same content its previous mtime back (remembered in
  ``outs/``), so that with ``restat`` it stops propagation as Ninja's own
  "unchanged output" does;
* a source directory dep is read through a stamp (``dirs/``) whose edge
  depends on every file and subdirectory listed at emit time (``lists/``);
* an edge Ninja finds dirty first asks pivot (``pivot emit ninja-prepare``)
  whether the stage has work by content; if not, it does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

from pivot import __version__
from pivot.backends.environment import env_for
from pivot.backends.execute import is_long_command, shell_prefix_sh
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

NINJA_DIR = ".pivot/ninja"
ALWAYS = f"{NINJA_DIR}/always"  # a phony target that is never built: always dirty
PROBE = f"{NINJA_DIR}/missing"  # touched when a dep or params file missing at emit time appears
RELIST = f"{NINJA_DIR}/relist"  # touched when a source directory no longer matches its listing
FRESH_EXIT = 3  # ninja-prepare: nothing to run, the edge is done
EDGE_SCRIPT = f"{NINJA_DIR}/edge.sh"  # what every stage edge sources before its commands
WIDTH = 78  # lines are broken (``$`` + newline) beyond this, where a space allows


# -- where the bridge files live ------------------------------------------------


@functools.lru_cache(maxsize=None)  # the emitter asks for each path more than once
def _flat(name: str) -> str:
    """``name`` as one safe file name (percent-encoded, bounded length)."""
    flat = urllib.parse.quote(name, safe="@+,=-._")
    if len(flat) > 150:
        flat = flat[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return flat


def key_path(address: str) -> str:
    return f"{NINJA_DIR}/keys/{_flat(address)}"


def out_record(path: str) -> str:
    """What the bridge last recorded of an output (its hash, the mtime it
    gave it); not read by Ninja (see ninja_bridge.settle_outputs)."""
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
    """Written at emit time for a stage found up to date (see ninja_bridge.mark_fresh)."""
    return f"{NINJA_DIR}/fresh/{_flat(address)}"


# -- breaking long lines ------------------------------------------------------------


# A space with the run of ``$`` before it, not followed by another space.
_SPACE = re.compile(r"(\$*) (?=[^ ])")


def _break_points(text: str) -> list[int]:
    """Indexes of the spaces of Ninja text ``text`` where a line may break:
    not escaped (``$ ``, an odd run of ``$`` before it) and followed by
    something other than a space (Ninja skips the spaces that start a
    continuation line, so breaking before a space would lose it)."""
    return [m.end() - 1 for m in _SPACE.finditer(text) if len(m.group(1)) % 2 == 0]


def wrap(line: str, *, indent: str = "    ", width: int = WIDTH) -> str:
    """Ninja text ``line`` broken into continuation lines (``" $"``, newline,
    ``indent``) at spaces, each line within ``width`` where the words allow,
    preferably after a shell operator (``&&``, ``;``, ``|``).  Ninja reads
    the result back as exactly ``line``."""
    if len(line) <= width:
        return line
    indented = len(line) - len(line.lstrip(" "))
    points = [p for p in _break_points(line) if p >= indented]  # never inside the indentation
    lines: list[str] = []
    start, prefix = 0, ""  # where the current line's text starts, its indent
    first = 0  # index of the first break point after ``start``
    while len(prefix) + len(line) - start > width:
        while first < len(points) and points[first] <= start:
            first += 1
        if first == len(points):
            break  # one word to the end
        end = first  # break points[first:end] keep the line within width, " $" included
        while end < len(points) and len(prefix) + points[end] - start + 2 <= width:
            end += 1
        point = points[max(end - 1, first)]  # a word longer than a line: break right after it
        for candidate in reversed(points[first:end]):
            if len(prefix) + candidate - start < width // 2:
                break
            if line.endswith(("&&", ";", "|"), 0, candidate):
                point = candidate
                break
        lines.append(prefix + line[start:point + 1] + "$")
        start, prefix = point + 1, indent
    lines.append(prefix + line[start:])
    return "\n".join(lines)


def _wrap_pieces(head: str, pieces: Sequence[str], *, indent: str) -> str:
    """``head`` followed by ``pieces`` joined by spaces; when that is too long,
    each piece starts a continuation line of its own (and is broken further
    if it is longer than a line)."""
    flat = head + " ".join(pieces)
    if len(flat) <= WIDTH or len(pieces) == 1:
        return wrap(flat, indent=indent)
    parts = [head.rstrip() + " $"]
    for i, piece in enumerate(pieces):
        text = wrap(indent + piece, indent=indent + "  ", width=WIDTH - 2)
        parts.append(text if i == len(pieces) - 1 else text + " $")
    return "\n".join(parts)


# -- the Ninja model --------------------------------------------------------------


@dataclass(frozen=True)
class NinjaRule:
    """A ``rule``; ``command`` is Ninja text in pieces (shell statements) that
    run as one line, each piece on a line of its own in the file when they
    do not fit on one."""

    name: str
    command: tuple[str, ...]
    description: str
    restat: bool = False
    generator: bool = False
    rspfile: str | None = None  # Ninja writes ``rspfile_content`` there before the command
    rspfile_content: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            f"rule {self.name}",
            _wrap_pieces("  command = ", self.command, indent="      "),
            f"  description = {self.description}",
        ]
        if self.rspfile is not None:
            lines.append(f"  rspfile = {self.rspfile}")
            lines.append(_wrap_pieces("  rspfile_content = ", self.rspfile_content, indent="      "))
        if self.restat:
            lines.append("  restat = 1")
        if self.generator:
            lines.append("  generator = 1")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NinjaBuild:
    """A ``build`` edge.  Paths and variable values are plain text; ``text``
    escapes them, binding paths with ``|`` (unescapable) to variables.
    ``stage`` and ``fresh`` are not written: what the bridge needs to know
    about a stage edge."""

    outputs: tuple[str, ...]
    rule: str
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()
    implicit_outputs: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    comment: str | None = None
    stage: str | None = None  # the address of the stage a `stage` edge runs
    fresh: str | None = None  # the fresh marker a `stage` edge checks (None: it checks none)

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
        lines.append(wrap(head))
        lines += [wrap(f"  {name} = {ninja_escape(value)}", indent="      ")
                  for name, value in (*self.variables, *bound)]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NinjaFile:
    version: str
    sources: tuple[str, ...]
    variables: tuple[tuple[str, str], ...]
    rules: tuple[NinjaRule, ...]
    builds: tuple[NinjaBuild, ...]
    edge_script: str  # the text of EDGE_SCRIPT, written beside the file

    @property
    def stage_edges(self) -> tuple[NinjaBuild, ...]:
        return tuple(build for build in self.builds if build.stage is not None)


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


# -- IR -> model ------------------------------------------------------------------------


def build_ninja(
    pipeline: Pipeline,
    *,
    build_file: str,
    pivot_command: str,
    source_dirs: Mapping[str, SourceDir],
    missing: Collection[str] = frozenset(),
    forced: Collection[str] = frozenset(),
) -> NinjaFile:
    """The Ninja model of every stage of ``pipeline``.

    ``forced``: the addresses of the stages whose edges read a key file
    (``ninja_bridge.forced_stages``: work the plan sees and mtimes do not).

    ``source_dirs`` and ``missing`` (see ``ninja_bridge.scan_source_dirs``,
    ``ninja_bridge.scan_missing``) are what the disk held at emit time.  Every
    source path an edge reads gets a ``phony`` fallback, so that deleting it
    never leaves Ninja with "no known rule to make it"; a path missing now is
    watched by the probe edge instead of the regenerate edge, which would
    otherwise stay dirty for ever.

    Raises PivotError naming the stage when a path or command cannot be
    written in a Ninja file (line breaks, tabs in paths).
    """
    index = OutIndex.build(pipeline.stages)
    builds: list[NinjaBuild] = []
    sources: dict[str, None] = {}  # every path read that no edge produces

    regen_inputs = [p for p in _regenerate_sources(pipeline) if p not in missing and not related_outs(index, p)]
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
            # written with the file: a deleted edge script is rewritten, not a failure of every edge
            implicit_outputs=(EDGE_SCRIPT,),
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
        build = _stage_build(stage, index, source_dirs, sources, writes_into_dep=stage.address in writers,
                             forced=stage.address in forced)
        uses_always |= ALWAYS in build.inputs
        builds.append(build)
    if uses_always:
        builds.append(NinjaBuild(outputs=(ALWAYS,), rule="phony"))
    produced = {path for build in builds for path in (*build.outputs, *build.implicit_outputs)}
    builds += [NinjaBuild(outputs=(path,), rule="phony") for path in sources if path not in produced]

    rules = RULES
    if any(build.rule == LONG_STAGE_RULE.name for build in builds):
        rules += (LONG_STAGE_RULE,)  # only then: other files stay as they were
    return NinjaFile(
        version=__version__,
        sources=pipeline.sources,
        variables=(("pivot", pivot_command),),
        rules=rules,
        builds=tuple(builds),
        edge_script=edge_script(pivot_command),
    )


def _env_exports() -> str:
    """The environment of ``pivot.backends.environment`` as shell code for
    the edge script: the root found when the edge runs, the address from
    ``$_pivot_stage``."""
    root, address = "\0root", "\0address"  # stand-ins no real value can equal
    env = env_for(root, address)
    assert env.get("PIVOT_ROOT") == root
    words = []
    for name, value in env.items():
        if name == "PIVOT_ROOT":
            continue
        if value == root:
            words.append(f'{name}="$PIVOT_ROOT"')
        elif value == address:
            words.append(f'{name}="$_pivot_stage"')
        else:
            words.append(f"{name}={sh_quote(value)}")
    return 'PIVOT_ROOT="$(pwd -P)" || exit 1\nexport PIVOT_ROOT ' + " ".join(words)


def edge_script(pivot_command: str) -> str:
    """The shell code every stage edge sources (``EDGE_SCRIPT``) before its
    commands.  It lives in a file of its own rather than in the rule's
    command: Ninja expands and hashes an edge's whole command for every
    edge of every ``ninja``, so a rule command of a few words keeps the
    no-op fast.  ``pivot_command`` is how it calls pivot (shell words)."""
    return "\n".join((
        f"# Generated by pivot {__version__} (`pivot emit ninja`).  Do not edit: every",
        "# stage edge of the Ninja file sources this before its commands, after",
        "#   set -- ADDRESS FRESH TOUCH OUTPUT... '' INPUT...",
        "# FRESH: the stage's fresh marker ('' for none); TOUCH: the stamp to touch",
        "# when it writes into a directory dep ('' for none); OUTPUT: Ninja's $out,",
        "# the outputs and that stamp; INPUT: Ninja's $in.  It exits when the",
        "# stage has no command to run, else leaves \"$@\" set to the shell",
        "# `pivot run` would use, the environment exported, and _pivot_finish",
        "# (record the stage) defined.",
        f'_pivot() {{ {pivot_command} "$@"; }}',
        "_pivot_stage=$1 _pivot_fresh=$2 _pivot_touch=$3",
        "shift 3",
        "# Found up to date at emit time, every output there and no input newer",
        "# since: nothing to ask pivot (see mark_fresh).  The marker leads the",
        "# paths so that find never reads the current directory for an edge",
        "# without inputs.",
        "_pivot_all=$_pivot_fresh",
        'while [ -n "$1" ]; do [ -e "$1" ] || _pivot_all=; shift; done',
        "shift",
        'if [ -n "$_pivot_all" ] && [ -f "$_pivot_fresh" ] &&',
        '    [ -z "$(find -L "$_pivot_fresh" "$@" -prune -newer "$_pivot_fresh" 2>&1)" ]; then',
        "  exit 0",
        "fi",
        "# What `pivot run` does short of running commands; exit 3: none to run.",
        'set -- --; [ -z "$_pivot_touch" ] || set -- --touch "$_pivot_touch" --',
        '_pivot emit ninja-prepare "$@" "$_pivot_stage"',
        f"case $? in 0) ;; {FRESH_EXIT}) exit 0 ;; *) exit 1 ;; esac",
        '_pivot_finish() { _pivot emit ninja-finish -- "$_pivot_stage"; }',
        "# The environment and the shell of `pivot run` (\"$@\", resolved now).",
        _env_exports(),
        shell_prefix_sh(),
        "",
    ))


# What a stage edge runs (rules ``stage`` and ``stage_long``).  Per edge:
# ``$addr`` (the address as a shell word), ``$fresh`` (its marker, when it
# has one), ``$touch`` (the stamp of an edge writing into a directory dep),
# ``$out`` (outputs, and that stamp), ``$in`` (everything it reads), ``$script``
# (the commands).  The rest is in the edge script: few words here, since
# Ninja expands and hashes this for every edge on every run.
_STAGE_COMMAND = (
    """set -- $addr "$fresh" "$touch" $out '' $in;""",
    f". {EDGE_SCRIPT};",
    "$script && _pivot_finish",  # _pivot_finish: records the stage, settles its outputs' mtimes
)

# The four rules every emitted file holds.  Stage addresses reach pivot
# after ``--``, so that no name (``-q``, ``-f``) can read as an option.
RULES = (
    NinjaRule(
        name="stage",
        command=_STAGE_COMMAND,
        description="$addr",
        restat=True,
    ),
    NinjaRule(
        name="dirstamp",
        command=("$pivot emit ninja-dirstamp -- $dir $out",),
        description="checking $desc",
        restat=True,
    ),
    NinjaRule(
        # Touches its stamp when one of $paths exists; restat keeps the
        # regenerate edge clean while they all stay missing.
        name="probe",
        command=('for p in $paths; do if [ -e "$$p" ] || [ -L "$$p" ]; then touch $out; break; fi; done',),
        description="looking for missing files",
        restat=True,
    ),
    NinjaRule(
        name="regenerate",
        command=("$pivot emit ninja -o $out",),
        description="regenerating $out",
        generator=True,
    ),
)


# A stage edge whose command line would pass the kernel's limit on one
# argument (Ninja runs ``/bin/sh -c LINE``; Linux refuses an argument over
# 128 KiB): the same command goes through a response file that /bin/sh reads.
LONG_STAGE_RULE = NinjaRule(
    name="stage_long",
    command=("/bin/sh $rsp",),
    description="$addr",
    restat=True,
    rspfile="$rsp",
    rspfile_content=_STAGE_COMMAND,
)
_LONG_EDGE = 100_000  # bytes of the edge's variables, $in and $out; the rule's text adds < 1 KB


def rsp_path(address: str) -> str:
    """The response file of a ``stage_long`` edge, beside the key files (that
    directory always exists).  ``%rsp`` cannot end a flat name: ``_flat``
    writes ``%`` only before two hex digits."""
    return f"{NINJA_DIR}/keys/{_flat(address)}%rsp"


def _regenerate_sources(pipeline: Pipeline) -> list[str]:
    sources = dict.fromkeys(pipeline.sources)
    for stage in pipeline.stages:
        sources.update(dict.fromkeys(p.path for p in stage.params))
    return list(sources)


def related_outs(index: OutIndex, path: str) -> list[str]:
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
    forced: bool,
) -> NinjaBuild:
    """The stage's edge; the source files it reads are added to ``sources``.
    ``writes_into_dep``: it has outputs inside a directory dep, and touches
    its ``wrote/`` stamp when it writes them.  ``forced``: it reads its key
    file, as an implicit input: ``$in`` (what the rule's fresh check
    watches) and so the command stay the same whether the stage is forced
    or not, and Ninja's command hash does not rerun the edge when that
    changes.  A forced stage has no fresh marker anyway.  Every other path
    is explicit, so that ``$in`` and ``$out`` name them all."""
    where = f"stage '{stage.address}'"
    inputs: dict[str, None] = {}
    for dep in stage.deps:
        check_path(dep.path, what=f"dependency of {where}")
        related = related_outs(index, dep.path)
        inputs.update(dict.fromkeys(related))
        if dep.path in source_dirs:
            inputs[dir_stamp(dep.path)] = None
        elif not related:
            inputs[dep.path] = None
            sources[dep.path] = None
    for params in stage.params:
        # Params values reach the edge through the regenerate edge and the
        # key file; a params file some stage writes is also read as that
        # stage's output.
        inputs.update(dict.fromkeys(related_outs(index, params.path)))
    if stage.always_changed or stage.is_callback:
        inputs[ALWAYS] = None

    for out in stage.outs:
        check_path(out.path, what=f"output of {where}")
    outputs = tuple(out.path for out in stage.outs) or (done_stamp(stage.address),)
    touch: tuple[tuple[str, str], ...] = ()
    if writes_into_dep:
        outputs += (wrote_stamp(stage.address),)
        touch = (("touch", wrote_stamp(stage.address)),)
    # find would read an input such as `-false` or `!` as part of its
    # expression: such an edge checks no marker and always asks pivot.
    fresh = None if any(_find_operator(p) for p in inputs) else fresh_marker(stage.address)
    variables = (
        ("addr", sh_quote(stage.address)),
        *touch,
        *((("fresh", fresh),) if fresh else ()),
        ("script", stage_script(stage)),
    )
    rule = "stage"
    if _edge_bytes(variables, (*inputs, *outputs)) > _LONG_EDGE:
        rule = LONG_STAGE_RULE.name
        variables += (("rsp", rsp_path(stage.address)),)
    return NinjaBuild(
        outputs=outputs,
        rule=rule,
        inputs=tuple(inputs),
        implicit=(key_path(stage.address),) if forced else (),
        variables=variables,
        comment=f"{stage.address} ({stage.location or stage.file})",
        stage=stage.address,
        fresh=fresh,
    )


def _find_operator(path: str) -> bool:
    """Whether ``find`` would read ``path`` as the start of its expression."""
    return path.startswith(("-", "(", ")", "!", ","))


def _edge_bytes(variables: Sequence[tuple[str, str]], paths: Sequence[str]) -> int:
    """About how long the edge makes the command line: its variables, and
    its paths as Ninja shell-quotes them in ``$in`` and ``$out``."""
    size = sum(len(value.encode(errors="surrogateescape")) for _, value in variables)
    return size + sum(len(p.encode(errors="surrogateescape")) + 3 + 3 * p.count("'") for p in paths)


def stage_script(stage: Stage) -> str:
    """The stage's commands as one shell line, each run by ``"$@"`` (the
    stage rule sets it to the shell `pivot run` would use, and exports the
    environment of `pivot run` first), started in the wdir, stdin from
    /dev/null."""
    cd = "" if stage.wdir == "." else f"cd -- {sh_quote(stage.wdir)} && "
    for cmd in stage.cmds:
        ninja_escape(cmd, what=f"a command of stage '{stage.address}'")  # refuse line breaks early
    return " && ".join(_run_command(cmd, cd) for cmd in stage.cmds) or "true"


def _run_command(cmd: str, cd: str) -> str:
    """One command as ``"$@" CMD`` (in a subshell after ``cd``); a command too
    long to be one argument is written to a temporary file (``printf`` is a
    shell builtin: no argument limit) that the same shell then runs."""
    if not is_long_command(cmd):
        run = f'"$@" {sh_quote(cmd)} < /dev/null'
        return f"( {cd}{run} )" if cd else run
    return (
        f'( {cd}f="$(mktemp)" && printf \'%s\\n\' {sh_quote(cmd)} > "$f" || exit 1; '
        f'{shell_prefix_sh(with_c=False)}; "$@" "$f" < /dev/null; s=$?; rm -f -- "$f"; exit $s )'
    )


def render_ninja(model: NinjaFile) -> str:
    from pivot.backends.templates import environment

    return environment().get_template("build.ninja.j2").render(n=model)
