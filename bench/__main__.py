"""``python -m bench``: generate workspaces and measure pivot against DVC.

    python -m bench run --sizes 93,1000          # the table in docs/benchmarks.md
    python -m bench run --sizes 93 --no-dvc      # pivot only (the smoke test)
    python -m bench remote --repeat 3           # push/pull to moto's S3 server (issue 14)
    python -m bench generate --stages 93 /tmp/ws # just a workspace
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from bench import report, scenario
from bench.generate import Shape, generate
from bench.measure import Measurement
from bench.tools import Dvc, Op, Pivot

ALL_OPS = frozenset(Op) - {Op.HELP}
PIVOT_ONLY = frozenset({Op.FRESH_RUN_SERIAL, Op.EMIT_NINJA, Op.NINJA_FIRST, Op.NINJA_NOOP})
# What DVC attempts at 10,000 stages by default: its repro cannot finish
# (it already times out at 1,000), so pivot's outputs are adopted instead.
DVC_HUGE_OPS = frozenset({Op.LIST, Op.ADOPT, Op.STATUS_WARM})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="measure pivot (and DVC) at one or more sizes")
    run.add_argument("--sizes", default="93,1000", help="stage counts, comma separated (>= 93)")
    run.add_argument("--repeat", type=int, default=5, help="timed runs per operation, after one warm-up")
    run.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    run.add_argument("--settle", type=float, default=3.0,
                     help="seconds to wait after a build before warm measurements (stat caches distrust newer files)")
    run.add_argument("--fresh-repeat", type=int, default=None,
                     help="fresh runs per size (default 3 below 1,000 stages, else 1)")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds before a command is killed")
    run.add_argument("--dvc", default=None, help="dvc executable or virtualenv (else $PIVOT_BENCH_DVC, else bench/.dvcenv)")
    run.add_argument("--no-dvc", action="store_true", help="measure pivot only")
    run.add_argument("--dvc-ops", default=None,
                     help="comma-separated ops DVC runs at sizes >= 10,000 (default: list,adopt,status_warm)")
    run.add_argument("--skip", default="", help=f"comma-separated ops not to measure: {', '.join(op.name.lower() for op in ALL_OPS)}")
    run.add_argument("--floor-max", type=int, default=1000,
                     help="largest size at which the bare commands are replayed serially")
    run.add_argument("--run-files", type=int, default=2000, help="files in the shared data/raw/runs directory")
    run.add_argument("--workdir", type=Path, default=Path("bench/out/work"))
    run.add_argument("--out", type=Path, default=Path("bench/out"))
    run.add_argument("--keep", action="store_true", help="keep the workspaces after the run")

    pf = commands.add_parser("pivotfile", help="time loading a large Pivotfile")
    pf.add_argument("--rules", type=int, default=1000)
    pf.add_argument("--repeat", type=int, default=5)
    pf.add_argument("--timeout", type=float, default=120.0)
    pf.add_argument("--workdir", type=Path, default=Path("bench/out/work"))

    sc = commands.add_parser("scale", help="issue 16's scale cases: wildcard workflows, a built workspace's status")
    sc.add_argument("--samples", default="10000", help="samples per wildcard workflow, comma separated (2N+1 jobs)")
    sc.add_argument("--repeat", type=int, default=5)
    sc.add_argument("--timeout", type=float, default=600.0)
    sc.add_argument("--settle", type=float, default=3.0)
    sc.add_argument("--snakemake", type=Path, default=None, help="a snakemake executable (never a pivot dependency)")
    sc.add_argument("--full-run", action="store_true", help="also run the workflow and time the no-op plan/status")
    sc.add_argument("--run", action="store_true",
                    help="watch a fresh run: pivot's overhead per stage against the bare commands, its own CPU,"
                         " its memory over the run")
    sc.add_argument("--jobs", type=int, default=2, help="-j of the fresh run (and lanes of the bare commands)")
    sc.add_argument("--ninja", action="store_true",
                    help="also time Ninja's no-op on a hand-written equivalent; after a run, emit ninja and"
                         " ninja on pivot's file")
    sc.add_argument("--status-of", type=Path, default=None, help="only time a warm status of this built workspace")
    sc.add_argument("--workdir", type=Path, default=Path("bench/out/work"))

    rm = commands.add_parser("remote", help="push and pull to moto's S3 server on 127.0.0.1, pivot beside DVC")
    rm.add_argument("--stages", type=int, default=93)
    rm.add_argument("--run-files", type=int, default=2000,
                    help="files in data/raw/runs and in the directory output built from it")
    rm.add_argument("--repeat", type=int, default=3, help="timed samples per operation")
    rm.add_argument("--timeout", type=float, default=600.0)
    rm.add_argument("--dvc", default=None, help="dvc executable or virtualenv with dvc[s3] (else bench/.dvcenv)")
    rm.add_argument("--no-dvc", action="store_true", help="measure pivot only")
    rm.add_argument("--workdir", type=Path, default=Path("bench/out/work"))
    rm.add_argument("--out", type=Path, default=Path("bench/out"))
    rm.add_argument("--keep", action="store_true", help="keep the workspaces after the run")

    gen = commands.add_parser("generate", help="write one workspace")
    gen.add_argument("--stages", type=int, default=93)
    gen.add_argument("--run-files", type=int, default=2000)
    gen.add_argument("dest", type=Path)
    return parser.parse_args(argv)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_ops(names: str) -> frozenset[Op]:
    wanted = {name.strip().lower() for name in names.split(",") if name.strip()}
    known = {op.name.lower(): op for op in ALL_OPS}
    unknown = wanted - known.keys()
    if unknown:
        raise SystemExit(f"bench: unknown ops {sorted(unknown)}; known: {sorted(known)}")
    return frozenset(known[name] for name in wanted)


def dvc_ops_for(stages: int, requested: str | None) -> frozenset[Op]:
    """DVC cannot finish a 10,000-stage repro in any sensible time: by default
    it only lists and reports status there (the table says so)."""
    if stages < 10000:
        return ALL_OPS - PIVOT_ONLY
    if requested:
        return parse_ops(requested) - PIVOT_ONLY
    return DVC_HUGE_OPS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "generate":
        try:
            generate(args.dest, Shape.for_stages(args.stages, args.run_files))
        except (FileExistsError, ValueError) as exc:
            raise SystemExit(f"bench: {exc}") from None
        print(f"wrote a {args.stages}-stage workspace to {args.dest}")
        return 0

    if args.command == "pivotfile":
        from bench import pivotfile_load

        results = pivotfile_load.measure(args.workdir, args.rules, args.repeat, args.timeout)
        print(pivotfile_load.table(args.rules, results))
        return 0

    if args.command == "remote":
        return run_remote(args)

    if args.command == "scale":
        from bench import scale

        if args.status_of is not None:
            results = scale.measure_status(args.status_of.resolve(), repeat=args.repeat, timeout=args.timeout)
            print(scale.table(f"Warm status of {args.status_of}", results))
            return 0
        args.workdir = args.workdir.resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)
        for samples in [int(n) for n in args.samples.split(",") if n.strip()]:
            progress(f"wildcard workflow, {samples} samples")
            results = scale.measure_wildcard(
                args.workdir, samples, repeat=args.repeat, timeout=args.timeout, snakemake=args.snakemake,
                full_run=args.full_run, ninja=args.ninja, settle=args.settle, watch_run=args.run, jobs=args.jobs)
            reference = "snakemake -n, never run" if args.snakemake else None
            print(scale.table(scale.title_for(samples), results.rows, reference=reference))
            if results.run is not None:
                print(scale.run_report(results.run))
            print(scale.ninja_report(results) + scale.load_report(results), flush=True)
        return 0

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    skipped = parse_ops(args.skip)
    pivot = Pivot.find()
    dvc = None
    if not args.no_dvc:
        from bench.dvcenv import find_dvc

        dvc = Dvc(name="dvc", argv=(str(find_dvc(args.dvc)),))
    # absolute: tools get paths in their environment (DVC_SITE_CACHE_DIR) and
    # run in the workspaces, where a relative path would mean something else
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    progress(f"pivot commands available: {', '.join(sorted(pivot.available)) or 'none'}")

    settings = scenario.Settings(repeat=args.repeat, warmup=args.warmup, timeout=args.timeout, workdir=args.workdir)
    help_pivot = scenario.sample_op(pivot, Op.HELP, args.workdir, settings)
    help_dvc = scenario.sample_op(dvc, Op.HELP, args.workdir, settings) if dvc else None

    results: list[report.SizeResult] = []
    for stages in sizes:
        shape = Shape.for_stages(stages, args.run_files)
        fresh_repeat = args.fresh_repeat or (3 if stages < 1000 else 1)
        sized = scenario.Settings(repeat=args.repeat, warmup=args.warmup, fresh_repeat=fresh_repeat,
                                  settle=args.settle, timeout=args.timeout, workdir=args.workdir)
        progress(f"{stages} stages: generating")
        pristine = scenario.pristine_workspace(shape, sized)
        size = report.SizeResult(stages)
        pivot_ops = ALL_OPS - skipped if stages <= args.floor_max else ALL_OPS - skipped - {Op.FRESH_RUN_SERIAL}
        if stages <= args.floor_max:
            progress(f"{stages} stages: bare commands")
            size.command_floor = scenario.command_floor(pristine, args.workdir / f"stages-{stages}" / "floor", sized)
        progress(f"{stages} stages: pivot")
        pivot_run = scenario.bench_tool(pivot, shape, pristine, sized, pivot_ops)
        size.pivot = pivot_run.results
        if dvc:
            progress(f"{stages} stages: dvc")
            dvc_run = scenario.bench_tool(dvc, shape, pristine, sized, dvc_ops_for(stages, args.dvc_ops) - skipped,
                                          built_elsewhere=pivot_run.workspace)
            size.dvc = dvc_run.results
            for op in sorted(ALL_OPS - PIVOT_ONLY - {Op.ADOPT} - skipped - size.dvc.keys(), key=list(Op).index):
                size.dvc[op] = Measurement.skipped("not attempted at this size (see --dvc-ops)")
            dvc_built_itself = Op.FRESH_RUN in size.dvc and size.dvc[Op.FRESH_RUN].ok
            if pivot_run.workspace and dvc_built_itself:
                size.outputs_differ = scenario.compare_outputs(pivot_run.workspace, dvc_run.workspace)
        results.append(size)
        print(report.size_table(size) + "\n", flush=True)
        if not args.keep:
            shutil.rmtree(args.workdir / f"stages-{stages}", ignore_errors=True)

    targets = report.evaluate_targets(results, help_pivot)
    print(report.help_table(help_pivot, help_dvc) + "\n")
    print(report.targets_table(targets))
    meta = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": report.machine(),
        "versions": report.tool_versions(dvc.argv if dvc else None),
        "settings": {"repeat": args.repeat, "timeout_s": args.timeout, "run_files": args.run_files},
    }
    data = report.to_json(results, help_pivot, help_dvc, targets, meta)
    path = report.write_json(data, args.out, datetime.now().strftime("%Y-%m-%d-%H%M%S"))
    markdown = "\n\n".join([*(report.size_table(size) for size in results),
                            report.help_table(help_pivot, help_dvc), report.targets_table(targets)])
    (args.out / "latest.md").write_text(markdown + "\n")
    progress(f"wrote {path} and {args.out / 'latest.md'}")
    return 0


def run_remote(args: argparse.Namespace) -> int:
    from bench import remote

    dvc = None
    if not args.no_dvc:
        from bench.dvcenv import ensure_s3, find_dvc

        executable = find_dvc(args.dvc)
        ensure_s3(executable)
        dvc = Dvc(name="dvc", argv=(str(executable),))
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = remote.Settings(repeat=args.repeat, timeout=args.timeout, workdir=workdir, stages=args.stages,
                               run_files=args.run_files)
    try:
        results = remote.measure(settings, Pivot.find(), dvc, progress)
    finally:
        if not args.keep:
            shutil.rmtree(workdir / "remote", ignore_errors=True)
    markdown = remote.table(results, settings) + "\n" + remote.targets_table(results)
    print(markdown)
    meta = {"date": datetime.now().isoformat(timespec="seconds"), "machine": report.machine(),
            "versions": report.tool_versions(dvc.argv if dvc else None)}
    path = report.write_json(meta | remote.to_json(results, settings), args.out,
                             "remote-" + datetime.now().strftime("%Y-%m-%d-%H%M%S"))
    (args.out / "remote-latest.md").write_text(markdown)
    progress(f"wrote {path} and {args.out / 'remote-latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
