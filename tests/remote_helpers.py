"""A small multi-stage pipeline for remote tests, and a "fresh clone" of it:
what git would carry (pipeline files, deps, params, lock records, the
shared config, a cache: false metric), without caches or cached outputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import Workspace

PIPELINE = """\
    stages:
      prep:
        cmd: mkdir -p data/sub && echo "lr=${train.lr} $(od -An -N8 -tx8 /dev/urandom)" > data/a.txt && echo b > data/sub/b.sh && chmod +x data/sub/b.sh && echo prep >> runs.log
        deps: [raw.txt]
        params: [train.lr]
        outs: [data]
      train:
        cmd: "cat data/a.txt raw.txt > model.bin && echo '{\\"acc\\": 0.9}' > metrics.json && echo train >> runs.log"
        deps: [data, raw.txt]
        outs: [model.bin]
        metrics:
          - metrics.json:
              cache: false
    """

# committed to git, so a clone has them
TRACKED = ("dvc.yaml", "params.yaml", "raw.txt", "metrics.json", ".pivot/config", ".pivot/.gitignore")
CACHED_OUTPUTS = ("data/a.txt", "data/sub/b.sh", "model.bin")


def make_project(ws: Workspace) -> Workspace:
    ws.write("dvc.yaml", PIPELINE)
    ws.write("params.yaml", "train:\n  lr: 0.1\n")
    ws.write("raw.txt", "raw data\n")
    ws.pivot("run", "-j", "1")
    return ws


def clone(source: Workspace, target: Path) -> Workspace:
    target.mkdir(parents=True)
    for relpath in TRACKED:
        if (source.root / relpath).exists():
            (target / relpath).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.root / relpath, target / relpath)
    shutil.copytree(source.root / ".pivot" / "locks", target / ".pivot" / "locks")
    return Workspace(target)


def outputs(ws: Workspace) -> dict[str, tuple[bytes, bool]]:
    """Each cached output's bytes and executable bit."""
    return {
        path: ((ws.root / path).read_bytes(), os.access(ws.root / path, os.X_OK)) for path in CACHED_OUTPUTS
    }


def runs(ws: Workspace) -> list[str]:
    log = ws.root / "runs.log"
    return log.read_text().split() if log.exists() else []


def remote_objects(top: Path) -> list[Path]:
    """Finished objects under a local remote (no temporary upload names)."""
    return sorted(p for p in (top / "files" / "xxh3").glob("*/*") if ".tmp-" not in p.name)
