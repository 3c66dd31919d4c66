"""A checkout killed while it copies an output leaves its temporary file
(``.NAME.pivot-XXXXXXXX``) beside the output; the next placement of that
output sweeps it, so it neither stays for ever nor changes the hash of the
directory it sits in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pivot.state.store import is_temp_name

PIPELINE = """\
stages:
  gen:
    cmd: head -c {size} /dev/zero > data/big.bin
    outs: [data/big.bin]
  use:
    cmd: ls -a data > listing.txt
    deps: [data]
    outs: [listing.txt]
"""


def _leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if is_temp_name(name))


def _project(ws, size: int) -> None:
    ws.write("data/src.txt", "a source file beside the output\n")
    ws.write("dvc.yaml", PIPELINE.format(size=size))
    ws.pivot("run")


def test_the_temp_name_pattern() -> None:
    assert is_temp_name(".model.pkl.pivot-duqaj82u")
    assert is_temp_name(".model.pkl.pivot-duqaj82u", "model.pkl")
    assert not is_temp_name(".model.pkl.pivot-duqaj82u", "model")
    assert not is_temp_name("model.pkl.pivot-duqaj82u")  # not hidden: not ours
    assert not is_temp_name(".model.pkl.pivot-DUQAJ82U")
    assert not is_temp_name(".model.pkl.pivot-short")
    assert not is_temp_name(".pivot-duqaj82u")
    assert not is_temp_name(".model.pkl.pivot-unprotect")


def test_checkout_sweeps_what_a_killed_checkout_left(ws) -> None:
    _project(ws, 1000)
    # what `kill -9` in the middle of a checkout leaves: the output removed,
    # half of it under a temporary name in the directory it lives in
    (ws.root / "data/big.bin").unlink()
    (ws.root / "data/.big.bin.pivot-k1ll3d9x").write_bytes(b"\0" * 100)
    assert "use" in ws.pivot_json("status")
    ws.pivot("checkout")
    assert _leftovers(ws.root / "data") == []
    assert (ws.root / "data/big.bin").stat().st_size == 1000
    assert ws.pivot_json("status") == {}


def test_a_file_checkout_leaves_other_outputs_temporaries_alone(ws) -> None:
    _project(ws, 1000)
    other = ws.root / "data/.src.txt.pivot-abcdefgh"  # not this output's: another one's, in flight
    other.write_text("x")
    (ws.root / "data/big.bin").unlink()
    ws.pivot("checkout", "gen")
    assert other.exists()


def test_commit_in_symlink_mode_sweeps_a_killed_relink(ws, monkeypatch) -> None:
    monkeypatch.setenv("PIVOT_CACHE_TYPE", "symlink")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo s > out.txt\n    outs: [out.txt]\n")
    ws.pivot("run")
    (ws.root / "out.txt").unlink()
    ws.write("out.txt", "s\n")  # a plain copy again, as before the relink
    (ws.root / ".out.txt.pivot-r3l1nk00").symlink_to("somewhere")
    ws.pivot("commit", "s")
    assert (ws.root / "out.txt").is_symlink()
    assert _leftovers(ws.root) == []


@pytest.mark.slow
def test_kill_9_during_a_checkout_leaves_nothing_after_the_next_one(ws) -> None:
    size = 64 * 1024 * 1024
    _project(ws, size)
    data = ws.root / "data"
    for _attempt in range(10):
        (data / "big.bin").unlink(missing_ok=True)  # a kill before the copy began leaves none
        proc = subprocess.Popen([sys.executable, "-m", "pivot", "checkout"], cwd=ws.root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline and not _leftovers(data):
                time.sleep(0.0005)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        if _leftovers(data) and not (data / "big.bin").exists():
            break
        if not (data / "big.bin").exists():
            continue
    else:
        pytest.fail("the checkout was never caught copying (tried 10 times)")
    assert "use" in ws.pivot_json("status")  # the leftover changes data/'s hash
    ws.pivot("checkout")
    assert _leftovers(data) == []
    assert (data / "big.bin").stat().st_size == size
    assert ws.pivot_json("status") == {}
