#!/usr/bin/env python3
"""Record what real DVC prints for params/metrics commands on the eval project.

tests/fixtures/evalproj/project is a small evaluation pipeline (a params
file at the root and one in ``eval/``, two stages writing nested JSON and
YAML metrics); steps.json lists edits, runs, commits and the commands to
record after each step.  This script replays the steps with DVC in a git
repository (``dvc repro`` for a run) and writes expected.json::

    {"dvc_version": ...,
     "steps": [{"name": ..., "commands": [{"argv": [...], "stdout": ..., "stderr": ...,
                                           "returncode": ...}],
                "api": [{"call": {...}, "result": ... | "error": ...}],
                "seen": {"seen/train.json": ...}}]}

``seen`` holds what the stage scripts got from ``dvc.api.params_show`` (the
shim in src/params_shim.py falls back to it when pivot is not installed).

It also asks ``dvc.api.params_show()`` (no arguments, and ``deps=True``) on
every loadable case of tests/dvc_corpus and writes the answers to
tests/fixtures/params_show_corpus.json.
DVC stays out of pivot's dependencies: run this with a scratch venv.

Usage: scripts/regen_params_metrics.py [--dvc /tmp/dvcenv/bin/dvc] [--only evalproj|corpus]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
FIXTURE = TESTS / "fixtures" / "evalproj"
CORPUS = TESTS / "dvc_corpus"
CORPUS_EXPECTED = TESTS / "fixtures" / "params_show_corpus.json"
CORPUS_META = {"case.json", "dvc-config", "expected.json"}
CORPUS_CALLS = [{"args": [], "kwargs": {}}, {"args": [], "kwargs": {"deps": True}}]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SEEN = ("seen/train.json", "seen/evaluate.json")

# Runs inside DVC's interpreter: one params_show call, printed as JSON.
API_CALL = r'''
import json, sys
import dvc.api
call = json.loads(sys.argv[1])
try:
    print(json.dumps({"result": dvc.api.params_show(*call["args"], **call["kwargs"])}))
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
'''


def git(work: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)


def record_step(work: Path, step: dict, dvc: Path, env: dict[str, str]) -> dict:
    for relpath, text in step.get("edit", {}).items():
        path = work / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for relpath in step.get("delete", []):
        (work / relpath).unlink()
    result: dict = {"name": step["name"]}
    if step.get("run"):
        subprocess.run([str(dvc), "repro", "-q"], cwd=work, check=True, env=env)
        result["seen"] = {p: json.loads((work / p).read_text()) for p in SEEN}
    if step.get("commit"):
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", step["name"])
    result["commands"] = []
    for argv in step.get("commands", []):
        proc = subprocess.run([str(dvc), *argv], cwd=work, capture_output=True, text=True, env=env)
        result["commands"].append({
            "argv": argv,
            "stdout": ANSI.sub("", proc.stdout),
            "stderr": ANSI.sub("", proc.stderr),
            "returncode": proc.returncode,
        })
    result["api"] = []
    for call in step.get("api", []):
        proc = subprocess.run(
            [str(dvc.parent / "python"), "-c", API_CALL, json.dumps(call)],
            cwd=work / call.get("cwd", "."), capture_output=True, text=True, env=env, check=True,
        )
        result["api"].append({"call": call, **json.loads(proc.stdout.strip().splitlines()[-1])})
    return result


def record_corpus(dvc: Path, env: dict[str, str]) -> None:
    """params_show on every corpus case DVC loads (error cases are skipped)."""
    recorded: dict[str, list] = {}
    for case in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        if "error" in json.loads((case / "expected.json").read_text()):
            continue
        with tempfile.TemporaryDirectory(prefix="dvc-corpus-params-") as tmp:
            work = Path(tmp) / "ws"
            shutil.copytree(case, work, ignore=lambda d, names: [n for n in names if n in CORPUS_META])
            subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=work, check=True, env=env)
            if (case / "dvc-config").exists():
                with open(work / ".dvc" / "config", "a") as handle:
                    handle.write((case / "dvc-config").read_text())
            answers = []
            for call in CORPUS_CALLS:
                proc = subprocess.run([str(dvc.parent / "python"), "-c", API_CALL, json.dumps(call)],
                                      cwd=work, capture_output=True, text=True, env=env, check=True)
                answers.append({"call": call, **json.loads(proc.stdout.strip().splitlines()[-1])})
        recorded[case.name] = answers
        print(f"ok   corpus {case.name}", file=sys.stderr)
    CORPUS_EXPECTED.write_text(json.dumps({"cases": recorded}, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", type=Path, default=Path("/tmp/dvcenv/bin/dvc"))
    parser.add_argument("--only", choices=("evalproj", "corpus"))
    args = parser.parse_args()
    steps = json.loads((FIXTURE / "steps.json").read_text())
    # python3 in stage commands must be DVC's interpreter (no pivot there: the shim uses dvc.api)
    env = dict(os.environ, PATH=f"{args.dvc.parent}{os.pathsep}{os.environ['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", DVC_NO_ANALYTICS="1")
    os.environ.update(env)
    if args.only != "evalproj":
        record_corpus(args.dvc, env)
    if args.only == "corpus":
        return 0
    version = subprocess.run([str(args.dvc), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="dvc-evalproj-") as tmp:
        work = Path(tmp) / "ws"
        shutil.copytree(FIXTURE / "project", work)
        git(work, "init", "-q")
        subprocess.run([str(args.dvc), "init", "-q"], cwd=work, check=True, env=env)
        subprocess.run([str(args.dvc), "config", "core.autostage", "false"], cwd=work, check=True, env=env)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "init")
        recorded = []
        for step in steps:
            recorded.append(record_step(work, step, args.dvc, env))
            print(f"ok   {step['name']}: {len(recorded[-1]['commands'])} commands", file=sys.stderr)
    expected = {"dvc_version": version, "steps": recorded}
    (FIXTURE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
