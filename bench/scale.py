"""Scale cases of issue 16: a Snakemake-shaped wildcard workflow and a built
eval-shaped dvc.yaml workspace, timed with pivot beside Snakemake and Ninja.

``python -m bench scale --samples 10000`` writes the workflow of
:func:`bench.generate.generate_wildcard` (``2N+1`` jobs) and times:

- *plan, first load*: ``pivot plan`` with an empty ``.pivot/`` (nothing cached:
  the Pivotfile is parsed, wildcards resolved, every file hashed);
- *plan, never run (warm)*: the same again with the caches filled;
- ``snakemake -n`` on the same text (``--snakemake PATH``; never a pivot
  dependency: install it in a scratch virtualenv);
- with ``--full-run``: ``pivot run -j 2`` once, then the no-op ``pivot plan``
  and ``pivot status``, and Ninja's own no-op on a hand-written
  ``build.ninja`` of the same edges (``--ninja``; the C++ floor).

``python -m bench scale --status-of PATH`` times a warm ``pivot status`` on
a workspace already built (the 10,000-stage dvc.yaml of ``bench generate
--stages 10000`` after ``pivot run``).

Every figure is a median of ``--repeat`` runs with its peak RSS (``os.wait4``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Sequence

from bench.generate import generate_wildcard, wildcard_jobs
from bench.measure import Measurement, run_command
from bench.tools import Pivot, harness_path

PLAN_NOOP_TARGET = 0.4  # seconds, 20,001 jobs
PLAN_NEVER_RUN_TARGET = 0.6
PLAN_FIRST_LOAD_TARGET = 1.5


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
                     full_run: bool, ninja: bool, settle: float) -> dict[str, Measurement]:
    pivot = Pivot.find()
    home = workdir / f"wildcard-{samples}"
    if home.exists():
        shutil.rmtree(home)
    generate_wildcard(home, samples)
    env = pivot.env(home)
    plan = (*pivot.argv, "plan")
    results: dict[str, Measurement] = {}

    def no_state() -> None:
        shutil.rmtree(home / ".pivot", ignore_errors=True)
        (home / ".pivot").mkdir()

    results["pivot plan, never run, first load"] = _sample(plan, home, env, min(repeat, 3), timeout, no_state)
    time.sleep(settle)  # files younger than 2 s are not cached (racy rule)
    run_command(plan, home, env, timeout)  # fill the caches with settled files
    results["pivot plan, never run (warm)"] = _sample(plan, home, env, repeat, timeout)

    if snakemake is not None:
        smk = home.parent / f"wildcard-{samples}-snakemake"
        if smk.exists():
            shutil.rmtree(smk)
        shutil.copytree(home, smk, ignore=shutil.ignore_patterns(".pivot"))
        (smk / "Pivotfile").rename(smk / "Snakefile")
        argv = (str(snakemake), "-n", "-c", "2", "--quiet")
        results["snakemake -n, never run"] = _sample(argv, smk, env, 1 if samples > 5000 else repeat, timeout)

    if full_run:
        results["pivot run -j 2, fresh"] = _sample((*pivot.argv, "run", "-j", "2"), home, env, 1, timeout * 10)
        time.sleep(settle)
        run_command(plan, home, env, timeout)  # the first command after a run refreshes the caches
        results["pivot plan, no-op after a full run"] = _sample(plan, home, env, repeat, timeout)
        results["pivot status, no-op after a full run"] = _sample((*pivot.argv, "status"), home, env, repeat, timeout)
    if ninja:
        binary = shutil.which("ninja", path=harness_path())
        if binary is not None:
            (home / "build.ninja").write_text(ninja_file(samples))
            results["ninja, first build (hand-written file)"] = _sample((binary,), home, env, 1, timeout * 10)
            results["ninja, no-op (hand-written file)"] = _sample((binary,), home, env, repeat, timeout)
            (home / "build.ninja").unlink()
    return results


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
