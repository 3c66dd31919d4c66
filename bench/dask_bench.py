"""``python -m bench.dask_bench``: pivot on Dask against the local runner.

Two measurements, all processes on 127.0.0.1:

1. The 93-stage benchmark workspace, fresh run, local runner ``-j 2``
   against a Dask scheduler with two single-thread workers (started once,
   outside the measurement): pivot's added cost per stage on Dask.
2. 64 independent stages that each sleep 1 s, on 1, 2 and 4 single-thread
   workers, against the ideal 64, 32 and 16 s.

Outputs are compared with the local runner's in every case.  The runner's
own time is the wall time of its summary line (``... in 2.50s``); cluster
start-up is not in it (``dask-local:N`` would add it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench.generate import Shape, generate
from bench.scenario import compare_outputs

_WALL = re.compile(r"(\d+) ran, .* in (\d+(?:\.\d+)?)(ms|s)$", re.M)


@contextmanager
def loopback_cluster(workers: int, directory: Path) -> Iterator[str]:
    """``dask scheduler`` and ``workers`` single-thread ``dask worker``s; yields dask://HOST:PORT."""
    procs: list[subprocess.Popen[bytes]] = []
    scheduler_file = directory / "scheduler.json"

    def spawn(*args: str) -> None:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=directory,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))

    try:
        spawn("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start")
            time.sleep(0.05)
        time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            spawn("worker", address, "--name", f"w{i + 1}", "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--host", "127.0.0.1")
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield "dask://" + address.removeprefix("tcp://")
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def pivot_run(workspace: Path, *args: str) -> tuple[float, float, int]:
    """(runner wall from the summary line, whole process wall, stages ran)."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pivot", "run", *args], cwd=workspace,
                          capture_output=True, text=True, env=dict(os.environ, SHELL="/bin/sh"))
    process = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pivot run {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    match = _WALL.search(proc.stdout)
    assert match is not None, proc.stdout[-500:]
    wall = float(match[2]) / (1000 if match[3] == "ms" else 1)
    return wall, process, int(match[1])


def trivial_pipeline(root: Path, stages: int = 93) -> None:
    """``echo i > o_i.txt`` stages chained three wide (docs/run.md's speed table):
    almost no command time, so what is left is the executor's."""
    root.mkdir(parents=True)
    lines = ["stages:"]
    for i in range(stages):
        lines += [f"  s{i}:", f"    cmd: echo {i} > o_{i}.txt"]
        if i >= 3:
            lines.append(f"    deps: [o_{i - 3}.txt]")
        lines.append(f"    outs: [o_{i}.txt]")
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")


def overhead_93(home: Path, repeat: int, trivial: bool = False) -> dict:
    pristine = home / "pristine"
    if trivial:
        trivial_pipeline(pristine)
    else:
        generate(pristine, Shape.for_stages(93))
    local, dask = [], []
    with loopback_cluster(2, home) as address:
        for i in range(repeat):
            for name, args, samples in (("local", ("-j", "2"), local), ("dask", ("--executor", address), dask)):
                workspace = home / f"{name}-{i}"
                shutil.copytree(pristine, workspace, symlinks=True)
                wall, _, ran = pivot_run(workspace, *args)
                samples.append(wall)
            if i == 0:
                differ = compare_outputs(home / "local-0", home / "dask-0")
                if differ:
                    raise RuntimeError(f"outputs differ between local and Dask: {differ[:5]}")
            for name in ("local", "dask"):
                if i > 0:
                    shutil.rmtree(home / f"{name}-{i}")
    ml, md = statistics.median(local), statistics.median(dask)
    return {"workspace": "trivial" if trivial else "benchmark", "stages": ran, "local_j2_s": local, "dask_2_workers_s": dask, "local_median_s": ml,
            "dask_median_s": md, "overhead_per_stage_ms": (md - ml) / ran * 1000}


def wide_64(home: Path, workers_list: list[int], stages: int) -> list[dict]:
    pipeline = home / "wide"
    pipeline.mkdir()
    lines = ["stages:", "  nap:", f"    foreach: [{', '.join(str(i) for i in range(stages))}]", "    do:",
             "      cmd: sleep 1 && echo ${item} > out/${item}.txt", "      outs:", "        - out/${item}.txt"]
    (pipeline / "dvc.yaml").write_text("\n".join(lines) + "\n")
    reference = home / "wide-local"
    shutil.copytree(pipeline, reference)
    pivot_run(reference, "-j", str(stages))
    results = []
    for workers in workers_list:
        workspace = home / f"wide-{workers}"
        shutil.copytree(pipeline, workspace)
        cluster_dir = home / f"cluster-{workers}"
        cluster_dir.mkdir()
        with loopback_cluster(workers, cluster_dir) as address:
            wall, process, ran = pivot_run(workspace, "--executor", address)
        differ = compare_outputs(reference, workspace)
        if differ:
            raise RuntimeError(f"outputs differ on {workers} workers: {differ[:5]}")
        ideal = stages / workers
        results.append({"workers": workers, "stages": ran, "wall_s": wall, "ideal_s": ideal,
                        "over_ideal_pct": (wall / ideal - 1) * 100})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dask_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh 93-stage runs per executor")
    parser.add_argument("--workers", default="1,2,4", help="worker counts for the wide pipeline")
    parser.add_argument("--wide", type=int, default=64, help="stages of the wide pipeline")
    parser.add_argument("--skip-wide", action="store_true")
    parser.add_argument("--workspace", choices=("benchmark", "trivial", "both"), default="both",
                        help="93-stage benchmark workspace, 93 `echo` stages chained three wide"
                             " (least noise from the commands), or both")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pivot-dask-bench-") as tmp:
        home = Path(tmp)
        result: dict = {}
        if args.workspace in ("benchmark", "both"):
            result["overhead_93"] = overhead_93(home / "o93", args.repeat)
            print(json.dumps(result["overhead_93"], indent=2), flush=True)
        if args.workspace in ("trivial", "both"):
            result["trivial_93"] = overhead_93(home / "t93", args.repeat, trivial=True)
            print(json.dumps(result["trivial_93"], indent=2), flush=True)
        if not args.skip_wide:
            (home / "w").mkdir()
            result["wide"] = wide_64(home / "w", [int(n) for n in args.workers.split(",")], args.wide)
            print(json.dumps(result["wide"], indent=2), flush=True)


if __name__ == "__main__":
    main()
