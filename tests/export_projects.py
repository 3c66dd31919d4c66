"""Realistic projects for the export round-trip tests, written on demand.

Each is shaped like a public DVC (or Snakemake-style) project: raw data
tracked outside git (absent until pulled), foreach and matrix over hundreds
of items, wdir, params files in subdirectories, several pipeline files, and
every out flag.  ``write(root)`` lays a project out; ``raw`` lists the files
``dvc pull`` would bring, which the tests create or leave out.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Project:
    name: str
    files: dict[str, str]  # relpath -> text, always present (code, params, pipelines)
    raw: tuple[str, ...]  # relpaths of data a fresh clone lacks

    def write(self, root: Path, *, with_data: bool) -> None:
        for relpath, text in self.files.items():
            _write(root / relpath, text)
        if with_data:
            for relpath in self.raw:
                _write(root / relpath, f"raw {relpath}\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def get_started() -> Project:
    """iterative/example-get-started: one root dvc.yaml, data/data.xml pulled
    by `dvc pull`, plots with x/y properties, top-level metrics and plots."""
    pipeline = _dedent("""
        stages:
          prepare:
            cmd: python src/prepare.py data/data.xml
            deps:
            - data/data.xml
            - src/prepare.py
            params:
            - prepare.seed
            - prepare.split
            outs:
            - data/prepared
          featurize:
            cmd: python src/featurization.py data/prepared data/features
            deps:
            - data/prepared
            - src/featurization.py
            params:
            - featurize.max_features
            - featurize.ngrams
            outs:
            - data/features
          train:
            cmd: python src/train.py data/features model.pkl
            deps:
            - data/features
            - src/train.py
            params:
            - train.seed
            - train.n_est
            - train.min_split
            outs:
            - model.pkl
          evaluate:
            cmd: python src/evaluate.py model.pkl data/features
            deps:
            - data/features
            - model.pkl
            - src/evaluate.py
            outs:
            - eval/importance.png
            metrics:
            - eval/metrics.json:
                cache: false
            plots:
            - eval/plots/sklearn/roc/train.json:
                cache: false
                x: fpr
                y: tpr
            - eval/prc:
                cache: false
        metrics:
        - eval/metrics.json
        plots:
        - ROC:
            template: simple
            x: fpr
            y:
              eval/plots/sklearn/roc/train.json: tpr
    """)
    params = _dedent("""
        prepare:
          split: 0.20
          seed: 20170428
        featurize:
          max_features: 100
          ngrams: 1
        train:
          seed: 20170428
          n_est: 50
          min_split: 0.01
    """)
    files = {"dvc.yaml": pipeline, "params.yaml": params, "data/data.xml.dvc": "outs:\n- md5: 0\n  path: data.xml\n"}
    files.update({f"src/{name}.py": "" for name in ("prepare", "featurization", "train", "evaluate")})
    return Project("get_started", files, ("data/data.xml",))


SHARDS = 300
LANGS = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "fi", "da", "cs", "ro", "hu", "el", "bg", "hr", "sk", "sl", "lt")


def fanout() -> Project:
    """A corpus pipeline: foreach over 300 shards (raw shards not pulled), a
    3 x 20 matrix, foreach over a params dict and over a list of dicts,
    interpolated params keys, a stage reading the directory of shard outputs."""
    shards = [f"shard_{i:03d}" for i in range(SHARDS)]
    config = "shards:\n" + "".join(f"- {s}\n" for s in shards) + "langs: [" + ", ".join(LANGS) + "]\n"
    pipeline = _dedent("""
        vars:
        - config/corpus.yaml
        - eval_sets:
          - name: dev
            size: 1000
          - name: test
            size: 5000
        stages:
          clean:
            foreach: ${shards}
            do:
              cmd: python scripts/clean.py raw/${item}.jsonl.gz clean/${item}.jsonl
              deps:
              - raw/${item}.jsonl.gz
              - scripts/clean.py
              outs:
              - clean/${item}.jsonl
          vocab:
            cmd: python scripts/vocab.py clean vocab.txt --min-count ${train.min_count}
            deps:
            - clean
            - scripts/vocab.py
            params:
            - train.min_count
            outs:
            - vocab.txt
          train:
            matrix:
              model: [small, base, large]
              lang: ${langs}
            cmd: >-
              python scripts/train.py --model ${item.model} --lang ${item.lang}
              --lr ${train.lr} --out models/${item.model}/${item.lang}
            deps:
            - vocab.txt
            - scripts/train.py
            params:
            - train.lr
            - config/models.yaml:
              - ${item.model}.layers
              - ${item.model}.hidden
            outs:
            - models/${item.model}/${item.lang}:
                persist: true
            metrics:
            - metrics/${item.model}-${item.lang}.json:
                cache: false
          finetune:
            foreach: ${datasets}
            do:
              cmd: python scripts/finetune.py ${key} --epochs ${item.epochs} --bs ${item.batch}
              deps:
              - models/base/en
              - data/${key}
              params:
              - datasets.${key}
              outs:
              - finetuned/${key}.bin
              plots:
              - plots/${key}/loss.csv
          evaluate:
            foreach: ${eval_sets}
            do:
              cmd: python scripts/evaluate.py --split ${item.name} --n ${item.size}
              deps:
              - finetuned
              outs:
              - eval/${item.name}.json:
                  cache: false
                  persist: true
    """)
    params = _dedent("""
        train:
          lr: 0.0003
          min_count: 5
        datasets:
          squad:
            epochs: 3
            batch: 32
          glue-mnli:
            epochs: 2
            batch: 64
          "1e3":
            epochs: 1
            batch: 8
    """)
    models = "".join(f"{m}:\n  layers: {n}\n  hidden: {n * 64}\n" for m, n in (("small", 4), ("base", 12), ("large", 24)))
    files = {"dvc.yaml": pipeline, "params.yaml": params, "config/corpus.yaml": config, "config/models.yaml": models}
    files.update({f"scripts/{n}.py": "" for n in ("clean", "vocab", "train", "finetune", "evaluate")})
    raw = [f"raw/{s}.jsonl.gz" for s in shards] + [f"data/{d}/part-0" for d in ("squad", "glue-mnli", "1e3")]
    return Project("fanout", files, tuple(raw))


def monorepo() -> Project:
    """Several pipeline files: a root dvc.yaml with a frozen import and an
    always-changed stage, pipelines in subdirectories with wdir, params files
    in subdirectories (keys, whole files), command lists, a multi-line
    command, shell braces, ``$HOME`` and an escaped ``\\${``."""
    root = _dedent("""
        stages:
          import_raw:
            cmd: ./scripts/fetch.sh s3://bucket/raw data/raw
            deps:
            - scripts/fetch.sh
            outs:
            - data/raw
            frozen: true
          version:
            cmd: git describe --always > version.txt
            outs:
            - version.txt:
                cache: false
            always_changed: true
            desc: |-
              Record the code version.
              Always runs.
    """)
    ingest = _dedent("""
        vars:
        - params.yaml
        stages:
          split:
            wdir: ../..
            cmd:
            - mkdir -p data/split
            - python pipelines/ingest/split.py --ratio ${ingest.ratio} data/raw data/split
            deps:
            - data/raw
            - pipelines/ingest/split.py
            params:
            - pipelines/ingest/params.yaml:
              - ingest.ratio
            outs:
            - data/split
          tokenize:
            foreach:
            - train
            - valid
            do:
              wdir: ../..
              cmd: "awk '{print $1}' data/split/${item}.tsv | sort > data/tokens/${item}.txt"
              deps:
              - data/split
              outs:
              - data/tokens/${item}.txt
    """)
    ingest_params = "ingest:\n  ratio: 0.9\n  unused: 1\n"
    train = _dedent("""
        stages:
          train:
            cmd: |
              echo "training on $HOME" \\${NOT_INTERPOLATED}
              python train.py --epochs ${epochs} ../../data/tokens
            deps:
            - ../../data/tokens
            - train.py
            params:
            - epochs
            - train.optimizer
            - ../../configs/model.yaml:
              - model
            - ../../configs/hparams.json:
            outs:
            - checkpoints:
                persist: true
            - logs/:
                cache: false
            metrics:
            - metrics.json:
                cache: false
            plots:
            - plots/loss.csv
            meta:
              owner: ml-team
          export:
            cmd: python export.py checkpoints model.onnx
            deps:
            - checkpoints
            - export.py
            outs:
            - model.onnx
    """)
    train_params = "epochs: 10\ntrain:\n  optimizer: adam\n"
    reports = _dedent("""
        stages:
          report:
            wdir: ..
            cmd: python reports/make.py pipelines/train/metrics.json > reports/index.html
            deps:
            - pipelines/train/metrics.json
            - reports/make.py
            - version.txt
            outs:
            - reports/index.html
    """)
    files = {
        "dvc.yaml": root,
        "scripts/fetch.sh": "",
        "pipelines/ingest/dvc.yaml": ingest,
        "pipelines/ingest/params.yaml": ingest_params,
        "pipelines/ingest/split.py": "",
        "pipelines/train/dvc.yaml": train,
        "pipelines/train/params.yaml": train_params,
        "pipelines/train/train.py": "",
        "pipelines/train/export.py": "",
        "configs/model.yaml": "model:\n  depth: 3\n",
        "configs/hparams.json": '{"dropout": 0.1}\n',
        "reports/dvc.yaml": reports,
        "reports/make.py": "",
    }
    return Project("monorepo", files, ("data/raw/part-0.csv",))


SAMPLES = 250


def snakemake_style() -> Project:
    """A native Pivotfile: wildcard rules over 250 samples whose reads are
    not pulled, an included rules file, configfile, params in a subdirectory,
    every output marker, and a second Pivotfile in a subdirectory."""
    samples = ", ".join(f'"s{i:03d}"' for i in range(SAMPLES))
    pivotfile = _dedent(f"""
        configfile: "config/config.yaml"
        include: "rules/qc.pf"
        SAMPLES = [{samples}]

        rule all:
            input:
                expand("counts/{{sample}}.tsv", sample=SAMPLES),
                "report/html"

        rule align:
            input: reads="reads/{{sample}}.fastq.gz", ref="ref/genome.fa"
            output: "aligned/{{sample}}.bam", log=nocache("logs/align/{{sample}}.log")
            params: "config/tools.yaml:align.threads"
            shell: "bwa mem -t {{config.align.threads}} {{input.ref}} {{input.reads}} > {{output[0]}} 2> {{output.log}}"

        rule count:
            input: "aligned/{{sample}}.bam", "annot/genes.gtf"
            output: "counts/{{sample}}.tsv"
            shell:
                "featureCounts -a {{input[1]}} -o {{output}} {{input[0]}}"
                "awk '{{{{print $1}}}}' {{output}} | head"

        rule summary:
            input: expand("counts/{{sample}}.tsv", sample=SAMPLES), expand("qc/{{sample}}.json", sample=SAMPLES)
            output:
                directory("report/html"),
                metric(nocache("report/summary.json")),
                persist("history.csv"),
                plot("report/depth.csv"),
            params: "report.title", "config/tools.yaml:"
            desc: "Summary of every sample"
            shell: "python scripts/summary.py {{input}} --html {{output[0]}}"

        rule freeze_ref:
            output: "ref/genome.fa"
            shell: "curl -L https://example.org/genome.fa > {{output}}"
            frozen: true

        rule stamp:
            output: nocache("stamp.txt")
            shell: "date > {{output}}"
            always_changed: true
    """)
    qc = _dedent("""
        rule qc:
            input: "../reads/{sample}.fastq.gz"
            output: "../qc/{sample}.json"
            wdir: "../qc"
            shell: "fastqc --json {input} > {output}"
    """)
    sub = _dedent("""
        rule figures:
            input: "../report/summary.json", "plot.py"
            output: "figures/summary.png"
            params: "fig.dpi"
            shell: "python plot.py {input[0]} {output}"
    """)
    files = {
        "Pivotfile": pivotfile,
        "rules/qc.pf": qc,
        "config/config.yaml": "align:\n  threads: 8\n",
        "config/tools.yaml": "align:\n  threads: 8\n",
        "params.yaml": "report:\n  title: RNA-seq\n",
        "scripts/summary.py": "",
        "annot/genes.gtf": "",
        "paper/Pivotfile": sub,
        "paper/params.yaml": "fig:\n  dpi: 300\n",
        "paper/plot.py": "",
    }
    raw = [f"reads/s{i:03d}.fastq.gz" for i in range(SAMPLES)]
    return Project("snakemake_style", files, tuple(raw))


PROJECTS: dict[str, Callable[[], Project]] = {
    "get_started": get_started,
    "fanout": fanout,
    "monorepo": monorepo,
    "snakemake_style": snakemake_style,
}
