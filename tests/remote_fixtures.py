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
import uuid
from dataclasses import dataclass

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
    # the server is started as the benchmark starts it (one implementation)
    from bench.moto_server import moto_server, s3_env

    scratch = tmp_path_factory.mktemp("moto")
    env_patch = pytest.MonkeyPatch()
    wanted = s3_env(dict(os.environ), scratch)
    wanted.update(AWS_ACCESS_KEY_ID=DUMMY_KEY_ID, AWS_SECRET_ACCESS_KEY=DUMMY_SECRET)
    for name in set(os.environ) - set(wanted):
        env_patch.delenv(name)  # a profile or endpoint that could lead to a real account
    for name, value in wanted.items():
        env_patch.setenv(name, value)
    try:
        with moto_server(scratch, timeout=30.0) as endpoint:
            yield MotoServer(endpoint)
    finally:
        env_patch.undo()


@pytest.fixture
def s3_bucket(moto_s3: MotoServer) -> str:
    """A fresh, empty bucket's name."""
    name = f"pivot-{uuid.uuid4().hex[:12]}"
    moto_s3.filesystem().mkdir(name)
    return name
