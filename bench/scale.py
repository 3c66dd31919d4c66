"""Scale cases of issue 16: a Snakemake-shaped wildcard workflow and a built
eval-shaped dvc.yaml workspace, timed with pivot beside Snakemake and Ninja.

``python -m bench scale --samples 10000`` writes the workflow of
:func:`bench.generate.generate_wildcard` (``2N+1`` jobs) and times:

- *plan, first load*: ``pivot plan`` with an empty ``.pivot/`` (nothing cached:
  the Pivotfile is parsed, wildcards resolved, every file hashed);
- *plan, never run (warm)*: the same again with the caches filled;
- ``snakemake -n`` on the same text (``--snakemake PATH``; never a pivot
  dependency: install it in a scratch virtualenv);
- with ``--full-run``: ``pivot run -j 2`` once, then the first ``pivot plan``
  after it (what the run wrote is hashed again once settled), the no-op
  ``pivot plan`` and ``pivot status``, and ``pivot plan`` with one sample
  edited (three stages to run; the edit is undone after);
- with ``--run``: the fresh ``pivot run -j 2`` is *watched* (:mod:`bench.watch`:
  pivot's own CPU without its children, its resident set every 0.5 s) after
  the same commands ran with no tool (:mod:`bench.floor`), for pivot's
  overhead per stage and whether its memory stays flat;
- with ``--ninja`` after a run: ``pivot emit ninja``, the first ``ninja``
  after ``pivot run`` and the no-op ``ninja`` on pivot's file, beside Ninja's
  own no-op on a hand-written ``hand.ninja`` of the same edges (the C++ floor;
  timed with ``--ninja`` alone too); the two no-ops are taken in turns.

``python -m bench scale --status-of PATH`` times a warm ``pivot status`` on
a workspace already built (the 10,000-stage dvc.yaml of ``bench generate
--stages 10000`` after ``pivot run``).

Every figure is a median of ``--repeat`` runs with its peak RSS (``os.wait4``).
The rows after a build (``pivot run``, the first ``ninja``) are taken after
``os.sync()``: the kernel writing the build's files out is not timed with them.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bench.floor import listed_stages, run_floor
from bench.generate import generate_wildcard, wildcard_jobs
from bench.measure import Measurement, Outcome, Sample, run_command
from bench.tools import Pivot, harness_path
from bench.watch import Watched, watch

PLAN_NOOP_TARGET = 0.4  # seconds, 20,001 jobs
PLAN_NEVER_RUN_TARGET = 0.6
PLAN_FIRST_LOAD_TARGET = 1.5
RUN_OVERHEAD_TARGET_MS = 3.0  # per stage, 100,001 jobs
NINJA_NOOP_FACTOR_TARGET = 2.0  # pivot's file against the hand-written one
OUTPUT_DIRS = ("count", "norm", "summary.txt")  # what the wildcard workflow writes


@dataclass(frozen=True)
class RunOverhead:
    """A watched fresh ``pivot run`` beside the same commands run bare."""

    stages: int
    jobs: int
    floor_seconds: float  # the commands alone, in as many lanes as jobs
    run: Watched
    load: tuple[float, float]  # 1-minute load average before the floor, after the run

    @property
    def overhead_ms(self) -> float:
        """pivot's wall time beyond the bare commands', per stage."""
        return (self.run.seconds - self.floor_seconds) / self.stages * 1000

    @property
    def own_cpu_ms(self) -> float:
        """pivot's own CPU (not its commands'), per stage: barely moved by other load."""
        return self.run.own_cpu / self.stages * 1000


@dataclass
class WildcardResults:
    rows: dict[str, Measurement] = field(default_factory=dict)
    run: RunOverhead | None = None
    load: list[tuple[str, float]] = field(default_factory=list)  # (what was measured, 1-minute load after)

    def noted(self, name: str, measurement: Measurement) -> None:
        self.rows[name] = measurement
        self.load.append((name, os.getloadavg()[0]))


def _sample(argv: Sequence[str], cwd: Path, env: dict[str, str], repeat: int, timeout: float,
            before=None) -> Measurement:
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        samples.append(run_command(argv, cwd, env, timeout))
    return Measurement.from_samples(samples)


def ninja_file(samples: int) -> str:
    """The workflow's edges written by hand for Ninja: the floor a build
    system in C++ sets for the same no-op."""
    names = [f"s{i:06d}" for i in range(samples)]
    lines = [
        "builddir = ninja-out\n",  # its own .ninja_log, apart from that of pivot's build.ninja
        "rule count\n  command = wc -l < $in > $out\n",
        "rule norm\n  command = tr -d ' ' < $in > $out\n",
        # the inputs go through a response file: as one command line they pass the kernel's limit
        "rule summary\n  command = xargs cat < $out.rsp > $out\n  rspfile = $out.rsp\n  rspfile_content = $in\n",
    ]
    for name in names:
        lines.append(f"build ninja-out/count/{name}: count data/{name}.csv\n")
        lines.append(f"build ninja-out/norm/{name}: norm ninja-out/count/{name}\n")
    lines.append("build ninja-out/summary.txt: summary " + " ".join(f"ninja-out/norm/{n}" for n in names) + "\n")
    return "".join(lines)


def measure_wildcard(workdir: Path, samples: int, *, repeat: int, timeout: float, snakemake: Path | None,
                     full_run: bool, ninja: bool, settle: float, watch_run: bool = False,
                     jobs: int = 2) -> WildcardResults:
    pivot = Pivot.find()
    home = workdir / f"wildcard-{samples}"
    if home.exists():
        shutil.rmtree(home)
    generate_wildcard(home, samples)
    env = pivot.env(home)
    plan = (*pivot.argv, "plan")
    results = WildcardResults()

    def no_state() -> None:
        shutil.rmtree(home / ".pivot", ignore_errors=True)
        (home / ".pivot").mkdir()

    results.noted("pivot plan, never run, first load", _sample(plan, home, env, min(repeat, 3), timeout, no_state))
    time.sleep(settle)  # files younger than 2 s are not cached (racy rule)
    run_command(plan, home, env, timeout)  # fill the caches with settled files
    results.noted("pivot plan, never run (warm)", _sample(plan, home, env, repeat, timeout))

    if snakemake is not None:
        smk = home.parent / f"wildcard-{samples}-snakemake"
        if smk.exists():
            shutil.rmtree(smk)
        shutil.copytree(home, smk, ignore=shutil.ignore_patterns(".pivot"))
        (smk / "Pivotfile").rename(smk / "Snakefile")
        argv = (str(snakemake), "-n", "-c", "2", "--quiet")
        results.noted("snakemake -n, never run", _sample(argv, smk, env, 1 if samples > 5000 else repeat, timeout))

    ran = full_run or watch_run
    run_name = f"pivot run -j {jobs}, fresh"
    if watch_run:
        results.run = measure_run_overhead(home, pivot, env, jobs, timeout * 10)
        watched = results.run.run
        outcome = Outcome.OK if watched.ok else Outcome.FAILED
        results.noted(run_name, Measurement.from_samples([Sample(
            watched.seconds, watched.rss_peak, outcome, watched.error_tail[-300:],
            watched.own_cpu + watched.children_cpu)]))
    elif full_run:
        results.noted(run_name, _sample((*pivot.argv, "run", "-j", str(jobs)), home, env, 1, timeout * 10))
    if full_run:
        _quiesce(settle)
        # the first command after a run hashes again what the run wrote (racy then) and refreshes the memos
        results.noted("pivot plan, first after a full run", _sample(plan, home, env, 1, timeout))
        results.noted("pivot plan, no-op after a full run", _sample(plan, home, env, repeat, timeout))
        results.noted("pivot status, no-op after a full run", _sample((*pivot.argv, "status"), home, env, repeat,
                                                                      timeout))
        _measure_plan_with_work(results, home, plan, env, repeat, timeout, settle)
    if ninja:
        binary = shutil.which("ninja", path=harness_path())
        if binary is not None:
            if ran:
                _quiesce(settle)  # emit writes fresh markers only for inputs older than 2 s
                _measure_pivot_ninja(results, home, pivot, env, binary, repeat, timeout)
            hand = home / "hand.ninja"
            hand.write_text(ninja_file(samples))
            argv = (binary, "-f", hand.name)
            results.noted("ninja, first build (hand-written file)", _sample(argv, home, env, 1, timeout * 10))
            _quiesce(0)
            if ran:
                # the two no-ops taken in turns: the ratio is not the VM's drift between two blocks
                ours, theirs = _sample_in_turns((binary,), argv, home, env, repeat, timeout)
                results.noted("ninja, no-op (pivot's file)", ours)
                results.noted("ninja, no-op (hand-written file)", theirs)
            else:
                results.noted("ninja, no-op (hand-written file)", _sample(argv, home, env, repeat, timeout))
            hand.unlink()
    return results


def _quiesce(settle: float) -> None:
    """Write out what the last build left in the page cache, then wait
    ``settle`` seconds: the rows after it time the command, not the kernel
    writing (and on a disk mounted with ``discard``, trimming) 20,000 files
    beside it."""
    os.sync()
    time.sleep(settle)


def _measure_plan_with_work(results: WildcardResults, home: Path, plan: Sequence[str], env: dict[str, str],
                            repeat: int, timeout: float, settle: float) -> None:
    """One sample edited after the full run (three stages to run), planned
    once to settle the memos, then sampled; the edit is undone after."""
    sample = home / "data" / "s000000.csv"
    before = sample.read_bytes()
    sample.write_bytes(before + b"s000000,2\n")
    time.sleep(settle)
    run_command(plan, home, env, timeout)
    results.noted("pivot plan, one sample edited (warm)", _sample(plan, home, env, repeat, timeout))
    sample.write_bytes(before)


def _sample_in_turns(first: Sequence[str], second: Sequence[str], cwd: Path, env: dict[str, str], repeat: int,
                     timeout: float) -> tuple[Measurement, Measurement]:
    """``first`` and ``second`` run alternately, ``repeat`` times each."""
    ones, twos = [], []
    for _ in range(repeat):
        ones.append(run_command(first, cwd, env, timeout))
        twos.append(run_command(second, cwd, env, timeout))
    return Measurement.from_samples(ones), Measurement.from_samples(twos)


def measure_run_overhead(home: Path, pivot: Pivot, env: dict[str, str], jobs: int, timeout: float) -> RunOverhead:
    """The bare commands first (in ``jobs`` lanes, level by level), their
    outputs removed, then a fresh ``pivot run -j JOBS`` watched."""
    stages = listed_stages(pivot.argv, home, env)
    load_before = os.getloadavg()[0]
    _remove_outputs(home)
    floor = run_floor(stages, home, env, jobs, home.parent / f"{home.name}-floor")
    _remove_outputs(home)
    shutil.rmtree(home / ".pivot")
    (home / ".pivot").mkdir()
    run = watch((*pivot.argv, "run", "-j", str(jobs)), home, env, timeout)
    return RunOverhead(len(stages), jobs, floor, run, (load_before, os.getloadavg()[0]))


def _measure_pivot_ninja(results: WildcardResults, home: Path, pivot: Pivot, env: dict[str, str], binary: str,
                         repeat: int, timeout: float) -> None:
    """After ``pivot run``: emit, and the first ``ninja`` (no ``.ninja_log``
    yet: every edge dirty once) on pivot's file; its no-op is taken in
    turns with the hand-written file's."""
    emit = (*pivot.argv, "emit", "ninja")
    results.noted("pivot emit ninja, after the run", _sample(emit, home, env, min(repeat, 3), timeout))
    for log in (".ninja_log", ".ninja_deps"):
        (home / log).unlink(missing_ok=True)
    results.noted("ninja, first build after pivot run (pivot's file)", _sample((binary,), home, env, 1, timeout * 10))


def _remove_outputs(home: Path) -> None:
    for name in OUTPUT_DIRS:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def measure_status(workspace: Path, *, repeat: int, timeout: float) -> dict[str, Measurement]:
    pivot = Pivot.find()
    env = pivot.env(workspace)
    status = (*pivot.argv, "status")
    run_command(status, workspace, env, timeout)  # warm-up: caches refreshed
    return {"pivot status, warm": _sample(status, workspace, env, repeat, timeout)}


def table(title: str, results: dict[str, Measurement], *, reference: str | None = None) -> str:
    """Markdown: median (min-max), peak RSS, and the ratio of ``reference``'s
    median to each row's (how many times faster than it)."""
    rows = [f"### {title}", "", "| operation | wall median (min–max) | CPU median | peak RSS | ratio |",
            "|---|---|---|---|---|"]
    base = results.get(reference) if reference else None
    for name, m in results.items():
        if not m.ok:
            rows.append(f"| {name} | {m.outcome.value}: {m.detail} | n/a | n/a | n/a |")
            continue
        ratio = ""
        comparable = name.startswith("pivot plan") or name.startswith("pivot status")
        if base is not None and base.ok and comparable and m.median:
            ratio = f"{reference.split(',')[0]} / this: {base.median / m.median:.1f}x"
        rows.append(f"| {name} | {_s(m.median)} ({_s(m.minimum)}–{_s(m.maximum)}) | {_s(m.cpu_median)}"
                    f" | {m.peak_rss_mb:.0f} MB | {ratio} |")
    return "\n".join(rows) + "\n"


def _s(seconds: float | None) -> str:
    assert seconds is not None
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def title_for(samples: int) -> str:
    return f"Wildcard workflow, {samples:,} samples ({wildcard_jobs(samples):,} jobs)"


def run_report(overhead: RunOverhead) -> str:
    """Markdown lines: overhead and CPU per stage, memory over the run."""
    run = overhead.run
    verdict = "met" if 0 <= overhead.overhead_ms <= RUN_OVERHEAD_TARGET_MS else "missed"
    if overhead.overhead_ms < 0:
        verdict = "not measured (the bare commands were slower: load)"
    start, middle, end = (run.rss_at(f) for f in (0.1, 0.5, 0.95))
    return "\n".join([
        f"- `pivot run -j {overhead.jobs}`, fresh, {overhead.stages:,} stages: {_s(run.seconds)} wall"
        f" (exit {run.exit_code}); the same commands bare, {overhead.jobs} lanes: {_s(overhead.floor_seconds)}",
        f"- pivot's overhead per stage: {overhead.overhead_ms:.2f} ms (target <= {RUN_OVERHEAD_TARGET_MS:g} ms:"
        f" {verdict}); pivot's own CPU (children excluded): {_s(run.own_cpu)}, {overhead.own_cpu_ms:.2f} ms"
        f" per stage; its commands' CPU: {_s(run.children_cpu)}",
        f"- pivot's resident set at 10 % / 50 % / 95 % of the run: {start:.0f} / {middle:.0f} / {end:.0f} MB"
        f" (peak {run.rss_peak:.0f} MB, {len(run.rss_mb)} samples)",
        f"- load average (1 min) before the bare commands / after the run: {overhead.load[0]:.2f} /"
        f" {overhead.load[1]:.2f}",
    ]) + "\n"


def ninja_report(results: WildcardResults) -> str:
    """The no-op ``ninja`` on pivot's file against the hand-written one."""
    ours = results.rows.get("ninja, no-op (pivot's file)")
    hand = results.rows.get("ninja, no-op (hand-written file)")
    if ours is None or hand is None or not (ours.ok and hand.ok):
        return ""
    factor = ours.median / hand.median
    verdict = "met" if factor <= NINJA_NOOP_FACTOR_TARGET else "missed"
    return (f"- no-op `ninja`: pivot's file {_s(ours.median)} against the hand-written {_s(hand.median)}:"
            f" {factor:.1f}x (target <= {NINJA_NOOP_FACTOR_TARGET:g}x: {verdict})\n")


def load_report(results: WildcardResults) -> str:
    return "- load average (1 min) after each row: " + "; ".join(
        f"{name}: {load:.2f}" for name, load in results.load) + "\n"
