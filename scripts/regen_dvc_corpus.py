#!/usr/bin/env python3
"""Regenerate tests/dvc_corpus/*/expected.json from a real DVC.

Each case directory holds workspace files (dvc.yaml, params.yaml, ...).
Optional extras, never copied into the workspace:
  case.json    {"phrases": [...]}: for error cases, the key phrases pivot's
               message must contain; each must also occur in DVC's message.
  dvc-config   appended to .dvc/config after ``dvc init``.

For every case this copies the workspace to a temporary directory, runs
``dvc init --no-scm`` and asks DVC (through its Python API, with the
interpreter next to the dvc executable) for the resolved stages, or the
error.  expected.json has the shape of ``pivot list --json``, or
``{"error": <DVC's message>, "phrases": [...]}``.

Usage: scripts/regen_dvc_corpus.py [--dvc /work/dvcenv/bin/dvc] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "dvc_corpus"
META_FILES = {"case.json", "dvc-config", "expected.json"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Runs inside DVC's interpreter; prints one JSON document.
EXTRACT = r'''
import json, os, sys
from dvc.repo import Repo
from dvc.dependency.param import ParamsDependency
from dvc.stage import PipelineStage

root = os.getcwd()

def rel(path):
    return os.path.relpath(path, root).replace(os.sep, "/")

def path_of(item):
    # a URL dep or out (https://, s3://, remote://...) is kept as written
    if type(item.fs).__name__ != "LocalFileSystem":
        return str(item.def_path)
    return rel(item.fs_path)

def kind(out):
    if out.metric:
        return "metric"
    if out.plot:
        return "plot"
    return "out"

try:
    repo = Repo(root)
    stages = [s for s in repo.index.stages if isinstance(s, PipelineStage)]
    repo.index.graph  # duplicate/overlapping outputs, cycles
    result = []
    for s in stages:
        cmd = s.cmd if isinstance(s.cmd, list) else s.cmd.splitlines()
        result.append({
            "address": s.addressing,
            "name": s.name,
            "file": rel(s.path),
            "wdir": rel(s.wdir),
            "cmd": [str(c) for c in cmd],
            "deps": [path_of(d) for d in s.deps if not isinstance(d, ParamsDependency)],
            "params": {rel(p.fs_path): (list(p.params) or "*")
                       for p in s.deps if isinstance(p, ParamsDependency)},
            "outs": [{"path": path_of(o), "cache": bool(o.use_cache),
                      "persist": bool(o.persist), "kind": kind(o)} for o in s.outs],
            "frozen": bool(s.frozen),
            "always_changed": bool(s.always_changed),
        })
    print(json.dumps({"stages": result}))
except Exception as exc:  # every DVC error is a case result
    message = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in message:
        message += "\n" + str(cause)
    print(json.dumps({"error": message, "type": type(exc).__name__}))
'''


def file_order(stage: dict) -> tuple[str, ...]:
    """pivot's discovery order: top-down, sorted (DVC uses raw os.walk order)."""
    return tuple(Path(stage["file"]).parent.parts)


def run_case(case: Path, dvc: Path) -> dict:
    python = dvc.parent / "python"
    with tempfile.TemporaryDirectory(prefix="dvc-corpus-") as tmp:
        work = Path(tmp) / "ws"
        shutil.copytree(case, work, ignore=lambda d, names: [n for n in names if n in META_FILES])
        subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=work, check=True)
        config = case / "dvc-config"
        if config.exists():
            with open(work / ".dvc" / "config", "a") as handle:
                handle.write(config.read_text())
        proc = subprocess.run(
            [str(python), "-c", EXTRACT], cwd=work, capture_output=True, text=True, check=False
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{case.name}: extraction failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in result:
        result["error"] = ANSI.sub("", result["error"])
    meta = json.loads((case / "case.json").read_text()) if (case / "case.json").exists() else {}
    if "error" in result:
        phrases = meta.get("phrases", [])
        if not phrases:
            raise RuntimeError(f"{case.name}: DVC failed but case.json lists no phrases:\n{result['error']}")
        missing = [p for p in phrases if p not in result["error"]]
        if missing:
            raise RuntimeError(f"{case.name}: phrases not in DVC's message {missing}:\n{result['error']}")
        return {"error": result["error"], "phrases": phrases}
    if meta.get("phrases"):
        raise RuntimeError(f"{case.name}: expected an error, DVC loaded {len(result['stages'])} stages")
    result["stages"].sort(key=file_order)  # stable: keeps DVC's order inside a file
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", type=Path, default=Path("/work/dvcenv/bin/dvc"))
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    names = args.cases or sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    failed = 0
    for name in names:
        case = CORPUS / name
        try:
            expected = run_case(case, args.dvc)
        except RuntimeError as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            failed += 1
            continue
        (case / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
        summary = "error" if "error" in expected else f"{len(expected['stages'])} stages"
        print(f"ok   {name}: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
