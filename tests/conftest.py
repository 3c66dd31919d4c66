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


# -- a real Dask cluster on 127.0.0.1 (tests/test_dask_executor.py) -------------


class DaskCluster:
    """``dask scheduler`` and two ``dask worker`` processes (``w1``, and
    ``w2`` advertising ``gpu=1``), each in its own process group."""

    WORKERS = {"w1": (), "w2": ("--resources", "gpu=1")}

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _spawn(self, *args: str, name: str) -> None:
        env = dict(os.environ, SHELL="/bin/sh")
        env.pop("PIVOT_SHELL", None)
        with open(self.directory / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=self.directory, env=env,
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def start(self) -> None:
        import time

        self._spawn("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file), name="scheduler")
        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            assert time.monotonic() < deadline, (self.directory / "scheduler.log").read_text()
            time.sleep(0.05)
        time.sleep(0.1)  # the file is written whole, but be safe about a reader racing the writer
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for name, extra in self.WORKERS.items():
            self._spawn("worker", self.address, "--name", name, "--nworkers", "1", "--nthreads", "1",
                        "--no-dashboard", "--host", "127.0.0.1", *extra, name=name)
        self.wait_for_workers(len(self.WORKERS))

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self) -> None:
        import signal

        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            proc.wait()

    @property
    def executor(self) -> str:
        return "dask://" + self.address.removeprefix("tcp://")


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("distributed")
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
