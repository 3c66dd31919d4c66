"""Outputs become links to the cache after a stage is committed (hardlink,
symlink), in every link mode: run, second run rewrites nothing, edit param
and rerun, checkout, run-cache restore."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

PIPELINE = """\
    stages:
      make:
        cmd: mkdir -p d && echo "n=$(cat n.txt)" > out.txt && cp out.txt d/a && printf '#!/bin/sh\\n' > d/run.sh && chmod +x d/run.sh
        deps: [n.txt]
        outs: [out.txt, d]
      use:
        cmd: cat out.txt d/a > use.txt
        deps: [out.txt, d]
        outs: [use.txt]
    """
FILES = ("out.txt", "d/a", "d/run.sh", "use.txt")


def _object(root: Path, path: Path) -> Path:
    from pivot.state.hashing import file_digest

    digest = file_digest(path)
    return root / ".pivot/cache/files" / digest[:2] / digest[2:]


def _lstat(root: Path) -> dict[str, tuple[int, int, int]]:
    return {f: (st.st_ino, st.st_mtime_ns, st.st_mode) for f in FILES for st in [os.lstat(root / f)]}


def _assert_linked(root: Path, mode: str) -> None:
    for relpath in ("out.txt", "d/a", "use.txt"):
        path = root / relpath
        obj = _object(root, path)
        assert obj.is_file() and not obj.is_symlink()
        if mode == "hardlink":
            assert not path.is_symlink() and os.path.samefile(path, obj)
            assert not os.access(path, os.W_OK) or os.geteuid() == 0
        elif mode == "symlink":
            assert path.is_symlink() and os.path.samefile(path, obj)
        else:  # copy, reflink: a private file
            assert not path.is_symlink() and os.lstat(path).st_ino != os.stat(obj).st_ino
            assert os.access(path, os.W_OK)
    # executables stay copies: a link would carry the object's mode 0444
    run_sh = root / "d/run.sh"
    assert not run_sh.is_symlink() and os.stat(run_sh).st_mode & stat.S_IXUSR
    # the cache never holds a link
    assert not any(p.is_symlink() for p in (root / ".pivot/cache").rglob("*"))


@pytest.mark.parametrize("mode", ["copy", "reflink", "hardlink", "symlink"])
@pytest.mark.slow
def test_link_modes_end_to_end(ws, monkeypatch, mode):
    monkeypatch.setenv("PIVOT_CACHE_TYPE", mode)
    ws.write("dvc.yaml", PIPELINE)
    ws.write("n.txt", "1")
    ws.pivot("run", "-j", "1")
    _assert_linked(ws.root, mode)
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"

    before = _lstat(ws.root)
    result = ws.pivot("run", "-j", "1")
    assert "0 ran, 0 restored, 2 up to date" in result.stdout
    assert _lstat(ws.root) == before  # nothing rewritten
    ws.pivot("commit", "-q")  # saving again is idempotent too
    assert _lstat(ws.root) == before

    ws.write("n.txt", "2")
    ws.pivot("run", "-j", "1")
    assert ws.read("use.txt") == "n=2\nn=2\n"
    _assert_linked(ws.root, mode)

    for relpath in ("out.txt", "use.txt"):
        (ws.root / relpath).unlink()
    ws.pivot("checkout")
    assert ws.read("use.txt") == "n=2\nn=2\n"
    _assert_linked(ws.root, mode)
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"

    ws.write("n.txt", "1")  # back: restored from the run cache, as links
    assert "0 ran, 2 restored" in ws.pivot("run", "-j", "1").stdout
    assert ws.read("use.txt") == "n=1\nn=1\n"
    _assert_linked(ws.root, mode)
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_persist_outputs_linked_to_the_cache_are_unprotected_before_a_rerun(ws, monkeypatch, mode):
    monkeypatch.setenv("PIVOT_CACHE_TYPE", mode)
    ws.write("dvc.yaml", """\
        stages:
          grow:
            cmd: cat in.txt >> log.txt
            deps: [in.txt]
            outs: [{log.txt: {persist: true}}]
        """)
    ws.write("in.txt", "a\n")
    ws.pivot("run")
    first_object = _object(ws.root, ws.root / "log.txt")
    ws.write("in.txt", "b\n")
    ws.pivot("run")
    assert ws.read("log.txt") == "a\nb\n"
    assert first_object.read_text() == "a\n"  # the cache was not written through the link
