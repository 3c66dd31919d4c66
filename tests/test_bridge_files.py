"""The files under .pivot/ninja/ never lead a write outside the project:
each directory is checked once and opened, and files are created, replaced
and removed relative to it without following a symlink planted there."""

from __future__ import annotations

import os

import pytest

from pivot.backends.bridge_files import BridgeFiles
from pivot.containment import OutsideProject

STAMP = ".pivot/ninja/outs/model.txt"


@pytest.fixture
def decoy(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.txt").write_text("precious\n")
    os.utime(outside / "model.txt", (1_000_000, 1_000_000))
    return outside


def _untouched(decoy) -> None:
    assert sorted(p.name for p in decoy.iterdir()) == ["model.txt"]
    assert (decoy / "model.txt").read_text() == "precious\n"
    assert (decoy / "model.txt").stat().st_mtime == 1_000_000


def test_writes_create_the_directories_and_replace_only_on_change(ws):
    with BridgeFiles(ws.root) as files:
        assert files.write_if_changed(STAMP, "abc\n")
        assert not files.write_if_changed(STAMP, "abc\n")
        assert files.read_text(STAMP) == "abc\n"
        files.set_mtime_ns(STAMP, 5_000_000_000)
        assert files.exists(STAMP) and not files.exists(".pivot/ninja/outs/other")
        assert files.file_names(".pivot/ninja/outs") == ["model.txt"]
        files.unlink(STAMP)
        files.unlink(STAMP)  # gone already: fine
    assert not (ws.root / STAMP).exists()


def test_a_directory_symlink_leading_outside_is_refused(ws, decoy):
    (ws.root / ".pivot/ninja").mkdir(parents=True)
    (ws.root / ".pivot/ninja/outs").symlink_to(decoy)
    with BridgeFiles(ws.root) as files, pytest.raises(OutsideProject, match="outside the project"):
        files.write_if_changed(STAMP, "abc\n")
    _untouched(decoy)


def test_a_file_symlink_is_replaced_or_removed_never_followed(ws, decoy):
    (ws.root / ".pivot/ninja/outs").mkdir(parents=True)
    link = ws.root / STAMP
    with BridgeFiles(ws.root) as files:
        link.symlink_to(decoy / "model.txt")
        assert files.read_text(STAMP) is None  # not read through the link
        assert files.write_if_changed(STAMP, "abc\n")
        assert not link.is_symlink() and link.read_text() == "abc\n"

        link.unlink()
        link.symlink_to(decoy / "model.txt")
        files.touch(STAMP)
        assert not link.is_symlink()

        link.unlink()
        link.symlink_to(decoy / "model.txt")
        with files.exclusive(STAMP):  # the settle lock's way: replaced, never locked through
            assert not link.is_symlink()

        link.unlink()
        link.symlink_to(decoy / "model.txt")
        files.set_mtime_ns(STAMP, 5_000_000_000)  # the link's own time, if anything
        files.unlink(STAMP)
        assert not os.path.lexists(link)
    _untouched(decoy)


def test_a_directory_swapped_for_a_symlink_after_the_check_is_not_followed(ws, decoy):
    with BridgeFiles(ws.root) as files:
        files.write_if_changed(STAMP, "abc\n")
        (ws.root / ".pivot/ninja/outs").rename(ws.root / ".pivot/ninja/moved")
        (ws.root / ".pivot/ninja/outs").symlink_to(decoy)
        files.write_if_changed(STAMP, "def\n")  # through the directory opened before
    assert (ws.root / ".pivot/ninja/moved/model.txt").read_text() == "def\n"
    _untouched(decoy)


def test_a_symlink_inside_the_project_is_followed(ws):
    (ws.root / "elsewhere").mkdir()
    (ws.root / ".pivot").mkdir()
    (ws.root / ".pivot/ninja").symlink_to("../elsewhere")
    with BridgeFiles(ws.root) as files:
        files.write_if_changed(STAMP, "abc\n")
    assert (ws.root / "elsewhere/outs/model.txt").read_text() == "abc\n"


def test_an_os_error_names_the_bridge_file(ws):
    (ws.root / ".pivot").mkdir()
    (ws.root / ".pivot/ninja").write_text("a file where a directory belongs")
    with BridgeFiles(ws.root) as files, pytest.raises(NotADirectoryError) as error:
        files.write_if_changed(STAMP, "abc\n")
    assert error.value.filename.endswith(".pivot/ninja")
