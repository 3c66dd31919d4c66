"""Outputs before a run: removed (read-only ones too), or unprotected when
persist, without ever touching what a link points to."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pivot.backends import outputs
from pivot.errors import PivotError
from pivot.ir import Out, Stage


def _stage(*outs: Out) -> Stage:
    return Stage(address="s", name="s", file="dvc.yaml", wdir=".", cmds=("true",), outs=outs)


def _readonly_tree(root: Path) -> Path:
    """A 0555 directory holding 0444 files and a 0555 subdirectory, as DVC leaves them."""
    top = root / "out"
    (top / "sub").mkdir(parents=True)
    for rel in ("a.txt", "sub/b.txt"):
        (top / rel).write_text(rel)
        os.chmod(top / rel, 0o444)
    os.chmod(top / "sub", 0o555)
    os.chmod(top, 0o555)
    return top


def test_read_only_directory_output_is_removed(tmp_path: Path) -> None:
    _readonly_tree(tmp_path)
    outputs.prepare(tmp_path, _stage(Out("out", "out")))
    assert not (tmp_path / "out").exists()


def test_read_only_file_output_is_removed_and_parent_created(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("old")
    os.chmod(tmp_path / "f.txt", 0o444)
    outputs.prepare(tmp_path, _stage(Out("f.txt", "f.txt"), Out("deep/er/g.txt", "deep/er/g.txt")))
    assert not (tmp_path / "f.txt").exists()
    assert (tmp_path / "deep" / "er").is_dir()


def test_removing_a_hardlinked_output_leaves_the_other_link_read_only(tmp_path: Path) -> None:
    cached = tmp_path / "cache-object"
    cached.write_text("data")
    os.chmod(cached, 0o444)
    os.link(cached, tmp_path / "f.txt")
    outputs.prepare(tmp_path, _stage(Out("f.txt", "f.txt")))
    assert not (tmp_path / "f.txt").exists()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444


def test_symlinked_output_is_unlinked_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    _readonly_tree(tmp_path).rename(target)
    os.symlink(target, tmp_path / "out")
    outputs.prepare(tmp_path, _stage(Out("out", "out")))
    assert not os.path.lexists(tmp_path / "out")
    assert (target / "sub" / "b.txt").read_text() == "sub/b.txt"
    assert stat.S_IMODE(target.stat().st_mode) == 0o555


def test_persist_hardlink_becomes_a_private_writable_copy(tmp_path: Path) -> None:
    cached = tmp_path / "cache-object"
    cached.write_text("kept")
    os.chmod(cached, 0o444)
    os.link(cached, tmp_path / "f.txt")
    outputs.prepare(tmp_path, _stage(Out("f.txt", "f.txt", persist=True)))
    with open(tmp_path / "f.txt", "a") as f:
        f.write(" more")
    assert (tmp_path / "f.txt").read_text() == "kept more"
    assert cached.read_text() == "kept"
    assert stat.S_IMODE(cached.stat().st_mode) == 0o444


def test_persist_symlinked_directory_becomes_a_writable_copy(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    _readonly_tree(tmp_path).rename(target)
    os.symlink(target, tmp_path / "out")
    outputs.prepare(tmp_path, _stage(Out("out", "out", persist=True)))
    out = tmp_path / "out"
    assert out.is_dir() and not out.is_symlink()
    (out / "sub" / "b.txt").write_text("changed")
    (out / "new.txt").write_text("new")
    assert (target / "sub" / "b.txt").read_text() == "sub/b.txt"


def test_persist_read_only_tree_is_made_writable_in_place(tmp_path: Path) -> None:
    _readonly_tree(tmp_path)
    outputs.prepare(tmp_path, _stage(Out("out", "out", persist=True)))
    (tmp_path / "out" / "sub" / "b.txt").write_text("changed")
    (tmp_path / "out" / "c.txt").write_text("new")
    assert (tmp_path / "out" / "a.txt").read_text() == "a.txt"


def test_output_outside_the_project_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "precious").write_text("keep")
    with pytest.raises(PivotError, match="outside the project"):
        outputs.prepare(root, _stage(Out("../precious", "../precious")))
    assert (tmp_path / "precious").exists()
