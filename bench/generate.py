"""Generate an eval-pipeline-shaped workspace of any size.

The shape follows the real 93-stage "eval-pipeline" the first prototype was
tried on: four pipeline directories, each with its own ``dvc.yaml``,
``params.yaml`` and data, wired together by cross-pipeline deps:

=============  ======  ====================================================
directory      stages  what it exercises
=============  ======  ====================================================
difficulty/    5       file vars + dict vars, params from two files, a
                       multi-command stage whose first command ``cd``s away,
                       a directory out, metrics (cache: false) and plots
base/          15      foreach over a params dict (``${key}``/``${item}``),
                       per-item params keys, deps on difficulty/
horizon/       4+8B    foreach over a list from a vars file, a matrix with
                       float values (``plot@swe_bench-0.5``), a dep on a
                       directory holding outs of many stages, a directory out
ga_paper/      3+F     foreach over a dict, deps on horizon's directory out
=============  ======  ====================================================

``data/raw/runs/`` (thousands of small files) is a directory dep shared by
many stages.  At the base size B=7 benchmarks and F=10 figures give exactly
93 stages; larger sizes grow B (8 stages each) and F (1 each) to hit the
requested count exactly.  Every command is ``python ../tools/step.py ...``
(:mod:`bench.step_script`), which is deterministic, so DVC and pivot build
byte-identical outputs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BASE_STAGES = 93
BASE_BENCHMARKS = 7
BASE_FIGURES = 10
STAGES_PER_BENCHMARK = 8  # 2 foreach stages + 2 matrix stages x 3 quantiles
# One benchmark and one figure: the fixed stages (5 + 15 + 4 + 3) plus 8 + 1.
MIN_STAGES = BASE_STAGES - STAGES_PER_BENCHMARK * (BASE_BENCHMARKS - 1) - (BASE_FIGURES - 1)
QUANTILES = (0.5, 0.8, 0.9)
NAMED_BENCHMARKS = ("swe_bench", "hcast", "rebench", "all_tasks", "ga", "swaa", "osworld")
STEP = "../tools/step.py"

# The one param the "touch one param" scenarios change: it feeds only
# ga_paper's render_figure@fig_00 (and so make_paper downstream).
TOUCH_PARAMS_FILE = "ga_paper/params.yaml"


@dataclass(frozen=True)
class Shape:
    """How many items each growing list holds for a requested stage count."""

    stages: int
    benchmarks: int
    figures: int
    run_files: int
    # files in difficulty/'s directory out data/processed/human_runs
    human_run_files: int = 20

    @classmethod
    def for_stages(cls, stages: int, run_files: int = 2000, human_run_files: int = 20) -> "Shape":
        """At 93 stages and above: the base lists, grown.  Below 93 (down to
        36, for smoke tests) the lists shrink from one item each instead."""
        if stages >= BASE_STAGES:
            benchmarks, figures, extra = BASE_BENCHMARKS, BASE_FIGURES, stages - BASE_STAGES
        elif stages >= MIN_STAGES:
            benchmarks, figures, extra = 1, 1, stages - MIN_STAGES
        else:
            raise ValueError(f"the smallest workspace has {MIN_STAGES} stages, got {stages}")
        return cls(
            stages=stages,
            benchmarks=benchmarks + extra // STAGES_PER_BENCHMARK,
            figures=figures + extra % STAGES_PER_BENCHMARK,
            run_files=run_files,
            human_run_files=human_run_files,
        )

    def benchmark_names(self) -> list[str]:
        extra = [f"bench_{index:05d}" for index in range(len(NAMED_BENCHMARKS), self.benchmarks)]
        return [*NAMED_BENCHMARKS, *extra][: self.benchmarks]

    @property
    def expected_stages(self) -> int:
        """The stage count the generated dvc.yaml files expand to."""
        fixed = MIN_STAGES - STAGES_PER_BENCHMARK - 1
        return fixed + STAGES_PER_BENCHMARK * self.benchmarks + self.figures

    def figure_names(self) -> list[str]:
        return [f"fig_{index:02d}" for index in range(self.figures)]


def step(name: str, *, deps=(), values=(), outs=(), dir_outs=(), metrics=(), plots=(), tool=STEP) -> str:
    """The command line of one stage."""
    parts = ["python", tool, "--name", name]
    for flag, items in (
        ("--dep", deps),
        ("--value", values),
        ("--out", outs),
        ("--dir-out", dir_outs),
        ("--metric", metrics),
        ("--plot", plots),
    ):
        for item in items:
            parts += [flag, item]
    return " ".join(parts)


def stage(cmd: Any, deps=(), params=(), outs=(), metrics=(), plots=()) -> dict[str, Any]:
    """One dvc.yaml stage body (only the keys that are used)."""
    body: dict[str, Any] = {"cmd": cmd, "deps": [STEP, *deps]}
    if params:
        body["params"] = list(params)
    if outs:
        body["outs"] = list(outs)
    if metrics:
        body["metrics"] = [{path: {"cache": False}} for path in metrics]
    if plots:
        body["plots"] = list(plots)
    return body


def difficulty(human_run_files: int = 20) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"patch": {"threshold": 0.3}, "difficulty": {"bins": 8}}
    pipeline = {
        "vars": ["config.yaml", "../params.common.yaml", {"raw": "../data/raw"}],
        "stages": {
            "fetch_baselines": stage(
                step("fetch_baselines", deps=["${raw}/tasks"], outs=["data/raw/baselines.json"]),
                deps=["${raw}/tasks"],
                outs=["data/raw/baselines.json"],
            ),
            "patch_baselines": stage(
                step(
                    "patch_baselines",
                    deps=["data/raw/baselines.json"],
                    values=["threshold=${patch.threshold}", "seed=${common.seed}"],
                    outs=["data/interim/baselines_patched.json"],
                ),
                deps=["data/raw/baselines.json"],
                params=["patch.threshold", {"../params.common.yaml": ["common.seed"]}],
                outs=["data/interim/baselines_patched.json"],
            ),
            # The first command cds away; the second must start in the wdir again.
            "compile_manifests": stage(
                [
                    "cd ${raw} && "
                    + step(
                        "checkout_tasks",
                        tool="../../tools/step.py",
                        deps=["tasks"],
                        values=["repo=${manifest.repo}"],
                        outs=["../../difficulty/data/interim/checkout.json"],
                    ),
                    step(
                        "compile_manifests",
                        deps=["data/interim/checkout.json"],
                        values=["version=${manifest.version}"],
                        outs=["data/processed/valid_set.json"],
                    ),
                ],
                deps=["${raw}/tasks"],
                outs=["data/interim/checkout.json", "data/processed/valid_set.json"],
            ),
            "compute_task_difficulty": stage(
                step(
                    "compute_task_difficulty",
                    deps=["data/processed/valid_set.json", "data/interim/baselines_patched.json", "${raw}/runs"],
                    values=["bins=${difficulty.bins}"],
                    outs=["data/processed/difficulty.json"],
                    metrics=["metrics/difficulty.json"],
                ),
                deps=["data/processed/valid_set.json", "data/interim/baselines_patched.json", "${raw}/runs"],
                params=["difficulty.bins"],
                outs=["data/processed/difficulty.json"],
                metrics=["metrics/difficulty.json"],
            ),
            "compile_human_run_data": stage(
                step(
                    "compile_human_run_data",
                    deps=["data/processed/valid_set.json", "${raw}/runs"],
                    dir_outs=[f"data/processed/human_runs:{human_run_files}"],
                    plots=["plots/human_time.csv"],
                ),
                deps=["data/processed/valid_set.json", "${raw}/runs"],
                outs=["data/processed/human_runs"],
                plots=["plots/human_time.csv"],
            ),
        },
    }
    return pipeline, params


def base() -> tuple[dict[str, Any], dict[str, Any]]:
    params = {
        "datasets": {
            "legacy": {"weight": 0.5, "cutoff": 2023},
            "current": {"weight": 1.0, "cutoff": 2025},
            "public": {"weight": 0.25, "cutoff": 2024},
        },
        "normalize": {"bins": 10},
    }
    runs = "../data/raw/runs"
    fetch = {
        f"fetch_agent_runs_{source}": stage(
            step(f"fetch_agent_runs_{source}", deps=[runs], outs=[f"data/raw/{source}.json"]),
            deps=[runs],
            outs=[f"data/raw/{source}.json"],
        )
        for source in ("vivaria", "warehouse")
    }
    per_dataset = {
        "merge_data": stage(
            step(
                "merge_data-${key}",
                deps=["data/interim/all_runs.json", "../difficulty/data/processed/difficulty.json"],
                values=["weight=${item.weight}"],
                outs=["data/interim/merged_${key}.json"],
            ),
            deps=["data/interim/all_runs.json", "../difficulty/data/processed/difficulty.json"],
            params=["datasets.${key}.weight"],
            outs=["data/interim/merged_${key}.json"],
        ),
        "normalize_and_bin_scores": stage(
            step(
                "normalize-${key}",
                deps=["data/interim/merged_${key}.json"],
                values=["bins=${normalize.bins}"],
                outs=["data/interim/normalized_${key}.json"],
            ),
            deps=["data/interim/merged_${key}.json"],
            params=["normalize.bins"],
            outs=["data/interim/normalized_${key}.json"],
        ),
        "zero_out_cheating_runs": stage(
            step(
                "zero_out-${key}",
                deps=["data/interim/normalized_${key}.json"],
                values=["cutoff=${item.cutoff}"],
                outs=["data/interim/clean_${key}.json"],
            ),
            deps=["data/interim/normalized_${key}.json"],
            params=["datasets.${key}.cutoff"],
            outs=["data/interim/clean_${key}.json"],
        ),
        "fake_gpt2_data": stage(
            step(
                "fake_gpt2-${key}",
                deps=["data/interim/clean_${key}.json"],
                outs=["data/processed/runs_${key}.json"],
                metrics=["metrics/${key}.json"],
            ),
            deps=["data/interim/clean_${key}.json"],
            outs=["data/processed/runs_${key}.json"],
            metrics=["metrics/${key}.json"],
        ),
    }
    stages: dict[str, Any] = dict(fetch)
    stages["format_and_filter_agent_runs"] = stage(
        step(
            "format_and_filter_agent_runs",
            deps=["data/raw/vivaria.json", "data/raw/warehouse.json"],
            values=["threshold=${common.threshold}"],
            outs=["data/interim/all_runs.json"],
        ),
        deps=["data/raw/vivaria.json", "data/raw/warehouse.json"],
        params=[{"../params.common.yaml": ["common.threshold"]}],
        outs=["data/interim/all_runs.json"],
    )
    for name, body in per_dataset.items():
        stages[name] = {"foreach": "${datasets}", "do": body}
    return {"vars": ["../params.common.yaml"], "stages": stages}, params


def horizon(shape: Shape) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    params = {"bootstrap": {"n_samples": 100}, "logistic": {"regularization": 0.01}, "trend": {"degree": 2}}
    config = {"benchmarks": shape.benchmark_names(), "quantiles": list(QUANTILES)}
    runs = "../data/raw/runs"
    pipeline = {
        "vars": ["config/benchmarks.yaml", {"plot": {"format": "csv"}}],
        "stages": {
            "fetch_swe_bench_runs": stage(
                step("fetch_swe_bench_runs", deps=[runs], outs=["data/raw/swe_bench_runs.json"]),
                deps=[runs],
                outs=["data/raw/swe_bench_runs.json"],
            ),
            "wrangle_bootstrap_logistic": {
                "foreach": "${benchmarks}",
                "do": stage(
                    step(
                        "wrangle_bootstrap-${item}",
                        deps=["../base/data/processed/runs_current.json", "data/raw/swe_bench_runs.json", runs],
                        values=["n=${bootstrap.n_samples}"],
                        outs=["data/wrangled/bootstrap_${item}.json"],
                    ),
                    deps=["../base/data/processed/runs_current.json", "data/raw/swe_bench_runs.json", runs],
                    params=["bootstrap.n_samples"],
                    outs=["data/wrangled/bootstrap_${item}.json"],
                ),
            },
            "wrangle_logistic_regression": {
                "foreach": "${benchmarks}",
                "do": stage(
                    step(
                        "wrangle_logistic-${item}",
                        deps=["../base/data/processed/runs_legacy.json", "../difficulty/data/processed/difficulty.json"],
                        values=["reg=${logistic.regularization}"],
                        outs=["data/wrangled/logistic_${item}.json"],
                    ),
                    deps=["../base/data/processed/runs_legacy.json", "../difficulty/data/processed/difficulty.json"],
                    params=["logistic.regularization"],
                    outs=["data/wrangled/logistic_${item}.json"],
                ),
            },
            "bootstrap_ci": {
                "matrix": {"benchmark": "${benchmarks}", "quantile": "${quantiles}"},
                **stage(
                    step(
                        "bootstrap_ci-${item.benchmark}-${item.quantile}",
                        deps=["data/wrangled/bootstrap_${item.benchmark}.json"],
                        outs=["data/bootstrap/${item.benchmark}-${item.quantile}.json"],
                    ),
                    deps=["data/wrangled/bootstrap_${item.benchmark}.json"],
                    outs=["data/bootstrap/${item.benchmark}-${item.quantile}.json"],
                ),
            },
            "plot": {
                "matrix": {"benchmark": "${benchmarks}", "quantile": "${quantiles}"},
                **stage(
                    step(
                        "plot-${item.benchmark}-${item.quantile}",
                        deps=[
                            "data/bootstrap/${item.benchmark}-${item.quantile}.json",
                            "data/wrangled/logistic_${item.benchmark}.json",
                        ],
                        plots=["plots/${item.benchmark}-${item.quantile}.${plot.format}"],
                    ),
                    deps=[
                        "data/bootstrap/${item.benchmark}-${item.quantile}.json",
                        "data/wrangled/logistic_${item.benchmark}.json",
                    ],
                    plots=["plots/${item.benchmark}-${item.quantile}.${plot.format}"],
                ),
            },
            # A dep on a directory holding the outs of every bootstrap_ci stage.
            "summarize": stage(
                step("summarize", deps=["data/bootstrap"], outs=["data/summary.json"], metrics=["metrics/summary.json"]),
                deps=["data/bootstrap"],
                outs=["data/summary.json"],
                metrics=["metrics/summary.json"],
            ),
            "fit_horizon_trend": stage(
                step("fit_horizon_trend", deps=["data/summary.json"], values=["degree=${trend.degree}"], outs=["data/trend.json"]),
                deps=["data/summary.json"],
                params=["trend.degree"],
                outs=["data/trend.json"],
            ),
            "report": stage(
                step("report", deps=["data/trend.json", "data/wrangled"], dir_outs=["reports:12"]),
                deps=["data/trend.json", "data/wrangled"],
                outs=["reports"],
            ),
        },
    }
    return pipeline, params, config


def ga_paper(shape: Shape) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"figures": {name: {"dpi": 150, "kind": "bar" if index % 2 else "line"} for index, name in enumerate(shape.figure_names())}}
    pipeline = {
        "stages": {
            "plot_action_counts": stage(
                step("plot_action_counts", deps=["../base/data/processed/runs_current.json"], plots=["plots/action_counts.csv"]),
                deps=["../base/data/processed/runs_current.json"],
                plots=["plots/action_counts.csv"],
            ),
            "render_figure": {
                "foreach": "${figures}",
                "do": stage(
                    step(
                        "render_figure-${key}",
                        deps=["../horizon/reports", "../horizon/metrics/summary.json"],
                        values=["dpi=${item.dpi}", "kind=${item.kind}"],
                        outs=["figures/${key}.json"],
                    ),
                    deps=["../horizon/reports", "../horizon/metrics/summary.json"],
                    params=["figures.${key}.dpi"],
                    outs=["figures/${key}.json"],
                ),
            },
            "compile_tables": stage(
                step("compile_tables", deps=["../horizon/data/wrangled", "../base/metrics"], metrics=["tables/metrics.json"]),
                deps=["../horizon/data/wrangled", "../base/metrics"],
                metrics=["tables/metrics.json"],
            ),
            "make_paper": stage(
                step("make_paper", deps=["figures", "tables/metrics.json"], outs=["paper/paper.json"]),
                deps=["figures", "tables/metrics.json"],
                outs=["paper/paper.json"],
            ),
        }
    }
    return pipeline, params


def dump_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096))


def generate(root: Path, shape: Shape) -> None:
    """Write a complete workspace for ``shape`` into the empty directory ``root``."""
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"refusing to generate into non-empty directory {root}")
    root.mkdir(parents=True, exist_ok=True)
    tools = root / "tools"
    tools.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("step_script.py"), tools / "step.py")
    dump_yaml(root / "params.common.yaml", {"common": {"seed": 42, "threshold": 0.25, "bins": 10}})
    runs = root / "data" / "raw" / "runs"
    runs.mkdir(parents=True)
    for index in range(shape.run_files):
        record = {"run": index, "task": f"task_{index % 200:03d}", "score": (index * 7919) % 1000 / 1000}
        (runs / f"run_{index:05d}.json").write_text(json.dumps(record) + "\n")
    tasks = root / "data" / "raw" / "tasks"
    tasks.mkdir(parents=True)
    for index in range(200):
        (tasks / f"task_{index:03d}.json").write_text(json.dumps({"task": index, "minutes": 2 ** (index % 12)}) + "\n")

    pipeline, params = difficulty(shape.human_run_files)
    dump_yaml(root / "difficulty" / "dvc.yaml", pipeline)
    dump_yaml(root / "difficulty" / "params.yaml", params)
    dump_yaml(root / "difficulty" / "config.yaml", {"manifest": {"repo": "tasks", "version": "v3"}})

    pipeline, params = base()
    dump_yaml(root / "base" / "dvc.yaml", pipeline)
    dump_yaml(root / "base" / "params.yaml", params)

    pipeline, params, config = horizon(shape)
    dump_yaml(root / "horizon" / "dvc.yaml", pipeline)
    dump_yaml(root / "horizon" / "params.yaml", params)
    dump_yaml(root / "horizon" / "config" / "benchmarks.yaml", config)

    pipeline, params = ga_paper(shape)
    dump_yaml(root / "ga_paper" / "dvc.yaml", pipeline)
    dump_yaml(root / "ga_paper" / "params.yaml", params)


def touch_param(root: Path, value: int) -> None:
    """Set the one param only ``render_figure@fig_00`` reads to ``value``."""
    path = root / TOUCH_PARAMS_FILE
    params = yaml.safe_load(path.read_text())
    params["figures"]["fig_00"]["dpi"] = value
    dump_yaml(path, params)


# -- a Snakemake-shaped wildcard workflow --------------------------------------

WILDCARD_PIVOTFILE = '''\
# {samples} samples: count/{{s}} <- data/{{s}}.csv, norm/{{s}} <- count/{{s}}, one
# summary over all of them ({jobs} jobs).  Snakemake reads the same text.
SAMPLES = [{names}]

rule summary:
    input: expand("norm/{{s}}", s=SAMPLES)
    output: "summary.txt"
    shell: "cat {{input}} > {{output}}"

rule count:
    input: "data/{{s}}.csv"
    output: "count/{{s}}"
    shell: "wc -l < {{input}} > {{output}}"

rule norm:
    input: "count/{{s}}"
    output: "norm/{{s}}"
    shell: "tr -d ' ' < {{input}} > {{output}}"
'''


def wildcard_jobs(samples: int) -> int:
    """Jobs of :func:`generate_wildcard` for ``samples`` samples."""
    return 2 * samples + 1


def generate_wildcard(root: Path, samples: int, *, filename: str = "Pivotfile") -> None:
    """The wildcard workflow of issue 16 with ``samples`` samples
    (``2 * samples + 1`` jobs), written as ``filename`` (``Snakefile`` for
    Snakemake: the text is the same) with one small CSV per sample."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"s{i:06d}" for i in range(samples)]
    data = root / "data"
    data.mkdir(exist_ok=True)
    for name in names:
        (data / f"{name}.csv").write_text(f"id,value\n{name},1\n")
    text = WILDCARD_PIVOTFILE.format(
        samples=f"{samples:,}", jobs=f"{wildcard_jobs(samples):,}",
        names=", ".join(f'"{name}"' for name in names),
    )
    (root / filename).write_text(text)
