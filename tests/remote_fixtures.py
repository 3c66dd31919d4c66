"""A real S3 API on the loopback interface: moto's standalone server.

``moto_s3`` (one per test session and xdist worker) starts ``python -m
moto.server`` on 127.0.0.1 with a port the kernel picks, in its own process
group, waits until it answers, and kills the group at the end.  AWS
credentials are dummies in the environment (the standard chain s3fs
reads); no real account, profile or config file is ever consulted.
``s3_bucket`` gives each test a fresh bucket on it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

DUMMY_KEY_ID = "pivot-test-key-id"
DUMMY_SECRET = "pivot-test-secret-never-written"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str  # http://127.0.0.1:PORT

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory):
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    env_patch = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(log_path.parent / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(log_path.parent / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        env_patch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env_patch.delenv(name, raising=False)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed as one
        )
    try:
        endpoint = _wait_for_server(proc, log_path)
        yield MotoServer(endpoint)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        env_patch.undo()


def _wait_for_server(proc: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    endpoint = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited ({proc.returncode}):\n{log_path.read_text(errors='replace')}")
        if endpoint is None:
            match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
            if match:
                endpoint = f"http://127.0.0.1:{match.group(1)}"
        if endpoint is not None:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=2).close()
                return endpoint
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"moto server did not start in {timeout:.0f} s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture
def s3_bucket(moto_s3: MotoServer) -> str:
    """A fresh, empty bucket's name."""
    name = f"pivot-{uuid.uuid4().hex[:12]}"
    moto_s3.filesystem().mkdir(name)
    return name
