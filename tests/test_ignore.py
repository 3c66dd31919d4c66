""".dvcignore / .pivotignore: the matcher, discovery, directory hashes (DVC 3.67.1 semantics)."""

from __future__ import annotations

import os

import pytest

from pivot.errors import PivotError
from pivot.ignore import IgnoreTree, is_ignored, parse
from pivot.project import Project
from pivot.state import State
from pivot.state.dvclock import md5_dir


def ignored(text: str, relpath: str, is_dir: bool = False, base: str = "") -> bool:
    return is_ignored((parse(text, base),), relpath, is_dir)


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.tmp", "a.tmp", False, True),
        ("*.tmp", "d/e/a.tmp", False, True),  # no slash: any depth
        ("*.tmp", "a.tmpx", False, False),
        ("/a.txt", "a.txt", False, True),
        ("/a.txt", "d/a.txt", False, False),  # leading slash anchors
        ("d/a.txt", "x/d/a.txt", False, False),  # inner slash anchors
        ("out/", "out", True, True),
        ("out/", "out", False, False),  # trailing slash: directories only
        ("out/", "x/out/f", False, True),
        ("**/logs", "a/b/logs", True, True),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**", "a/x/y", False, True),
        ("?.txt", "1.txt", False, True),
        ("?.txt", "12.txt", False, False),
        ("[!a]b", "cb", False, True),
        ("[!a]b", "ab", False, False),
        ("[a-c]x", "bx", False, True),
        ("\\#hash", "#hash", False, True),
        ("\\!bang", "!bang", False, True),
        ("sp\\ ace", "sp ace", False, True),
        ("*", "anything/below", False, True),
    ],
)
def test_pattern(pattern, path, is_dir, expected):
    assert ignored(pattern + "\n", path, is_dir) is expected


def test_negation_last_match_wins_and_comments():
    text = "# comment\n\n*.tmp\n!keep.tmp\n"
    assert ignored(text, "x.tmp")
    assert not ignored(text, "keep.tmp")
    assert ignored(text + "keep.tmp\n", "keep.tmp")


def test_rules_of_a_subdirectory_file_are_relative_to_it():
    rules = parse("/data/sub/\nx/*.log\n", "top/")
    assert is_ignored((rules,), "top/data/sub", True)
    assert not is_ignored((rules,), "data/sub", True)
    assert is_ignored((rules,), "top/x/a.log", False)
    assert not is_ignored((rules,), "top/data/x/a.log", False)


def test_deeper_file_decides_first(tmp_path):
    (tmp_path / ".dvcignore").write_text("*.csv\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/.pivotignore").write_text("!keep.csv\n")
    tree = IgnoreTree(tmp_path)
    assert tree.ignored("d/x.csv", False)
    assert not tree.ignored("d/keep.csv", False)
    assert tree.ignored("keep.csv", False)
    assert tree.files == [".dvcignore", "d/.pivotignore"]


def test_no_ignore_file_means_empty_chains(tmp_path):
    (tmp_path / "d").mkdir()
    tree = IgnoreTree(tmp_path)
    assert tree.chain("d", ()) == () and not tree.ignored("d/x", False)


def test_bad_pattern_names_file_and_line(tmp_path):
    (tmp_path / ".dvcignore").write_text("(\n[z-a]\n")
    with pytest.raises(PivotError, match=r"\.dvcignore:2: bad pattern"):
        IgnoreTree(tmp_path)


# -- the tree DVC 3.67.1 hashed (dvc repro, dvc.lock recorded below) ----------

DVC_DIR_MD5 = "f87719d5b3dd87be774031ead710942f.dir"  # top/data: 5 files, 10 bytes


def make_tree(ws) -> None:
    ws.write("top/data/a.txt", "a\n")
    ws.write("top/data/b.tmp", "tmp\n")
    ws.write("top/data/keep.tmp", "k\n")
    ws.write("top/data/sub/s.txt", "s\n")
    ws.write("top/data/deep/x/z.log", "z\n")
    ws.write("top/data/deep/y.log", "y\n")
    ws.write("other/o.txt", "o\n")
    ws.write("other/od/f.txt", "f\n")
    os.symlink("../../other/o.txt", ws.root / "top/data/lfile")
    os.symlink("../../other/od", ws.root / "top/data/ldir")
    os.chmod(ws.root / "top/data/a.txt", 0o755)
    ws.write(".dvcignore", "*.tmp\n!keep.tmp\n# comment\nign/\n")
    ws.write("top/.dvcignore", "/data/sub/\nx/*.log\n")
    ws.write("ign/dvc.yaml", "stages:\n  bad:\n    cmd: echo\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: ls top/data > s.txt\n    deps: [top/data]\n    outs: [s.txt]\n")


def test_md5_dir_matches_dvc(ws):
    make_tree(ws)
    tree = IgnoreTree(ws.root)
    assert md5_dir(ws.root / "top/data", ignores=tree, relpath="top/data") == (DVC_DIR_MD5, 10, 5)


def test_manifest_leaves_out_ignored_files_and_linked_dirs(ws):
    make_tree(ws)
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        state.hasher.hash("top/data")
        names = [entry.relpath for entry in state.hasher.manifest("top/data")]
    assert names == ["a.txt", "deep/x/z.log", "deep/y.log", "keep.tmp", "lfile"]


def test_ignored_dvc_yaml_is_not_loaded(ws):
    make_tree(ws)
    listed = ws.pivot_json("list")
    assert [stage["address"] for stage in listed["stages"]] == ["s"]


def test_editing_ignored_file_changes_nothing(ws):
    make_tree(ws)
    ws.pivot("run")
    ws.write("top/data/b.tmp", "changed\n")
    ws.write("top/data/sub/s.txt", "changed\n")
    (ws.root / "other/od/new.txt").write_text("new\n")  # below a linked dir
    os.chmod(ws.root / "top/data/keep.tmp", 0o755)  # isexec is not part of a dir hash
    assert ws.pivot_json("status") == {}
    ws.write("top/data/keep.tmp", "changed\n")
    assert "s" in ws.pivot_json("status")


def test_new_ignore_file_invalidates_the_pipeline_cache(ws):
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a\n")
    ws.write("sub/dvc.yaml", "stages:\n  b:\n    cmd: echo b\n")
    assert len(ws.pivot_json("list")["stages"]) == 2
    ws.write(".pivotignore", "sub\n")
    assert [s["address"] for s in ws.pivot_json("list")["stages"]] == ["a"]
    os.unlink(ws.root / ".pivotignore")
    assert len(ws.pivot_json("list")["stages"]) == 2
