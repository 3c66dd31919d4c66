"""The resolved pipeline remembered in .pivot/pipeline.pickle: used only when
nothing it was made from changed, never written from racy files."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import pivot.frontends
import pivot.signature
from pivot.frontends import cache

PIPELINE = """\
    vars:
      - config.yaml
    stages:
      train:
        foreach: ${models}
        do:
          cmd: python train.py ${item} --lr ${lr}
          deps:
            - data/${item}.csv
          outs:
            - models/${item}
"""


@pytest.fixture
def loads(monkeypatch):
    """Trust files at once (no racy window) and count real pipeline loads."""
    monkeypatch.setattr(pivot.signature, "RACY_WINDOW_NS", 0)
    calls = []
    real = pivot.frontends._load

    def counting(project, targets, *args):
        calls.append(project.root)
        return real(project, targets, *args)

    monkeypatch.setattr(pivot.frontends, "_load", counting)
    return calls


@pytest.fixture
def project(ws):
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", PIPELINE)
    ws.write("config.yaml", "models: [a, b]\n")
    ws.write("params.yaml", "lr: 0.1\n")
    return ws


def listing(ws) -> list[dict]:
    return ws.pivot_json("list")["stages"]


def test_second_command_uses_the_cache(project, loads):
    first = listing(project)
    assert (project.root / ".pivot" / cache.CACHE_NAME).is_file()
    assert listing(project) == first
    assert len(loads) == 1
    assert [s["cmd"] for s in first] == [["python train.py a --lr 0.1"], ["python train.py b --lr 0.1"]]


@pytest.mark.parametrize(
    ("relpath", "text", "expected_cmd"),
    [
        ("dvc.yaml", PIPELINE.replace("train.py", "fit.py"), "python fit.py a --lr 0.1"),
        ("params.yaml", "lr: 0.25\n", "python train.py a --lr 0.25"),
        ("config.yaml", "models: [a, b, c]\n", "python train.py a --lr 0.1"),
    ],
)
def test_an_edited_source_is_reloaded(project, loads, relpath, text, expected_cmd):
    listing(project)
    project.write(relpath, text)
    stages = listing(project)
    assert len(loads) == 2
    assert stages[0]["cmd"] == [expected_cmd]
    assert len(stages) == (3 if relpath == "config.yaml" else 2)


def test_a_params_file_appearing_is_seen(ws, loads):
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", "vars: [{lr: 1}]\nstages:\n  s:\n    cmd: echo ${lr}\n")
    assert listing(ws)[0]["cmd"] == ["echo 1"]
    # params.yaml beside dvc.yaml is merged before vars: now lr is defined twice
    ws.write("params.yaml", "lr: 2\n")
    result = ws.pivot("list", expect=1)
    assert "cannot redefine 'lr'" in result.stderr


def test_parsing_config_is_a_source(ws, loads):
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", "vars: [{opts: {fast: false}}]\nstages:\n  s:\n    cmd: run ${opts}\n")
    assert listing(ws)[0]["cmd"] == ["run "]
    ws.write(".dvc/config", "[parsing]\nbool = boolean_optional\n")
    assert listing(ws)[0]["cmd"] == ["run --no-fast"]


def test_discovery_changes_are_seen(project, loads):
    listing(project)
    project.write("sub/dvc.yaml", "stages:\n  extra:\n    cmd: echo extra\n")
    assert [s["address"] for s in listing(project)][-1] == "sub/dvc.yaml:extra"
    (project.root / "sub" / "dvc.yaml").unlink()
    assert [s["address"] for s in listing(project)] == ["train@a", "train@b"]
    assert len(loads) == 3


def test_pipeline_files_inside_outputs_stay_skipped(project, loads):
    project.write("models/a/dvc.yaml", "stages:\n  hidden:\n    cmd: echo no\n")
    first = listing(project)
    assert listing(project) == first
    assert len(loads) == 1
    assert all("hidden" not in s["address"] for s in first)


def test_racy_files_are_not_cached(project):
    # the real window: every file was written just now
    listing(project)
    assert not (project.root / ".pivot" / cache.CACHE_NAME).exists()


def test_no_state_dir_is_created(ws, loads):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi\n")
    listing(ws)
    assert not (ws.root / ".pivot").exists()


def test_a_damaged_cache_is_a_miss(project, loads):
    first = listing(project)
    (project.root / ".pivot" / cache.CACHE_NAME).write_bytes(b"\x80\x05not a pickle")
    assert listing(project) == first
    assert len(loads) == 2
    assert listing(project) == first
    assert len(loads) == 2  # rewritten by the second load


def test_errors_are_not_cached(project, loads):
    project.write("params.yaml", "{lr: [\n")
    project.pivot("status", expect=1)
    project.pivot("status", expect=1)
    assert len(loads) == 2
    assert not (project.root / ".pivot" / cache.CACHE_NAME).exists()


WILDCARDS = """\
rule all:
    input: "out/a.txt", "out/b.txt"

rule copy:
    input: "data/{name}.txt"
    output: "out/{name}.txt"
    shell: "cp {input} {output}"
"""


def test_pivotfile_projects_are_cached_too(project, loads):
    project.write("Pivotfile", WILDCARDS)
    project.write("data/a.txt", "a\n")
    project.write("data/b.txt", "b\n")
    first = listing(project)
    assert listing(project) == first
    assert len(loads) == 1
    assert [s["address"] for s in first if s["address"].startswith("copy")] == ["copy@a", "copy@b"]

    project.write("Pivotfile", WILDCARDS.replace('"out/b.txt"', '"out/b.txt", "out/c.txt"'))
    project.write("data/c.txt", "c\n")
    assert "copy@c" in [s["address"] for s in listing(project)]  # an edited Pivotfile is loaded again
    assert len(loads) == 2


def test_pivotfile_cache_follows_file_targets(project, loads):
    # wildcard rules are resolved for file targets: other targets, other stages
    project.write("Pivotfile", WILDCARDS)
    project.write("data/a.txt", "a\n")
    project.write("data/b.txt", "b\n")
    project.write("data/z.txt", "z\n")
    listing(project)
    assert "copy@z" in [s["address"] for s in project.pivot_json("list", "out/z.txt")["stages"]]
    assert len(loads) == 2
    project.pivot_json("list", "out/z.txt")
    assert len(loads) == 2  # the same targets again: cached


def test_pivotfile_cache_notices_a_deleted_target(project, loads):
    # a target nobody produces is a load error, even after a cached load
    project.write("Pivotfile", WILDCARDS.replace('"out/b.txt"', '"out/b.txt", "notes.txt"'))
    project.write("notes.txt", "")
    listing(project)
    (project.root / "notes.txt").unlink()
    result = project.pivot("status", expect=1)
    assert "missing target 'notes.txt'" in result.stderr
    assert len(loads) == 2


def test_pivotfile_cache_outlives_a_deleted_input(project, loads):
    # a stage's input nobody produces is a dep like any other: deleting it
    # changes no stage, so the cached pipeline stays good
    project.write("Pivotfile", WILDCARDS)
    project.write("data/a.txt", "a\n")
    project.write("data/b.txt", "b\n")
    first = listing(project)
    (project.root / "data" / "b.txt").unlink()
    assert listing(project) == first
    assert len(loads) == 1


@pytest.mark.slow
def test_warm_status_in_a_real_process_skips_yaml(project):
    """Once the sources are older than the racy window, a new process loads
    the pipeline without importing the YAML parser or the resolver."""
    time.sleep(pivot.signature.RACY_WINDOW_NS / 1e9 + 0.2)
    project.pivot_proc("list")
    script = (
        "import sys; sys.argv = ['pivot', 'status']\n"
        "from pivot.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('yaml', 'pivot.frontends.dvcyaml') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"  # no stage tracks params, so nothing reads YAML
    assert "train@a" in out.stdout


def test_cache_made_by_other_code_is_ignored(project, loads, monkeypatch):
    first = listing(project)
    monkeypatch.setattr(cache, "_CODE", (*cache._CODE, "no/such/module.py"))
    assert listing(project) == first
    assert len(loads) == 2


def _header(ws) -> cache.CacheHeader:
    from pivot.frontends.safepickle import RestrictedUnpickler

    with open(ws.root / ".pivot" / cache.CACHE_NAME, "rb") as handle:
        return RestrictedUnpickler(handle, cache._allowed_classes()).load()


def _age_dirs(ws, seconds: float = 60) -> None:
    """Directories' mtimes in the past: an entry added now moves them for sure
    (a filesystem's clock ticks are coarser than a nanosecond)."""
    import os

    past = time.time() - seconds
    for dirpath, dirs, _ in os.walk(ws.root):
        dirs[:] = [d for d in dirs if d != ".pivot"]
        os.utime(dirpath, (past, past))


@pytest.mark.parametrize("change, expected", [
    ("new pipeline file", ["train@a", "train@b", "sub/dvc.yaml:extra", "sub/deeper/dvc.yaml:deep"]),
    ("new tracked file", ["train@a", "train@b", "sub/data.txt.dvc", "sub/deeper/dvc.yaml:deep"]),
    ("nested project", ["train@a", "train@b"]),
    ("renamed directory", ["train@a", "train@b", "moved/dvc.yaml:deep"]),
])
def test_listed_directories_stand_for_the_walk_until_one_changes(project, loads, change, expected):
    project.write("sub/deeper/dvc.yaml", "stages:\n  deep:\n    cmd: echo deep\n")
    project.write("sub/data.txt", "data\n")
    _age_dirs(project)
    assert [s["address"] for s in listing(project)] == ["train@a", "train@b", "sub/deeper/dvc.yaml:deep"]
    listed = dict(_header(project).listed)
    assert {".", "sub", "sub/deeper"} <= set(listed)  # the walk is not needed while these stand
    assert listing(project) and len(loads) == 1
    root = project.root
    if change == "new pipeline file":
        project.write("sub/dvc.yaml", "stages:\n  extra:\n    cmd: echo extra\n")
    elif change == "new tracked file":
        project.write("sub/data.txt.dvc", "outs:\n- md5: 0d599f0ec05c3bda8c3b8a68c32a1b47\n  path: data.txt\n")
    elif change == "nested project":
        (root / "sub" / ".pivot").mkdir()  # sub/ is a project of its own now
    else:
        (root / "sub" / "deeper").rename(root / "moved")
    assert [s["address"] for s in listing(project)] == expected
    assert len(loads) == 2


def test_the_walk_refreshes_the_signatures_once_settled(project, loads):
    project.write("data/a.csv", "1\n")
    _age_dirs(project)
    listing(project)
    first = dict(_header(project).listed)
    project.write("data/b.csv", "2\n")  # data/ changed: no pipeline file, the same stages
    listing(project)  # walked, and the header stored with data/'s new signature
    second = dict(_header(project).listed)
    assert second["data"] != first["data"] and second["."] == first["."]
    assert len(loads) == 1  # never loaded again: the walk found the same files


@pytest.mark.slow
def test_listed_directories_need_settled_signatures(project):
    """With the real racy window: directories changed just now are not
    trusted (the walk runs), and once settled they are recorded."""
    listing(project)
    assert not (project.root / ".pivot" / cache.CACHE_NAME).exists()  # everything is racy
    time.sleep(pivot.signature.RACY_WINDOW_NS / 1e9 + 0.2)
    listing(project)
    assert _header(project).listed is not None
    project.write("more/dvc.yaml", "stages:\n  more:\n    cmd: echo more\n")  # the root changes
    assert [s["address"] for s in listing(project)][-1] == "more/dvc.yaml:more"


def _fresh_load(project):
    from pivot.frontends import load_pipeline
    from pivot.project import Project

    return load_pipeline(Project(root=project.root, cwd=project.root))


def test_the_identity_is_what_the_pipeline_was_made_from(project, loads):
    """Known before the stages are pickled: the same files as they were give
    the same identity, loaded afresh or from the cache; an edit, another."""
    first = _fresh_load(project)
    assert first.identity
    assert _fresh_load(project).identity == first.identity and len(loads) == 1  # from the cache
    (project.root / ".pivot" / cache.CACHE_NAME).unlink()
    again = _fresh_load(project)
    assert len(loads) == 2 and again.identity == first.identity  # afresh: the same
    project.write("params.yaml", "lr: 0.5\n")
    edited = _fresh_load(project)
    assert len(loads) == 3 and edited.identity != first.identity


def test_a_large_pipeline_is_pickled_by_a_child_and_there_for_the_next_load(project, loads, monkeypatch):
    monkeypatch.setattr(cache, "PICKLED_ASIDE_FROM", 1)
    first = _fresh_load(project)
    # the next load waits for what this process is still writing, then reads it
    assert _fresh_load(project) == first and len(loads) == 1


@pytest.mark.slow
def test_a_large_pipeline_in_a_real_process(ws):
    """Over PICKLED_ASIDE_FROM stages, ``pivot plan`` leaves the pickling to
    a child process and waits for it before it exits: the cache is there,
    whole, for the next command, which takes its stages from it."""
    (ws.root / ".pivot").mkdir()
    samples = [f"s{i:04d}" for i in range(cache.PICKLED_ASIDE_FROM // 2 + 1)]
    ws.write("Pivotfile", "\n".join([
        f"SAMPLES = {samples!r}",
        'rule all:\n    input: expand("norm/{s}", s=SAMPLES)\n',
        'rule count:\n    input: "data/{s}.csv"\n    output: "count/{s}"\n    shell: "wc -l < {input} > {output}"\n',
        'rule norm:\n    input: "count/{s}"\n    output: "norm/{s}"\n    shell: "cat {input} > {output}"\n',
    ]))
    for sample in samples:
        ws.write(f"data/{sample}.csv", "x\n")
    time.sleep(pivot.signature.RACY_WINDOW_NS / 1e9 + 0.2)
    planned = ws.pivot_proc("plan", "--json").stdout
    assert (ws.root / ".pivot" / cache.CACHE_NAME).is_file()
    script = (
        "import sys, pivot.frontends as f\n"
        "from pivot.project import Project\n"
        "f._load = lambda *a: sys.exit('loaded afresh')\n"
        "p = f.load_pipeline(Project.discover())\n"
        "print(len(p.stages), p.identity)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ws.root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, identity = out.stdout.split()
    assert int(count) == 2 * len(samples) >= cache.PICKLED_ASIDE_FROM
    assert ws.pivot_proc("plan", "--json").stdout == planned
    assert identity != "None"
