"""Shared fixtures: real workspaces in temporary directories, pivot invoked
through click's runner (in process) or as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from pivot.cli import cli


class Workspace:
    """A temporary project root with helpers to write files and run pivot."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def read(self, relpath: str) -> str:
        return (self.root / relpath).read_text()

    def pivot(self, *args: str, cwd: str = ".", expect: int | None = 0):
        """Run pivot in-process; returns click's Result (output, stderr, exit_code)."""
        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.root / cwd)
        try:
            result = runner.invoke(cli, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
        if expect is not None:
            assert result.exit_code == expect, (
                f"pivot {' '.join(args)} exited {result.exit_code}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def pivot_json(self, *args: str, cwd: str = "."):
        return json.loads(self.pivot(*args, "--json", cwd=cwd).stdout)

    def pivot_proc(self, *args: str, cwd: str = ".", check: bool = True, **kwargs):
        """Run pivot as a real subprocess (``python -m pivot``)."""
        proc = subprocess.run(
            [sys.executable, "-m", "pivot", *args],
            cwd=self.root / cwd,
            capture_output=True,
            text=True,
            **kwargs,
        )
        if check:
            assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        return proc


def python3_only_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has ``python3`` (this interpreter) and the
    system's tools but no ``python``: a fresh Debian machine, where the
    examples of the README's quick start must run."""
    bin_dir = tmp_path / "python3-only-bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    system = [d for d in ("/usr/bin", "/bin") if not os.path.exists(os.path.join(d, "python"))]
    return dict(os.environ, PATH=os.pathsep.join([str(bin_dir), *system]))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "project"
    root.mkdir()
    return Workspace(root)


@pytest.fixture(autouse=True)
def _plain_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage commands run under /bin/sh, whatever shell the developer uses:
    CI has no ``SHELL`` set, so pivot falls back to /bin/sh (dash on
    Debian), and a test that passed only under bash would fail there."""
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.delenv("PIVOT_SHELL", raising=False)


@pytest.fixture(scope="session")
def unprivileged():
    """pivot runnable as uid 65534 (see ``tests/unprivileged.py``)."""
    from tests.unprivileged import Unprivileged

    runner = Unprivileged()
    yield runner
    runner.cleanup()


# remotes: moto's standalone S3 server on 127.0.0.1 (see tests/remote_fixtures.py)
from tests.remote_fixtures import moto_s3, s3_bucket  # noqa: E402,F401
