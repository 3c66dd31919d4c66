"""The benchmark procedure: for one size and one tool, run every operation
on identical workspace copies and collect the measurements."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.generate import Shape, generate, touch_param
from bench.measure import Measurement, Outcome, Sample, run_command
from bench.tools import Op, Tool, harness_path

# Ops that need the workspace fully built by the fresh run first.
NEEDS_BUILT = (Op.NOOP_RUN, Op.STATUS_WARM, Op.STATUS_COLD, Op.TOUCH_PARAM_RUN, Op.RUN_CACHE_REVERT, Op.EMIT_NINJA,
                Op.NINJA_FIRST, Op.NINJA_NOOP)
# Files that are state, not outputs, when comparing two built workspaces.
NOT_OUTPUTS = (".dvc", ".pivot", "dvc.lock", "build.ninja", ".ninja_log", ".ninja_deps", ".dvcignore")


@dataclass(frozen=True)
class Settings:
    repeat: int = 5
    warmup: int = 1
    fresh_repeat: int = 3
    settle: float = 3.0  # seconds between building a workspace and warm measurements
    timeout: float = 600.0
    workdir: Path = Path("bench/out/work")


@dataclass
class ToolRun:
    """What one tool did at one size: a measurement per op, and the built workspace."""

    tool: str
    results: dict[Op, Measurement] = field(default_factory=dict)
    workspace: Path | None = None


def pristine_workspace(shape: Shape, settings: Settings) -> Path:
    """Generate (once) the workspace every tool starts from."""
    root = settings.workdir / f"stages-{shape.stages}" / "pristine"
    if root.exists():
        shutil.rmtree(root)
    generate(root, shape)
    return root


def fresh_copy(pristine: Path, dest: Path, tool: Tool) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(pristine, dest, symlinks=True)
    tool.prepare(dest)
    return dest


def sample_op(tool: Tool, op: Op, workspace: Path, settings: Settings, *, warmup: bool = True,
              before_each: Callable[[int], None] | None = None) -> Measurement:
    """``settings.warmup`` untimed runs, then ``settings.repeat`` timed ones;
    stops at the first failure.  ``before_each`` gets the run's index
    (negative for warm-ups)."""
    argv = tool.command(op)
    if argv is None:
        return Measurement.skipped(f"{tool.name} has no command for this yet")
    env = tool.env(workspace)
    samples: list[Sample] = []
    for index in range(-settings.warmup if warmup else 0, settings.repeat):
        if before_each is not None:
            before_each(index)
        sample = run_command(argv, workspace, env, settings.timeout)
        if index >= 0 or sample.outcome is not Outcome.OK:
            samples.append(sample)
        if sample.outcome is not Outcome.OK:
            break
    return Measurement.from_samples(samples)


def bench_tool(tool: Tool, shape: Shape, pristine: Path, settings: Settings, ops: frozenset[Op],
               built_elsewhere: Path | None = None) -> ToolRun:
    """Every op in ``ops`` for ``tool`` on copies of ``pristine``.  When the
    tool's fresh run cannot finish and ``built_elsewhere`` (a workspace another
    tool built) is given, its outputs are adopted (``Op.ADOPT``) instead."""
    run = ToolRun(tool.name)
    home = settings.workdir / f"stages-{shape.stages}" / tool.name
    workspace = fresh_copy(pristine, home / "ws", tool)

    if Op.LIST in ops:
        run.results[Op.LIST] = sample_op(tool, Op.LIST, workspace, settings)

    if Op.FRESH_RUN_SERIAL in ops:
        run.results[Op.FRESH_RUN_SERIAL] = fresh_runs(tool, Op.FRESH_RUN_SERIAL, pristine, home, settings, keep=False)

    if Op.FRESH_RUN in ops:
        fresh = fresh_runs(tool, Op.FRESH_RUN, pristine, home, settings, keep=True)
        run.results[Op.FRESH_RUN] = fresh
        built = fresh
    else:
        built = Measurement.skipped("fresh run not attempted")
    if not built.ok and built_elsewhere is not None and Op.ADOPT in ops and tool.command(Op.ADOPT):
        built = adopt_outputs(tool, built_elsewhere, home / "ws", settings)
        run.results[Op.ADOPT] = built
    if not built.ok:
        reason = f"{built.outcome.value}: {built.detail}" if built.detail else "workspace not built"
        for op in NEEDS_BUILT:
            if op in ops and tool.command(op) is not None:
                run.results[op] = Measurement.skipped(reason)
        return run
    workspace = home / "ws"
    if Op.FRESH_RUN in run.results and run.results[Op.FRESH_RUN].ok:
        run.workspace = workspace  # built by this tool itself

    # Let every file the build wrote age past the 2 s "racy" window in which
    # a stat cache (pivot's, DVC's) rightly refuses to trust mtimes.
    time.sleep(settings.settle)
    for op in (Op.NOOP_RUN, Op.STATUS_WARM):
        if op in ops:
            run.results[op] = sample_op(tool, op, workspace, settings)
    if Op.STATUS_COLD in ops:
        run.results[Op.STATUS_COLD] = sample_op(
            tool, Op.STATUS_COLD, workspace, settings, before_each=lambda _: tool.drop_state(workspace)
        )
    if Op.TOUCH_PARAM_RUN in ops:
        # A new value every time, so no run cache can answer for it.
        run.results[Op.TOUCH_PARAM_RUN] = sample_op(
            tool, Op.TOUCH_PARAM_RUN, workspace, settings, before_each=lambda i: touch_param(workspace, 1000 + i)
        )
    if Op.RUN_CACHE_REVERT in ops:
        run.results[Op.RUN_CACHE_REVERT] = revert_runs(tool, workspace, settings)
    if Op.EMIT_NINJA in ops:
        run.results[Op.EMIT_NINJA] = sample_op(tool, Op.EMIT_NINJA, workspace, settings)
    if Op.NINJA_FIRST in ops or Op.NINJA_NOOP in ops:
        first, noop = ninja_builds(tool, workspace, settings, run.results.get(Op.EMIT_NINJA))
        for op, measured in ((Op.NINJA_FIRST, first), (Op.NINJA_NOOP, noop)):
            if op in ops:
                run.results[op] = measured
    return run


def fresh_runs(tool: Tool, op: Op, pristine: Path, home: Path, settings: Settings, *, keep: bool) -> Measurement:
    """Each sample on a new copy of the pristine workspace; the last copy stays as ``home/ws``."""
    argv = tool.command(op)
    if argv is None:
        return Measurement.skipped(f"{tool.name} has no command for this yet")
    samples: list[Sample] = []
    for _ in range(settings.fresh_repeat):
        workspace = fresh_copy(pristine, home / "ws", tool)
        sample = run_command(argv, workspace, tool.env(workspace), settings.timeout)
        samples.append(sample)
        if sample.outcome is not Outcome.OK:
            break
    if not keep:
        shutil.rmtree(home / "ws", ignore_errors=True)
    return Measurement.from_samples(samples)


def adopt_outputs(tool: Tool, built: Path, dest: Path, settings: Settings) -> Measurement:
    """Copy a workspace another tool built (without that tool's state) and
    let ``tool`` record it as up to date; one timed sample."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(built, dest, symlinks=True, ignore=shutil.ignore_patterns(*NOT_OUTPUTS))
    tool.prepare(dest)
    sample = run_command(tool.command(Op.ADOPT), dest, tool.env(dest), settings.timeout)
    return Measurement.from_samples([sample])


def revert_runs(tool: Tool, workspace: Path, settings: Settings) -> Measurement:
    """Change a param, run (untimed), put it back, run again (timed): the
    second run can restore outputs from a run cache instead of executing."""
    argv = tool.command(Op.RUN_CACHE_REVERT)
    if argv is None:
        return Measurement.skipped(f"{tool.name} has no command for this yet")
    env = tool.env(workspace)
    samples: list[Sample] = []
    for index in range(settings.repeat):
        touch_param(workspace, 5000 + index)
        first = run_command(argv, workspace, env, settings.timeout)
        touch_param(workspace, 150)
        sample = first if first.outcome is not Outcome.OK else run_command(argv, workspace, env, settings.timeout)
        samples.append(sample)
        if sample.outcome is not Outcome.OK:
            break
    return Measurement.from_samples(samples)


def ninja_builds(
    tool: Tool, workspace: Path, settings: Settings, emitted: Measurement | None
) -> tuple[Measurement, Measurement]:
    """``ninja`` on the file emitted after the run: the first build (no
    ``.ninja_log`` yet, so Ninja finds every edge dirty; one sample), then
    no-op builds."""
    if emitted is None or not emitted.ok:
        skipped = Measurement.skipped("no build.ninja was emitted")
        return skipped, skipped
    argv = tool.command(Op.NINJA_NOOP)
    if argv is None:
        skipped = Measurement.skipped("ninja is not installed")
        return skipped, skipped
    first = Measurement.from_samples([run_command(argv, workspace, tool.env(workspace), settings.timeout)])
    if not first.ok:
        return first, Measurement.skipped("the first build failed")
    return first, sample_op(tool, Op.NINJA_NOOP, workspace, settings, warmup=False)


def command_floor(pristine: Path, dest: Path, settings: Settings) -> Measurement:
    """Run every stage command serially in run order with no tool at all:
    the time the commands themselves take.  Stages come from pivot's own
    loader (in process), so this is skipped until the loader exists."""
    try:
        from pivot.frontends import load_pipeline
        from pivot.graph import run_order
        from pivot.project import Project
    except ImportError as exc:
        return Measurement.skipped(f"pivot's loader is not there yet ({exc.name})")
    env = dict(os.environ, PATH=harness_path())
    samples: list[Sample] = []
    for _ in range(settings.fresh_repeat):
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(pristine, dest, symlinks=True)
        pipeline = load_pipeline(Project(root=dest.resolve(), cwd=dest.resolve()))
        order = run_order(pipeline, [stage.address for stage in pipeline.stages])
        started = time.perf_counter()
        for address in order:
            stage = pipeline.by_address[address]
            for cmd in stage.cmds:
                subprocess.run(cmd, shell=True, cwd=dest / stage.wdir, env=env, check=True)
        samples.append(Sample(time.perf_counter() - started, 0.0, Outcome.OK))
    shutil.rmtree(dest, ignore_errors=True)
    return Measurement.from_samples(samples)


def output_digests(workspace: Path) -> dict[str, str]:
    """Root-relative POSIX path -> sha256 of every file a run produced or read."""
    digests: dict[str, str] = {}
    for top, dirs, files in os.walk(workspace):
        rel_top = Path(top).relative_to(workspace)
        if rel_top == Path("."):
            dirs[:] = [name for name in dirs if name not in NOT_OUTPUTS]
        for name in files:
            rel = (rel_top / name).as_posix()
            if name in NOT_OUTPUTS:
                continue
            digests[rel] = hashlib.sha256((Path(top) / name).read_bytes()).hexdigest()
    return digests


def compare_outputs(first: Path, second: Path) -> list[str]:
    """Paths whose content differs between two built workspaces (empty: identical)."""
    left, right = output_digests(first), output_digests(second)
    return sorted(path for path in left.keys() | right.keys() if left.get(path) != right.get(path))
