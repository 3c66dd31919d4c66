"""moto's standalone S3 server on 127.0.0.1 for the remote benchmark.

Started as the test suite starts it (``tests/remote_fixtures.py``): ``python
-m moto.server`` on a port the kernel picks, in its own process group,
killed as one group on the way out, whatever happened.  Credentials are
dummies in the environment the tools get; no AWS config file is read.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "pivot-bench-key-id",
    "AWS_SECRET_ACCESS_KEY": "pivot-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Settings that would send a tool to a real account or another endpoint.
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def s3_env(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """``env`` with dummy credentials and no way to a real AWS account."""
    env = {name: value for name, value in env.items() if name not in UNSET}
    env.update(DUMMY_CREDENTIALS)
    env["AWS_CONFIG_FILE"] = str(scratch / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(scratch / "no-aws-credentials")
    return env


@contextlib.contextmanager
def moto_server(log_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run the server while the block runs; yields its endpoint URL."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "moto-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=s3_env(dict(os.environ), log_dir),
            start_new_session=True,  # its own process group: killed as one
        )
    try:
        yield _wait_for_endpoint(proc, log_path, timeout)
    finally:
        _stop(proc)


def create_bucket(endpoint: str, name: str) -> None:
    """An empty bucket on the server (s3fs comes with pivot's test extras)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": endpoint},
        skip_instance_cache=True,
    )
    fs.mkdir(name)


def _wait_for_endpoint(proc: subprocess.Popen, log_path: Path, timeout: float) -> str:
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


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

