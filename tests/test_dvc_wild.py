"""Shapes of real DVC projects: nested projects, URL dependencies, shared
caches.  Expected values were recorded from DVC 3.67.1 (the corpus cases
``nested_project`` and ``url_deps`` hold the resolved stages; the md5s
below are what ``dvc repro`` wrote to dvc.lock)."""

from __future__ import annotations

import json

from pivot.state.dvclock import md5_dir


def _nested(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a\n")
    ws.write("sub/dvc.yaml", "stages:\n  b:\n    cmd: echo b > b.txt\n    outs: [b.txt]\n")
    (ws.root / ".dvc").mkdir()
    (ws.root / "sub/.dvc").mkdir()


def test_a_nested_dvc_project_is_not_part_of_the_outer_one(ws):
    _nested(ws)
    assert [s["address"] for s in ws.pivot_json("list")["stages"]] == ["a"]
    inner = ws.pivot("list", cwd="sub").stdout  # the nested project is its own root
    assert inner.split() == ["b", "Outputs", "b.txt"]
    ws.pivot("run", cwd="sub")
    assert (ws.root / "sub/.pivot/locks").is_dir() and not (ws.root / ".pivot/locks").exists()


def test_a_nested_pivot_project_is_not_part_of_the_outer_one(ws):
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a\n")
    ws.write("tools/dvc.yaml", "stages:\n  t:\n    cmd: echo t\n")
    (ws.root / "tools/.pivot").mkdir()
    assert "tools/dvc.yaml:t" not in ws.pivot("list").stdout


def test_directory_hash_leaves_a_nested_dvc_project_out_as_dvc_does(tmp_path):
    (tmp_path / "data/sub/.dvc").mkdir(parents=True)
    (tmp_path / "data/a.txt").write_text("a\n")
    (tmp_path / "data/sub/b.txt").write_text("b\n")
    (tmp_path / "data/sub/.dvc/config").write_text("[core]\n    no_scm = True\n")
    assert md5_dir(tmp_path / "data") == ("465a62c55506cd2fa10372c1f9ba4b5e.dir", 2, 1)  # DVC 3.67.1's dvc.lock


def test_a_stage_with_a_url_dependency_is_refused_before_anything_runs(ws):
    ws.write("dvc.yaml", """\
        stages:
          fetch:
            wdir: sub
            cmd: curl -o data.csv https://example.com/data.csv
            deps: [https://example.com/data.csv]
            outs: [data.csv]
          local:
            cmd: echo hi > hi.txt
            outs: [hi.txt]
        """)
    (ws.root / ".dvc").mkdir()
    [fetch, local] = ws.pivot_json("list")["stages"]
    assert fetch["deps"] == ["https://example.com/data.csv"]  # verbatim, not joined with the wdir
    for command in (("status",), ("plan",), ("run",), ("commit", "fetch"), ("why", "fetch")):
        result = ws.pivot(*command, expect=1)
        assert result.stderr.startswith("ERROR: stage 'fetch' (dvc.yaml:2) depends on the URL "
                                        "'https://example.com/data.csv'")
    assert not (ws.root / "sub").exists()
    ws.pivot("run", "local")  # the other stages still work
    assert ws.read("hi.txt") == "hi\n"


def test_dvc_cache_dir_from_the_config_is_where_objects_are_found(ws):
    import hashlib

    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n")
    digest = hashlib.md5(b"hi\n").hexdigest()
    ws.write("dvc.lock", json.dumps({"schema": "2.0", "stages": {"s": {
        "cmd": "echo hi > out.txt", "outs": [{"path": "out.txt", "hash": "md5", "md5": digest, "size": 3}]}}}))
    shared = ws.root.parent / "shared-cache"
    (shared / "files/md5" / digest[:2]).mkdir(parents=True)
    (shared / "files/md5" / digest[:2] / digest[2:]).write_bytes(b"hi\n")
    ws.write(".dvc/config", "[cache]\n    dir = ../../shared-cache\n")
    assert ws.pivot_json("status") == {"s": [{"changed outs": {"out.txt": "deleted"}}]}
    [stage] = ws.pivot_json("plan")["stages"]
    assert (stage["action"], stage["source"]) == ("checkout", "dvc_cache")
    ws.write(".dvc/config.local", "[cache]\n    dir = ../../elsewhere\n")  # the local file wins
    assert ws.pivot_json("status") == {"s": [{"changed outs": {"out.txt": "not in cache"}}]}


GLOB_PARAMS = "kw:\n  moons:\n    n: 1\n  circles:\n    n: 2\n"
GLOB_STAGE = "stages:\n  s:\n    cmd: cat ../shared.txt > out.txt\n    deps: [../shared.txt]\n    params: [\"kw.moon*\"]\n    outs: [out.txt]\n"
# what `dvc repro` wrote for GLOB_STAGE (DVC 3.67.1): the pattern, with the matched value
GLOB_LOCK = """\
schema: '2.0'
stages:
  s:
    cmd: cat ../shared.txt > out.txt
    deps:
    - path: ../shared.txt
      hash: md5
      md5: f4d5d0c0671be202bc241807c243e80b
      size: 2
    params:
      params.yaml:
        kw.moon*:
          n: 1
    outs:
    - path: out.txt
      hash: md5
      md5: f4d5d0c0671be202bc241807c243e80b
      size: 2
"""


def _glob_project(ws):
    (ws.root.parent / "shared.txt").write_text("s\n")
    ws.write("params.yaml", GLOB_PARAMS)
    ws.write("dvc.yaml", GLOB_STAGE)
    ws.write("dvc.lock", GLOB_LOCK)
    ws.write("out.txt", "s\n")
    ws.write(".dvc/cache/files/md5/f4/d5d0c0671be202bc241807c243e80b", "s\n")  # as `dvc repro` left it


def test_a_glob_params_key_is_adopted_and_tracked_as_dvc_does(ws):
    _glob_project(ws)
    assert ws.pivot_json("plan")["summary"]["adopted"] == 1
    ws.write("params.yaml", GLOB_PARAMS.replace("n: 1", "n: 5"))
    # DVC 3.67.1: {"s": [{"changed deps": {"params.yaml": {"kw.moon*": "modified"}}}]}
    assert ws.pivot_json("status") == {"s": [{"changed deps": {"params.yaml": {"kw.moon*": "modified"}}}]}
    ws.pivot("run")
    record = json.loads(ws.read(".pivot/locks/s.json"))
    assert record["params"]["params.yaml"] == {"kw.moon*": {"n": 5}}
    assert ws.pivot_json("status") == {}


def test_a_glob_params_key_matching_several_keys_is_an_error(ws):
    _glob_project(ws)
    ws.write("dvc.yaml", GLOB_STAGE.replace("kw.moon*", "kw.*"))
    result = ws.pivot("status", expect=1)
    assert result.stderr.startswith("ERROR: params.yaml: the parameter pattern 'kw.*' matches several keys")
    assert "Traceback" not in result.stderr


def test_a_dep_outside_the_project_is_named_by_its_absolute_path_in_status(ws):
    _glob_project(ws)
    (ws.root.parent / "shared.txt").write_text("t\n")
    shared = (ws.root.parent / "shared.txt").resolve().as_posix()
    # DVC 3.67.1: {"s": [{"changed deps": {"/tmp/.../shared.txt": "modified"}}]}
    assert ws.pivot_json("status") == {"s": [{"changed deps": {shared: "modified"}}]}
    assert f"modified:           {shared}" in ws.pivot("status").stdout
    assert "../shared.txt" in ws.pivot("plan").stdout  # elsewhere, root-relative


def test_list_shows_the_valid_files_stages_and_names_each_invalid_file(ws):
    ws.write("dvc.yaml", "stages:\n  ok:\n    cmd: echo ok\n")
    ws.write("a/dvc.yaml", "stages:\n  bad:\n    cmdx: echo\n")
    ws.write("b/dvc.yaml", "stages: [\n")
    result = ws.pivot("list", expect=1)  # `dvc stage list` lists `ok` too, naming no error
    assert result.stdout.split() == ["ok", "No", "outputs", "or", "dependencies"]
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "a/dvc.yaml" in errors[0] and "b/dvc.yaml" in errors[1]
    assert "Traceback" not in result.stderr
    ws.pivot("status", expect=1)  # every other command still stops at the first invalid file
