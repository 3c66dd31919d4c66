"""Bring a generated eval-shaped workspace up to date quickly: every stage's
``step.py`` runs in this process, in run order (byte-identical outputs,
minutes instead of the hour ``pivot run`` spends starting 10,000 Pythons on
2 cores), then ``pivot commit`` records every stage.  Commands that are not
a plain ``python ../tools/step.py ...`` run in a shell as usual.

    python -m bench.build_inprocess WORKSPACE
"""

from __future__ import annotations

import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path


def build(root: Path) -> None:
    from pivot import targets
    from pivot.frontends import load_pipeline
    from pivot.project import Project

    os.chdir(root)
    project = Project.discover()
    pipeline = load_pipeline(project)
    stages = targets.select(pipeline, project, (), downstream=False, single_item=False)
    step = runpy.run_path(str(root / "tools" / "step.py"))["main"]
    for stage in stages:
        wdir = root / stage.wdir
        for cmd in stage.cmds:
            words = shlex.split(cmd)
            if len(words) > 2 and words[0] == "python" and words[1].endswith("tools/step.py"):
                os.chdir(wdir)
                sys.argv = words[1:]
                step()
            else:
                subprocess.run(cmd, shell=True, cwd=wdir, check=True)
    os.chdir(root)
    subprocess.run([sys.executable, "-m", "pivot", "commit"], check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    build(Path(sys.argv[1]).resolve())
