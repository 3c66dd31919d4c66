"""Find DVC for the comparison, or install it into a private virtualenv.

DVC is never a pivot dependency: the harness uses ``--dvc PATH``, then the
``PIVOT_BENCH_DVC`` environment variable, then ``bench/.dvcenv``, which it
creates with pip on first use.  The remote benchmark needs DVC's S3 support
(``dvc[s3]``): :func:`ensure_s3` adds it to ``bench/.dvcenv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

DVC_VERSION = "3.67.1"
PRIVATE_ENV = Path(__file__).parent / ".dvcenv"


def find_dvc(explicit: str | None = None) -> Path:
    """The ``dvc`` executable to benchmark against (installed if need be)."""
    for candidate in (explicit, os.environ.get("PIVOT_BENCH_DVC")):
        if candidate:
            path = Path(candidate)
            if path.is_dir():  # a virtualenv was given
                path = path / "bin" / "dvc"
            if not path.exists():
                raise SystemExit(f"bench: no dvc executable at {path}")
            return path
    dvc = PRIVATE_ENV / "bin" / "dvc"
    if not dvc.exists():
        print(f"bench: installing dvc=={DVC_VERSION} into {PRIVATE_ENV}", file=sys.stderr)
        venv.create(PRIVATE_ENV, with_pip=True)
        subprocess.run(
            [str(PRIVATE_ENV / "bin" / "python"), "-m", "pip", "install", "-q", f"dvc=={DVC_VERSION}"],
            check=True,
        )
    return dvc


def ensure_s3(dvc: Path) -> None:
    """Make sure the environment of ``dvc`` can use S3 remotes (the
    ``dvc-s3`` plugin): installed into ``bench/.dvcenv``, asked for elsewhere."""
    python = dvc.parent / "python"
    probe = subprocess.run([str(python), "-c", "import dvc_s3"], capture_output=True)
    if probe.returncode == 0:
        return
    if dvc.parent.resolve() != (PRIVATE_ENV / "bin").resolve():
        raise SystemExit(f"bench: {dvc} has no S3 support: run `{python} -m pip install 'dvc[s3]=={DVC_VERSION}'`")
    print(f"bench: installing dvc[s3]=={DVC_VERSION} into {PRIVATE_ENV}", file=sys.stderr)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"dvc[s3]=={DVC_VERSION}"], check=True)
