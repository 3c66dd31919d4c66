"""Shared by the emit tests: an example pipeline with awkward paths, and a
view of a workspace (files and lock records) to compare runs with."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

NINJA = os.path.join(__import__("ninja").BIN_DIR, "ninja")

# Files every run produces that are not stage results.
NOT_RESULTS = {"build.ninja", ".ninja_log", ".ninja_deps", "plan.sh"}

DVC_YAML = """\
stages:
  prep:
    cmd:
      - cd "my data" && cat 'in put.txt' > ../'up$per.txt'
      - tr a-z A-Z < 'up$per.txt' > "it's.txt"
    deps: [my data/in put.txt]
    outs: [up$per.txt, it's.txt]
  count:
    cmd: mkdir counts && ls corpus | sort > counts/listing.txt; cat corpus/*.txt | wc -c >> counts/listing.txt
    deps: [corpus]
    outs: [counts]
  train:
    cmd: cat "it's.txt" counts/listing.txt > model.txt && echo "lr=${lr}" >> model.txt
    params: [lr]
    deps: [it's.txt, counts]
    outs: [model.txt]
"""

SUB_DVC_YAML = """\
stages:
  report:
    wdir: ..
    cmd:
      - echo "$PIVOT_STAGE $DVC_STAGE" > sub/report.txt
      - cat model.txt >> sub/report.txt
    deps: [model.txt]
    params:
      - sub/params.yaml:
    outs: [sub/report.txt]
"""


def write_example(ws) -> None:
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("params.yaml", "lr: 0.1\nother: 1\n")
    ws.write("my data/in put.txt", "hello\n")
    ws.write("corpus/a.txt", "aaa\n")
    ws.write("corpus/b.txt", "bb\n")
    ws.write("sub/dvc.yaml", SUB_DVC_YAML)
    ws.write("sub/params.yaml", "title: t\n")


def results(root: Path) -> dict[str, object]:
    """Every file outside .pivot (content), plus the lock records."""
    view: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".pivot") or path.is_dir() or rel in NOT_RESULTS:
            continue
        view[rel] = path.read_bytes()
    for lock in sorted((root / ".pivot" / "locks").rglob("*.json")):
        view[f"lock:{lock.name}"] = json.loads(lock.read_text())
    return view


def scrub(text: str, root: Path) -> str:
    """Emitted text without the machine-specific parts, for snapshots."""
    return text.replace(sys.executable, "<python>").replace(str(root), "<root>")
