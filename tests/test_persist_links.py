"""A ``persist`` output is kept between runs and unprotected: links into a
cache become private copies, every other link stays a link.  A directory
output holding a link to a big tree elsewhere used to get a full copy of
that tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pivot.backends import outputs
from pivot.ir import Out, Stage


def _stage(*outs: Out) -> Stage:
    return Stage(address="s", name="s", file="dvc.yaml", wdir=".", cmds=("true",), outs=outs)


def _outside_tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    for i in range(50):
        (outside / "deep" / f"{i}.bin").write_bytes(b"x" * 1000)
    return outside


def test_links_out_of_a_persist_directory_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "project"
    outside = _outside_tree(tmp_path)
    (outside / "file.txt").write_text("theirs")
    out = root / "out"
    out.mkdir(parents=True)
    (out / "ext").symlink_to(outside)  # a link to a directory elsewhere
    (out / "ext-file").symlink_to(outside / "file.txt")  # a link to a file elsewhere
    (out / "dangling").symlink_to(tmp_path / "nothing-yet")
    (out / "sibling").symlink_to("ext")  # a link to a link
    before = {p.name: os.readlink(p) for p in out.iterdir()}
    outputs.prepare(root, _stage(Out("out", "out", persist=True)))
    assert {p.name: os.readlink(p) for p in out.iterdir()} == before
    assert sorted(os.listdir(outside / "deep")) == sorted(f"{i}.bin" for i in range(50))
    assert not [p for p in root.rglob("*") if p.name.endswith(".pivot-unprotect")]


def test_links_into_the_cache_inside_a_persist_directory_become_copies(tmp_path: Path) -> None:
    root = tmp_path / "project"
    obj = root / ".pivot/cache/files/ab/cdef"
    obj.parent.mkdir(parents=True)
    obj.write_text("cached")
    os.chmod(obj, 0o444)
    out = root / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "f.txt").symlink_to(os.path.relpath(obj, out / "sub"))
    (out / "gone.txt").symlink_to(os.path.relpath(root / ".pivot/cache/files/12/3456", out))
    (out / "ext").symlink_to(_outside_tree(tmp_path))
    outputs.prepare(root, _stage(Out("out", "out", persist=True)))
    copy = out / "sub" / "f.txt"
    assert not copy.is_symlink() and copy.read_text() == "cached"
    copy.write_text("appended")  # writable, and the object is untouched
    assert obj.read_text() == "cached" and stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert not os.path.lexists(out / "gone.txt")  # its object is gone: nothing to keep
    assert (out / "ext").is_symlink()


def test_a_link_chain_into_the_cache_counts_as_into_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "project"
    obj = root / ".pivot/cache/files/ab/cdef"
    obj.parent.mkdir(parents=True)
    obj.write_text("cached")
    (root / "hop").symlink_to(obj)  # its text says nothing of a cache
    (root / "out.txt").symlink_to("hop")
    outputs.prepare(root, _stage(Out("out.txt", "out.txt", persist=True)))
    assert not (root / "out.txt").is_symlink() and (root / "out.txt").read_text() == "cached"


@pytest.mark.parametrize("mode", ["copy", "symlink"])
def test_a_persist_directory_with_a_link_outside_runs_again_without_copying_it(ws, tmp_path, monkeypatch,
                                                                             mode) -> None:
    monkeypatch.setenv("PIVOT_CACHE_TYPE", mode)
    outside = _outside_tree(tmp_path)
    ws.write("dvc.yaml", f"""\
        stages:
          acc:
            cmd: mkdir -p out && (test -L out/ext || ln -s {outside} out/ext) && echo run >> out/log.txt
            outs:
              - out:
                  persist: true
        """)
    ws.pivot("run")
    ws.pivot("run", "-f")
    assert (ws.root / "out/ext").is_symlink()
    assert (ws.root / "out/log.txt").read_text() == "run\nrun\n"
    assert sorted(os.listdir(outside / "deep")) == sorted(f"{i}.bin" for i in range(50))
    assert ws.pivot_json("status") == {}
