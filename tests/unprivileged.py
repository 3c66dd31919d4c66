"""Running pivot as a real unprivileged user, for tests where permissions matter.

As root every permission check passes, so a test of a read-only project
would pass trivially.  ``Unprivileged`` copies this checkout's ``pivot``
package, its grammar and templates, and the installed runtime dependencies
into a world-readable directory, then runs ``python -m pivot`` under
``setpriv`` as uid/gid 65534 (``nobody``).  When the tests already run as a
non-root user, pivot runs as that user directly.

The interpreter must be one the unprivileged user can read: this one when
its files are reachable, else the system's ``/usr/bin/python3.X`` of the
same minor version (same ABI for the C extensions copied along).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

UID = GID = 65534
REPO = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ("click", "yaml", "_yaml", "xxhash", "lark", "jinja2", "markupsafe")


def _readable_by_others(path: Path) -> bool:
    """Whether every directory on the way to ``path`` can be traversed by others."""
    path = path.resolve()
    for part in (path, *path.parents):
        mode = part.stat().st_mode
        needed = stat.S_IXOTH if part.is_dir() else stat.S_IROTH
        if not mode & needed:
            return False
    return True


def _interpreter() -> str:
    if _readable_by_others(Path(sys.executable)):
        return sys.executable
    system = Path(f"/usr/bin/python3.{sys.version_info.minor}")
    if system.exists():
        return str(system)
    raise RuntimeError(
        f"no Python {sys.version_info.major}.{sys.version_info.minor} readable by uid {UID}: "
        f"{sys.executable} is not, and {system} does not exist"
    )


def _copy_package(name: str, dest: Path) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        shutil.copytree(origin.parent, dest / origin.parent.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:  # a single module or an extension
        shutil.copy2(origin, dest / origin.name)


class Unprivileged:
    """pivot installed where uid 65534 can run it."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.home = Path(tempfile.mkdtemp(prefix="pivot-unpriv-"))
        os.chmod(self.home, 0o755)
        site = self.home / "site"
        site.mkdir()
        shutil.copytree(REPO / "pivot", site / "pivot", ignore=shutil.ignore_patterns("__pycache__"))
        for data in ("grammar", "templates"):
            shutil.copytree(REPO / data, site / "pivot" / "_data" / data)
        for name in RUNTIME_PACKAGES:
            _copy_package(name, site)
        self.site = site
        self.python = _interpreter() if self.as_root else sys.executable
        for path in self.home.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)

    def project(self, name: str = "project") -> Path:
        """A fresh project directory owned by the unprivileged user."""
        parent = Path(tempfile.mkdtemp(prefix="work-", dir=self.home))
        os.chmod(parent, 0o755)
        root = parent / name
        root.mkdir()
        self.chown(parent)
        return root

    def chown(self, top: Path) -> None:
        """Give ``top`` and everything in it to the unprivileged user."""
        if not self.as_root:
            return
        os.lchown(top, UID, GID)
        for path in top.rglob("*"):
            os.lchown(path, UID, GID)

    def argv(self, *args: str) -> list[str]:
        command = [self.python, "-m", "pivot", *args]
        if self.as_root:
            return ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", *command]
        return command

    def pivot(self, cwd: Path, *args: str, check: bool | int = True, timeout: float = 120,
              ) -> subprocess.CompletedProcess[str]:
        """Run ``pivot ARGS`` in ``cwd`` as the unprivileged user."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(cwd),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(self.site),
            "PYTHONDONTWRITEBYTECODE": "1",
            "SHELL": "/bin/sh",
        }
        proc = subprocess.run(self.argv(*args), cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        expected = 0 if check is True else check
        if check is not False:
            assert proc.returncode == expected, (
                f"pivot {' '.join(args)} exited {proc.returncode}, expected {expected}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def cleanup(self) -> None:
        for path in self.home.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o755)
        shutil.rmtree(self.home, ignore_errors=True)


def make_read_only(top: Path) -> None:
    """``chmod -R a-w top``."""
    for path in (top, *top.rglob("*")):
        if not path.is_symlink():
            os.chmod(path, stat.S_IMODE(path.lstat().st_mode) & ~0o222)
