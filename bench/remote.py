"""Issue 14's speed case: push and pull to one S3 server, pivot beside DVC.

``python -m bench remote`` builds the 93-stage workspace with its 2,000-file
directory as a cached output (``difficulty``'s ``human_runs`` holds one file
per run), records the same outputs for DVC (``dvc commit --force`` on a copy,
as the main bench does where DVC's repro is too slow), starts moto's S3 server
on 127.0.0.1 and times, for each tool against its own bucket:

- *push to an empty remote*: every sample to a new bucket;
- *no-op push*: again to the last bucket, where everything already is;
- *pull into a fresh clone*: a copy of what git would hold (pipeline files,
  params, inputs, ``cache: false`` outputs, and the tool's tracked state:
  ``.pivot/locks/`` and ``.pivot/config``, or ``dvc.lock`` and ``.dvc/config``),
  no cache, no outputs;

and for pivot the *fresh-clone run*: ``pivot run`` in such a clone, which
restores every stage from the remote, against the original ``pivot run``.
Every row gives wall time (median, min-max) and the client's CPU time
(user + system, ``os.wait4``): the server's work shows only in wall time, and
CPU is steadier when other work loads the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bench.generate import Shape, generate
from bench.measure import Measurement, Outcome, Sample, run_command
from bench.moto_server import create_bucket, moto_server, s3_env
from bench.scenario import NOT_OUTPUTS, adopt_outputs, compare_outputs, fresh_copy
from bench.scenario import Settings as ScenarioSettings
from bench.tools import Dvc, Pivot, Tool

REMOTE_NAME = "s3r"
RATIO_TARGET = 2.0  # pivot at least this many times faster than DVC on push and pull
NOOP_PUSH_TARGET = 1.0  # seconds


@dataclass(frozen=True)
class Settings:
    repeat: int = 3
    timeout: float = 600.0
    workdir: Path = Path("bench/out/work")
    stages: int = 93
    run_files: int = 2000


@dataclass
class ToolTimes:
    push: Measurement | None = None
    noop_push: Measurement | None = None
    pull: Measurement | None = None
    pulled_differ: list[str] | None = None  # paths differing from the pushed workspace


@dataclass
class RemoteResults:
    pivot: ToolTimes = field(default_factory=ToolTimes)
    dvc: ToolTimes = field(default_factory=ToolTimes)
    original_run: Measurement | None = None
    clone_run: Measurement | None = None
    clone_run_outcomes: dict[str, int] = field(default_factory=dict)  # stage outcome -> count
    objects: int = 0  # files in pivot's cache after the original run
    load: list[tuple[float, float, float]] = field(default_factory=list)  # load averages, start and end


def measure(settings: Settings, pivot: Pivot, dvc: Dvc | None, progress: Callable[[str], None]) -> RemoteResults:
    results = RemoteResults()
    results.load.append(os.getloadavg())
    home = settings.workdir / "remote"
    if home.exists():
        shutil.rmtree(home)
    pristine = home / "pristine"
    shape = Shape.for_stages(settings.stages, settings.run_files, human_run_files=settings.run_files)
    generate(pristine, shape)
    scratch = home / "scratch"
    scratch.mkdir()

    progress(f"remote: the original pivot run ({settings.stages} stages)")
    pivot_ws = fresh_copy(pristine, home / "pivot" / "ws", pivot)
    results.original_run = Measurement.from_samples(
        [run_command((*pivot.argv, "run"), pivot_ws, pivot.env(pivot_ws), settings.timeout)])
    if not results.original_run.ok:
        return results
    results.objects = sum(len(files) for _, _, files in os.walk(pivot_ws / ".pivot" / "cache"))
    dvc_ws = None
    if dvc is not None:
        progress("remote: recording pivot's outputs for DVC (dvc commit --force)")
        adopted = adopt_outputs(dvc, pivot_ws, home / "dvc" / "ws",
                                ScenarioSettings(timeout=settings.timeout, workdir=settings.workdir))
        if adopted.ok:
            dvc_ws = home / "dvc" / "ws"
        else:
            results.dvc.push = Measurement.skipped(f"dvc commit failed: {adopted.detail}")

    with moto_server(scratch) as endpoint:
        progress(f"remote: moto's S3 server at {endpoint}")
        pivot_side = S3Side(pivot, pivot_ws, "pivot-bench", endpoint, scratch, clone_state=pivot_state_files)
        progress("remote: pivot push, no-op push, pull")
        time_tool(pivot_side, pristine, home / "pivot", settings, results.pivot)
        progress("remote: pivot run in fresh clones (restores from the remote)")
        results.clone_run, results.clone_run_outcomes = clone_runs(pivot_side, pristine, home / "pivot", settings)
        if dvc is not None and dvc_ws is not None:
            dvc_side = S3Side(dvc, dvc_ws, "dvc-bench", endpoint, scratch, clone_state=dvc_state_files)
            progress("remote: dvc push, no-op push, pull")
            time_tool(dvc_side, pristine, home / "dvc", settings, results.dvc)
    results.load.append(os.getloadavg())
    return results


@dataclass(frozen=True)
class S3Side:
    """One tool, its built workspace and its buckets on the server."""

    tool: Tool
    workspace: Path
    bucket_prefix: str
    endpoint: str
    scratch: Path
    clone_state: Callable[[Path], list[Path]]  # the tool's files git holds, root-relative

    def env(self, workspace: Path) -> dict[str, str]:
        return s3_env(self.tool.env(workspace), self.scratch)

    def use_new_bucket(self, workspace: Path, index: int) -> None:
        """Point the tool's default remote at a new, empty bucket on the server:
        the remote then holds exactly what this workspace pushes."""
        bucket = f"{self.bucket_prefix}-{index}"
        create_bucket(self.endpoint, bucket)
        url = f"s3://{bucket}/store"
        for args in (("remote", "add", "-d", "-f", REMOTE_NAME, url),
                     ("remote", "modify", REMOTE_NAME, "endpointurl", self.endpoint)):
            subprocess.run([*self.tool.argv, *args], cwd=workspace, env=self.env(workspace), check=True,
                           capture_output=True)

    def command(self, action: str) -> tuple[str, ...]:
        return (*self.tool.argv, action)


def time_tool(side: S3Side, pristine: Path, home: Path, settings: Settings, times: ToolTimes) -> None:
    """Push to new buckets, push again where everything is, pull into fresh clones."""
    ws = side.workspace
    times.push = _samples(side.command("push"), ws, side.env(ws), range(settings.repeat), settings.timeout,
                          before=lambda index: side.use_new_bucket(ws, index))
    if not times.push.ok:
        return
    times.noop_push = _samples(side.command("push"), ws, side.env(ws), range(settings.repeat), settings.timeout)
    clone = home / "clone"
    times.pull = _samples(side.command("pull"), clone, side.env(clone), range(settings.repeat), settings.timeout,
                          before=lambda _: make_clone(side, pristine, clone))
    if times.pull.ok:
        times.pulled_differ = compare_outputs(ws, clone)
    shutil.rmtree(clone, ignore_errors=True)


def clone_runs(side: S3Side, pristine: Path, home: Path, settings: Settings) -> tuple[Measurement, dict[str, int]]:
    """``pivot run`` in fresh clones: what the last one did to each stage."""
    clone = home / "clone"
    measured = _samples(side.command("run"), clone, side.env(clone), range(settings.repeat), settings.timeout,
                        before=lambda _: make_clone(side, pristine, clone))
    outcomes: dict[str, int] = {}
    if measured.ok:
        log = subprocess.run([*side.tool.argv, "log", "-n", "1", "--json"], cwd=clone, env=side.env(clone),
                             capture_output=True, text=True, check=True)
        for stage in json.loads(log.stdout)[0]["stages"]:
            outcomes[stage["outcome"]] = outcomes.get(stage["outcome"], 0) + 1
    shutil.rmtree(clone, ignore_errors=True)
    return measured, outcomes


def _samples(argv: Sequence[str], cwd: Path, env: dict[str, str], items, timeout: float,
             before: Callable[[object], None] | None = None) -> Measurement:
    samples: list[Sample] = []
    for item in items:
        if before is not None:
            before(item)
        sample = run_command(argv, cwd, env, timeout)
        samples.append(sample)
        if sample.outcome is not Outcome.OK:
            break
    return Measurement.from_samples(samples)


# -- fresh clones ----------------------------------------------------------------


def make_clone(side: S3Side, pristine: Path, dest: Path) -> None:
    """What a git clone of ``side.workspace`` holds: the generated files, the
    outputs that are not cached (committed to git, as both tools advise), and
    the tool's own tracked state.  No cache, no cached outputs."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(pristine, dest, symlinks=True)
    for rel in [*uncached_outputs(side.workspace), *side.clone_state(side.workspace)]:
        source, target = side.workspace / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)


def uncached_outputs(workspace: Path) -> list[Path]:
    """Root-relative paths of the ``cache: false`` outputs (pivot's loader, in process)."""
    from pivot.frontends import load_pipeline
    from pivot.project import Project

    root = workspace.resolve()
    pipeline = load_pipeline(Project(root=root, cwd=root))
    return [Path(out.path) for stage in pipeline.stages for out in stage.outs
            if not out.cache and (root / out.path).exists()]


def pivot_state_files(workspace: Path) -> list[Path]:
    state = workspace / ".pivot"
    return [path.relative_to(workspace) for path in (state / "locks", state / "config", state / ".gitignore")
            if path.exists()]


def dvc_state_files(workspace: Path) -> list[Path]:
    """dvc.lock files, ``.dvc/config`` and the .gitignore files DVC writes."""
    found = [workspace / ".dvc" / "config", workspace / ".dvc" / ".gitignore", workspace / ".dvcignore"]
    for top, dirs, files in os.walk(workspace):
        dirs[:] = [name for name in dirs if name not in NOT_OUTPUTS]
        found += [Path(top) / name for name in files if name in ("dvc.lock", ".gitignore")]
    return [path.relative_to(workspace) for path in found if path.exists()]


# -- report ----------------------------------------------------------------------

ROWS = (("push to an empty remote", "push"), ("no-op push (everything there)", "noop_push"),
        ("pull into a fresh clone", "pull"))


def table(results: RemoteResults, settings: Settings) -> str:
    lines = [
        f"### Push and pull to moto's S3 server, {settings.stages} stages, {results.objects:,} cache objects",
        "",
        "| operation | pivot wall median (min–max) | pivot CPU | DVC wall median (min–max) | DVC CPU "
        "| DVC/pivot wall | DVC/pivot CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, name in ROWS:
        ours, theirs = getattr(results.pivot, name), getattr(results.dvc, name)
        lines.append(f"| {label} | {_cell(ours)} | {_cpu(ours)} | {_cell(theirs)} | {_cpu(theirs)} "
                     f"| {_ratio(ours, theirs, cpu=False)} | {_ratio(ours, theirs, cpu=True)} |")
    lines.append(f"| original `pivot run` | {_cell(results.original_run)} | {_cpu(results.original_run)} | - | - | - | - |")
    lines.append(f"| `pivot run` in a fresh clone (restores from the remote) | {_cell(results.clone_run)} "
                 f"| {_cpu(results.clone_run)} | - | - | - | - |")
    notes = []
    if results.original_run and results.clone_run and results.original_run.ok and results.clone_run.ok:
        notes.append(f"original run / fresh-clone run: {results.original_run.median / results.clone_run.median:.1f}x "
                     f"wall, {results.original_run.cpu_median / results.clone_run.cpu_median:.1f}x CPU; "
                     f"stages in the last clone run: {_outcomes(results.clone_run_outcomes)}")
    for tool, times in (("pivot", results.pivot), ("DVC", results.dvc)):
        if times.pulled_differ is not None:
            same = "identical" if not times.pulled_differ else (
                f"DIFFER in {len(times.pulled_differ)} files, e.g. {times.pulled_differ[:3]}")
            notes.append(f"{tool}'s pulled clone against the pushed workspace: {same}")
    if results.load:
        notes.append("load average (1, 5, 15 min) at start and end: "
                     + "; ".join(", ".join(f"{value:.2f}" for value in load) for load in results.load))
    return "\n".join([*lines, "", *(f"- {note}" for note in notes)]) + "\n"


def targets_table(results: RemoteResults) -> str:
    rows = ["| target | observed | verdict |", "|---|---|---|"]
    for label, name in (("push", "push"), ("pull into a fresh clone", "pull")):
        ours, theirs = getattr(results.pivot, name), getattr(results.dvc, name)
        wall = _ratio_value(ours, theirs, cpu=False)
        verdict = "not measured" if wall is None else ("met" if wall >= RATIO_TARGET else "MISSED")
        rows.append(f"| {label}: pivot >= {RATIO_TARGET:g}x faster than DVC | {_ratio(ours, theirs, cpu=False)} wall, "
                    f"{_ratio(ours, theirs, cpu=True)} CPU | {verdict} |")
    noop = results.pivot.noop_push
    verdict = "not measured" if not (noop and noop.ok) else ("met" if noop.median < NOOP_PUSH_TARGET else "MISSED")
    rows.append(f"| no-op push < {NOOP_PUSH_TARGET:g} s | {_cell(noop)} | {verdict} |")
    return "\n".join(rows) + "\n"


def to_json(results: RemoteResults, settings: Settings) -> dict:
    def side(times: ToolTimes) -> dict:
        return {name: getattr(times, name).to_json() if getattr(times, name) else None for _, name in ROWS} | {
            "pulled_differ": times.pulled_differ}

    return {
        "stages": settings.stages,
        "run_files": settings.run_files,
        "repeat": settings.repeat,
        "cache_objects": results.objects,
        "pivot": side(results.pivot),
        "dvc": side(results.dvc),
        "original_run": results.original_run.to_json() if results.original_run else None,
        "clone_run": results.clone_run.to_json() if results.clone_run else None,
        "clone_run_outcomes": results.clone_run_outcomes,
        "load_average": results.load,
    }


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _cell(measurement: Measurement | None) -> str:
    if measurement is None:
        return "-"
    if not measurement.ok:
        return f"{measurement.outcome.value}: {measurement.detail}" if measurement.detail else measurement.outcome.value
    spread = f" ({_s(measurement.minimum)}–{_s(measurement.maximum)})" if len(measurement.times) > 1 else ""
    return f"{_s(measurement.median)}{spread}"


def _cpu(measurement: Measurement | None) -> str:
    return _s(measurement.cpu_median) if measurement and measurement.ok else "-"


def _ratio_value(ours: Measurement | None, theirs: Measurement | None, *, cpu: bool) -> float | None:
    if not (ours and theirs and ours.ok and theirs.ok):
        return None
    mine, other = (ours.cpu_median, theirs.cpu_median) if cpu else (ours.median, theirs.median)
    return other / mine if mine else None


def _ratio(ours: Measurement | None, theirs: Measurement | None, *, cpu: bool) -> str:
    value = _ratio_value(ours, theirs, cpu=cpu)
    return "n/a" if value is None else f"{value:.1f}x"


def _outcomes(outcomes: dict[str, int]) -> str:
    shown = {"skipped": "up to date"}  # how `pivot log` words it
    return ", ".join(f"{count} {shown.get(outcome, outcome)}" for outcome, count in sorted(outcomes.items())) or "unknown"
