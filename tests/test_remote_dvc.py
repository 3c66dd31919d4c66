"""The DVC remote a project already has: on a fresh clone of a DVC project
(dvc.yaml, dvc.lock, params, deps, the cache: false metric, .dvc/config),
`pivot pull` gets the outputs from the remote written by a real `dvc push`
(tests/fixtures/dvcremote, recorded with DVC 3.67.1) and `pivot status`
then says what `dvc status` says: up to date, nothing rerun."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "dvcremote"
EXPECTED = {
    "data/prepared/a.txt": "raw data\nline two\n",
    "data/prepared/nested/b.txt": "lr=0.1\n",
    "model.txt": "raw data\nline two\nlr=0.1\n",
    # tracked by images.dvc and notes.txt.dvc (`dvc add`)
    "images/cats/1.txt": "meow\n",
    "images/dog.txt": "woof\n",
    "notes.txt": "tracked by notes.txt.dvc\n",
}


@pytest.fixture
def dvc_clone(tmp_path) -> Workspace:
    """A fresh clone of the DVC project, its remote at ../remote (as
    `url = ../../remote` in .dvc/config, relative to .dvc/)."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE / "project", root)
    shutil.copytree(FIXTURE / "remote", tmp_path / "remote")
    (root / ".dvc").mkdir()
    shutil.copyfile(FIXTURE / "dvc-config", root / ".dvc" / "config")
    return Workspace(root)


def _workspace_files(ws: Workspace) -> dict[str, str]:
    return {path: ws.read(path) for path in EXPECTED if (ws.root / path).is_file()}


def test_pull_from_the_dvc_remote_makes_a_fresh_clone_up_to_date(dvc_clone):
    listed = dvc_clone.pivot_json("remote", "list")
    assert [(r["name"], r["default"], r["backend"], r["source"]) for r in listed] == [
        ("dvc:store", True, "read-only: DVC's", ".dvc/config")
    ]
    result = dvc_clone.pivot("pull")
    assert "fetched 8 objects" in result.stdout
    assert "4 restored, 0 unchanged, 0 not restored; adopted from dvc.lock: prepare, train" in result.stdout
    assert "restored images (images.dvc)\nrestored notes.txt (notes.txt.dvc)\n" in result.stdout
    assert _workspace_files(dvc_clone) == EXPECTED
    assert dvc_clone.pivot("status").stdout == "Pipelines are up to date.\n"
    assert "0 ran" in dvc_clone.pivot("run").stdout
    # DVC's own cache holds the objects, in DVC's layout
    assert (dvc_clone.root / ".dvc/cache/files/md5/78/fdf5026fb170f8e1ba0f8e9bdd6395.dir").is_file()


def test_fetch_fills_dvc_cache_only_and_is_incremental(dvc_clone):
    first = dvc_clone.pivot_json("fetch")
    assert (first["objects"], first["already"], first["remote"]) == (8, 0, "dvc:store")
    assert _workspace_files(dvc_clone) == {}
    second = dvc_clone.pivot_json("fetch")
    assert (second["objects"], second["already"]) == (0, 8)
    dvc_clone.pivot("pull")
    assert _workspace_files(dvc_clone) == EXPECTED


def test_dvc2_layout_and_entries_without_hash(dvc_clone, tmp_path):
    """DVC 2 kept objects at <url>/xx/rest and wrote no `hash: md5`."""
    for name in ("dvc.lock", "images.dvc", "notes.txt.dvc"):
        lock = dvc_clone.root / name
        lock.write_text("".join(line for line in lock.read_text().splitlines(True) if line.strip() != "hash: md5"))
    remote = tmp_path / "remote"
    for obj in list((remote / "files" / "md5").glob("*/*")):
        (remote / obj.parent.name).mkdir(exist_ok=True)
        obj.rename(remote / obj.parent.name / obj.name)
    shutil.rmtree(remote / "files")
    dvc_clone.pivot("pull")
    assert _workspace_files(dvc_clone) == EXPECTED
    assert dvc_clone.pivot("status").stdout == "Pipelines are up to date.\n"


def test_targets_leave_dvc_tracked_data_alone(dvc_clone):
    dvc_clone.pivot("pull", "train")
    assert _workspace_files(dvc_clone) == {"model.txt": EXPECTED["model.txt"]}


def test_a_dvc_file_pointing_outside_is_refused(dvc_clone, tmp_path):
    (dvc_clone.root / "evil.dvc").write_text("outs:\n- md5: 7c4a87fb36583616e6ac8509c42f59ce\n  path: ../../escape.txt\n")
    result = dvc_clone.pivot("pull", expect=1)  # refused when the .dvc file is loaded, before any transfer
    assert "evil.dvc:1: stage 'evil.dvc': refusing output '../../escape.txt': it is outside the project root" \
        in result.stderr
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_a_corrupted_dvc_object_is_refused(dvc_clone, tmp_path):
    obj = tmp_path / "remote" / "files" / "md5" / "a3" / "fa154fb093cd6e2b757474ceed7fa9"
    obj.write_text("raw data\nline two\nlr=0.2\n")
    result = dvc_clone.pivot("pull", expect=1)
    assert (
        "ERROR: DVC remote 'store': files/md5/a3/fa154fb093cd6e2b757474ceed7fa9 is corrupt (its md5 is "
        in result.stderr
    )
    assert "expected a3fa154fb093cd6e2b757474ceed7fa9); not placed (for 'model.txt' (train))" in result.stderr
    assert not (dvc_clone.root / "model.txt").exists()
    assert not (dvc_clone.root / ".dvc/cache/files/md5/a3/fa154fb093cd6e2b757474ceed7fa9").exists()
    assert _workspace_files(dvc_clone) == {k: v for k, v in EXPECTED.items() if k != "model.txt"}


def test_an_unsafe_dvc_manifest_is_refused(dvc_clone, tmp_path):
    import hashlib
    import json

    bad = json.dumps([{"md5": "c101982924efbebc7a33f9c096f3927b", "relpath": "../../outside.txt"}], sort_keys=True)
    md5 = hashlib.md5(bad.encode()).hexdigest()
    (tmp_path / "remote" / "files" / "md5" / md5[:2]).mkdir(exist_ok=True)
    (tmp_path / "remote" / "files" / "md5" / md5[:2] / f"{md5[2:]}.dir").write_text(bad)
    lock = dvc_clone.root / "dvc.lock"
    lock.write_text(lock.read_text().replace("78fdf5026fb170f8e1ba0f8e9bdd6395.dir", f"{md5}.dir"))
    result = dvc_clone.pivot("pull", expect=1)
    assert "not a DVC directory manifest: unsafe path '../../outside.txt'" in result.stderr
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.slow
def test_the_dvc_remote_on_s3(dvc_clone, moto_s3, s3_bucket, tmp_path):
    fs = moto_s3.filesystem()
    for obj in (tmp_path / "remote").rglob("*"):
        if obj.is_file():
            fs.pipe_file(f"{s3_bucket}/dvcstore/{obj.relative_to(tmp_path / 'remote').as_posix()}", obj.read_bytes())
    shutil.rmtree(tmp_path / "remote")
    (dvc_clone.root / ".dvc" / "config").write_text(
        f"[core]\n    remote = s3store\n['remote \"s3store\"']\n    url = s3://{s3_bucket}/dvcstore\n"
    )
    (dvc_clone.root / ".dvc" / "config.local").write_text(
        f"['remote \"s3store\"']\n    endpointurl = {moto_s3.endpoint}\n"
    )
    dvc_clone.pivot("pull")
    assert _workspace_files(dvc_clone) == EXPECTED
    assert dvc_clone.pivot("status").stdout == "Pipelines are up to date.\n"


def test_outputs_of_pivot_records_need_a_pivot_remote(dvc_clone):
    dvc_clone.pivot("pull")  # adopts: pivot records now exist
    (dvc_clone.root / "model.txt").unlink()
    shutil.rmtree(dvc_clone.root / ".pivot" / "cache")
    result = dvc_clone.pivot("pull", expect=1)
    assert ("WARNING: no pivot remote to fetch 'model.txt' (train) from: add one with "
            "`pivot remote add -d NAME URL`") in result.stderr


def test_a_dvc_remote_is_never_pushed_to(dvc_clone):
    dvc_clone.pivot("pull")
    result = dvc_clone.pivot("push", "-r", "store", expect=1)
    assert result.stderr == (
        "ERROR: remote 'store' is a DVC remote (.dvc/config): pivot only reads those; "
        "push to a pivot remote (`pivot remote add NAME URL`)\n"
    )
