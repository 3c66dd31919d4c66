"""Issue 11, item 2: a crafted ``dvc.lock`` never brings a file from
outside into an output, never crashes a command, and nothing from DVC's
cache is placed unless its md5 is the recorded one.

Each test is a real project whose stage makes ``model.pkl``; its
``dvc.lock`` entry records an md5 for it, the output is missing, so pivot
looks for it in DVC's cache (``.dvc/cache/files/md5/<2>/<30>``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

DVC_YAML = "stages:\n  train:\n    cmd: echo trained > model.pkl\n    outs: [model.pkl]\n"
SECRET = b"secret key material\n"


def _project(ws, md5: str) -> None:
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("dvc.lock", f"""\
        schema: '2.0'
        stages:
          train:
            cmd: echo trained > model.pkl
            outs:
            - path: model.pkl
              hash: md5
              md5: '{md5}'
              size: {len(SECRET)}
        """)


def _run_converges(ws) -> None:
    """``run`` runs the stage (nothing restored) and makes the real output."""
    result = ws.pivot("run")
    assert "1 ran" in result.stdout and "Traceback" not in result.output
    assert ws.read("model.pkl") == "trained\n"


def test_a_traversing_md5_never_copies_a_file_from_outside(ws) -> None:
    md5 = "./../../../../../secret/kkkkkkkk"  # 32 characters, from .dvc/cache/files/md5/ to the decoy
    assert len(md5) == 32
    secret = ws.root.parent / "secret" / "kkkkkkkk"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    _project(ws, md5)
    (ws.root / ".dvc/cache/files/md5").mkdir(parents=True)  # a checkout with a DVC cache, as usual
    assert (ws.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).resolve(strict=True) == secret  # the old path
    for command in ("status", "plan"):
        result = ws.pivot(command)
        assert "restore" not in result.stdout and "Traceback" not in result.output
    _run_converges(ws)
    assert SECRET not in (ws.root / "model.pkl").read_bytes()
    assert secret.read_bytes() == SECRET


@pytest.fixture
def short_decoy():
    """A decoy file with a path short enough to fit in an md5 (under /tmp,
    never a real system file)."""
    directory = tempfile.mkdtemp(prefix="pv", dir="/tmp")
    path = Path(directory) / "s"
    path.write_bytes(SECRET)
    yield path
    shutil.rmtree(directory)


def test_an_md5_with_an_absolute_tail_crashes_nothing(ws, short_decoy) -> None:
    tail = str(short_decoy)
    md5 = "aa" + "/" * (30 - len(tail)) + tail  # root / "aa" / "///tmp/pvXXX/s" is the decoy
    assert len(md5) == 32
    _project(ws, md5)
    for command in ("status", "plan", "why"):
        args = (command, "train") if command == "why" else (command,)
        result = ws.pivot(*args)
        assert "Traceback" not in result.output
    _run_converges(ws)
    assert short_decoy.read_bytes() == SECRET


@pytest.mark.parametrize("md5", [
    "0123456789abcdef0123456789abcdeg",  # not hex
    "0123456789abcdef0123456789abcde",  # 31
    "0123456789abcdef0123456789abcdef0",  # 33
    "0123456789abcdef\n123456789abcdef",
    "../0123456789abcdef0123456789abc",
])
def test_an_md5_that_is_not_one_makes_the_entry_unusable(ws, md5) -> None:
    _project(ws, md5)
    if "/" not in md5 and "\n" not in md5:  # an object where a path built from it would look
        obj = ws.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
        obj.parent.mkdir(parents=True)
        obj.write_bytes(SECRET)
    assert ws.pivot_json("plan")["stages"][0]["action"] == "run"
    _run_converges(ws)


def test_a_dvc_cache_object_with_other_content_is_not_restored(ws) -> None:
    """An object at the right name with the wrong bytes (damaged, or planted
    by the checkout) is not placed: the stage runs instead."""
    md5 = hashlib.md5(SECRET).hexdigest()
    _project(ws, md5)
    obj = ws.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"something else entirely\n")
    result = ws.pivot("run")
    assert "does not have the md5 dvc.lock records" in result.output and "1 ran" in result.stdout
    assert ws.read("model.pkl") == "trained\n"
    assert obj.read_bytes() == b"something else entirely\n"  # DVC's cache is DVC's: left alone


def test_a_dvc_cache_object_that_is_a_symlink_is_not_followed(ws) -> None:
    secret = ws.root.parent / "secret.bin"
    secret.write_bytes(SECRET)
    md5 = hashlib.md5(SECRET).hexdigest()  # even with the right md5, an object is never a link
    _project(ws, md5)
    obj = ws.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.symlink_to(secret)
    _run_converges(ws)


def test_a_genuine_dvc_cache_object_is_still_restored(ws) -> None:
    md5 = hashlib.md5(SECRET).hexdigest()
    _project(ws, md5)
    obj = ws.root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(SECRET)
    os.chmod(obj, 0o444)
    result = ws.pivot("run")
    assert "1 restored" in result.stdout
    assert (ws.root / "model.pkl").read_bytes() == SECRET


def test_valid_md5_accepts_what_dvc_writes_only() -> None:
    from pivot.state.dvclock import valid_md5

    assert valid_md5("0123456789ABCDEF0123456789abcdef") == "0123456789abcdef0123456789abcdef"  # DVC lowercases
    assert valid_md5("0123456789abcdef0123456789abcdef.dir") == "0123456789abcdef0123456789abcdef.dir"
    for bad in (None, 5, "", "0123456789abcdef0123456789abcdef.dirx", "0123456789abcdef0123456789abcdef/",
                "/0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef\n"):
        assert valid_md5(bad) is None, bad
