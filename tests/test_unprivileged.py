"""The unprivileged harness really drops root: permission tests mean something."""

from __future__ import annotations

import os

import pytest

from tests.unprivileged import make_read_only


@pytest.mark.slow
def test_pivot_runs_as_a_user_who_cannot_write_a_read_only_project(unprivileged):
    root = unprivileged.project()
    (root / "dvc.yaml").write_text("stages:\n  s:\n    cmd: id -u > uid.txt\n    outs: [uid.txt]\n")
    (root / ".pivot").mkdir()
    unprivileged.chown(root)
    unprivileged.pivot(root, "run")
    expected = "65534" if os.geteuid() == 0 else str(os.geteuid())
    assert (root / "uid.txt").read_text().strip() == expected
    make_read_only(root)
    proc = unprivileged.pivot(root, "run", "-f", check=False)
    assert proc.returncode != 0
