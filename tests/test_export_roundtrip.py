"""`pivot export` round trips on realistic projects: every pipeline file
exported and put in place of the original gives the same `list --json` and
the same `plan --json`, with the raw data pulled or not.

The projects (``tests/export_projects.py``) are shaped like public DVC
projects and a Snakemake-style Pivotfile project; the bench workspaces are
the 93- and 1,000-stage eval pipelines of ``bench/generate.py``.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from bench.generate import Shape, generate, touch_param
from tests.conftest import Workspace
from tests.export_projects import PROJECTS

FORMATS = {"pivotfile": "Pivotfile", "dvc": "dvc.yaml"}


def pipeline_files(ws: Workspace) -> list[str]:
    """The pipeline files the stages come from, in discovery order (data
    tracked by ``.dvc`` files stays as it is)."""
    files = dict.fromkeys(stage["file"] for stage in ws.pivot_json("list")["stages"])
    return [relpath for relpath in files if posixpath.basename(relpath) in FORMATS.values()]


def export_in_place(ws: Workspace, fmt: str) -> dict[str, str]:
    """Replace every pipeline file by its export, one file at a time, as a
    user would: ``pivot export --to FMT -s -o DIR/NEW FILE``, then remove
    FILE.  Returns old file -> new file."""
    renamed: dict[str, str] = {}
    for relpath in pipeline_files(ws):
        new = posixpath.join(posixpath.dirname(relpath), FORMATS[fmt])
        ws.pivot("export", "--to", fmt, "-s", "-o", new, "--force", relpath)
        if new != relpath:
            (ws.root / relpath).unlink()
        renamed[relpath] = new
    return renamed


def renamed_json(data: Any, renamed: dict[str, str]) -> Any:
    """``data`` with every address and file of the original named as the export's."""
    text = json.dumps(data)
    for old, new in renamed.items():
        # "sub/dvc.yaml", "sub/dvc.yaml:x" and, in reason texts, 'sub/dvc.yaml:x'
        text = re.sub(r"""(?<=["'])""" + re.escape(old) + r"""(?=["':])""", new, text)
    return json.loads(text)


def listing(ws: Workspace) -> list[dict[str, Any]]:
    return ws.pivot_json("list")["stages"]


def plan(ws: Workspace) -> dict[str, Any]:
    return ws.pivot_json("plan")


def assert_round_trip(original: Workspace, copy: Workspace, fmt: str) -> None:
    before_list, before_plan = listing(original), plan(original)
    renamed = export_in_place(copy, fmt)
    after_list = listing(copy)
    assert len(after_list) == len(before_list)
    expected = renamed_json(before_list, renamed)
    for want, got in zip(expected, after_list):
        assert got == want, f"{want['address']} differs after export to {fmt}"
    assert plan(copy) == renamed_json(before_plan, renamed)


def make_copy(ws: Workspace, tmp_path: Path) -> Workspace:
    """The project with its state, to export in place of the original."""
    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy, symlinks=True)
    return Workspace(copy)


STATES = ("fresh-clone", "data-pulled", "ran")


def bring_to(ws: Workspace, state: str, edit: Callable[[], None]) -> None:
    """``ran``: every stage recorded as run (``pivot commit``), then ``edit``
    makes part of the pipeline stale, so the plan holds every kind of decision."""
    if state == "ran":
        write_outs(ws)
        ws.pivot("commit", "-q")
        edit()


# hundreds of stages: over a second each
LARGE = ("fanout", "snakemake_style")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=[pytest.mark.slow] if name in LARGE else []) for name in sorted(PROJECTS)]
)
def test_projects_round_trip(ws, tmp_path, name: str, state: str, fmt: str) -> None:
    project = PROJECTS[name]()
    project.write(ws.root, with_data=state != "fresh-clone")
    bring_to(ws, state, lambda: ws.write(project.raw[0], "pulled again, changed\n"))
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(
    ("stages", "state"),
    [(93, "data-pulled"), (93, "ran"), (1000, "data-pulled"), (1000, "ran")],
)
@pytest.mark.slow
def test_bench_workspaces_round_trip(tmp_path, stages: int, state: str, fmt: str) -> None:
    ws = Workspace(tmp_path / "bench")
    generate(ws.root, Shape.for_stages(stages, run_files=20))
    assert len(listing(ws)) == stages
    bring_to(ws, state, lambda: touch_param(ws.root, 300))
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


# ---------------------------------------------------------------- DVC's own shapes

CORPUS = Path(__file__).parent / "dvc_corpus"
LEFT_OUT = (
    "url_deps",  # refused by planning
    "nested_project",  # a project of its own, not part of the one around it
)
CORPUS_CASES = [
    (case.name, fmt)
    for case in sorted(CORPUS.iterdir())
    if case.is_dir() and not case.name.startswith("err_") and case.name not in LEFT_OUT
    for fmt in sorted(FORMATS)
    # A dvc.yaml inside an output directory is never read; only a dvc.yaml
    # stage's outputs prune discovery, so as a Pivotfile's it would be found
    # and its directory refused as an output (docs/pivotfile.md, `pivot export`).
    if (case.name, fmt) != ("discovery_skips_output_dirs", "pivotfile")
]


@pytest.mark.parametrize(("case", "fmt"), CORPUS_CASES)
@pytest.mark.slow
def test_dvc_corpus_round_trips(ws, tmp_path, case: str, fmt: str) -> None:
    shutil.copytree(CORPUS / case, ws.root, dirs_exist_ok=True)
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


# ---------------------------------------------------------------- with state

def write_outs(ws: Workspace) -> None:
    """Every stage's outs as if it had run (directories stay directories)."""
    for stage in listing(ws):
        for out in stage["outs"]:
            path = ws.root / out["path"]
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{out['path']}\n")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_records_follow_the_stages_to_the_new_file(ws, fmt: str) -> None:
    # Lock records are keyed by address, and `sub/dvc.yaml:x` becomes
    # `sub/Pivotfile:x`: exporting over a pipeline file carries them over,
    # so what was up to date stays up to date.
    PROJECTS["monorepo"]().write(ws.root, with_data=True)
    write_outs(ws)
    ws.pivot("commit", "-q")
    ws.write("pipelines/train/params.yaml", "epochs: 20\ntrain:\n  optimizer: adam\n")  # train and downstream are stale
    before = plan(ws)
    assert {s["action"] for s in before["stages"]} == {"run", "up to date", "record frozen"}, before
    renamed = export_in_place(ws, fmt)
    assert plan(ws) == renamed_json(before, renamed)


def dvc_ran_project(ws: Workspace) -> None:
    """A project DVC ran (tests/fixtures/dvclock), its `train` command a
    multi-line string, which dvc.lock records as written."""
    shutil.copytree(Path(__file__).parent / "fixtures" / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    cat = "cat prepared.txt data/dir/a.txt data/dir/b.txt > model/weights.txt"
    as_string = f"    cmd: |\n      mkdir -p model\n      {cat}\n"
    for relpath, as_list in (
        ("dvc.yaml", f"    cmd:\n      - mkdir -p model\n      - {cat}\n"),
        ("dvc.lock", f"    cmd:\n    - mkdir -p model\n    - {cat}\n"),
    ):
        assert as_list in ws.read(relpath)
        ws.write(relpath, ws.read(relpath).replace(as_list, as_string))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_project_dvc_ran_stays_up_to_date(ws, fmt: str) -> None:
    dvc_ran_project(ws)
    before = plan(ws)
    assert before["summary"]["adopted"] == 5 and before["summary"]["up_to_date"] == 5, before
    export_in_place(ws, fmt)
    after = plan(ws)
    assert [s["action"] for s in after["stages"]] == ["up to date"] * 5, after


# ---------------------------------------------------------------- odd corners

ODD_STAGES = {
    "dep-listed-twice": "stages:\n  s:\n    cmd: cat a a\n    deps: [a, a, ./a]\n",
    "dotted-wdir": "stages:\n  s:\n    wdir: ./sub/\n    cmd: echo\n    deps: [../a]\n    outs: [out/]\n",
    "out-listed-twice": "stages:\n  s:\n    cmd: echo\n    outs: [o, {o: {cache: false}}]\n",
    "persisted-metric": "stages:\n  s:\n    cmd: echo\n    metrics: [{m.json: {persist: true}}]\n    plots: [{p: {cache: false, persist: true}}]\n",
    "empty-desc": "stages:\n  s:\n    cmd: echo\n    desc: ''\n",
    "foreach-scalars": "stages:\n  s:\n    foreach: [1, 2.5, true, null]\n    do:\n      cmd: echo ${item}\n",
    "colon-in-name": "stages:\n  'a:b':\n    cmd: echo\n",
    "trailing-newline": 'stages:\n  s:\n    cmd: "echo a\\n"\n',
    "newline-in-list": 'stages:\n  s:\n    cmd:\n    - "echo a\\necho b"\n    - echo c\n',
    "params-empty-list": "stages:\n  s:\n    cmd: echo\n    params: [{p.yaml: []}, {q.yaml: [a]}, x]\n",
    "frozen-foreach": "stages:\n  s:\n    foreach: {a: {x: 1}, b: {x: 2}}\n    do:\n      cmd: echo ${item.x}\n      frozen: true\n",
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", sorted(ODD_STAGES))
def test_odd_stages_round_trip(ws, tmp_path, name: str, fmt: str) -> None:
    ws.write("dvc.yaml", ODD_STAGES[name])
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


def test_a_stage_without_command_is_refused_for_a_pivotfile(ws) -> None:
    # a rule without `shell` is a target-only rule: writing one would lose the stage
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: []\n    deps: [a]\n")
    result = ws.pivot("export", "--to", "pivotfile", expect=1)
    assert result.stderr == "ERROR: stage 's' has no command, which a Pivotfile rule cannot express\n"


ODD_RULES = {
    "slash-in-value": 'rule all:\n    input: "out/x/y.txt", "out/a b.txt"\n'
                      'rule copy:\n    input: "src/{p}.txt"\n    output: "out/{p}.txt"\n    shell: "cp {input} {output}"\n',
    "dollars": 'rule r:\n    output: "o"\n    shell: "echo ${{HOME}} \\\\${{X}} $$ > {output}"\n',
    "script-per-value": 'rule all:\n    input: "o/a", "o/b"\n'
                        'rule r:\n    output: "o/{x}"\n    shell:\n        """\n        echo {wildcards.x}\n        touch {output}\n        """\n',
    "wildcard-params-in-wdir": 'rule all:\n    input: "sub/o/a"\n'
                               'rule r:\n    output: "o/{x}"\n    wdir: "sub"\n    params: "p.{x}"\n    shell: "touch {output}"\n',
    "yaml-lookalike-values": 'rule all:\n    input: "o/yes", "o/1e3", "o/null", "o/-x"\n'
                             'rule r:\n    output: "o/{x}"\n    shell: "touch {output} # {wildcards.x}: yes"\n',
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", sorted(ODD_RULES))
def test_odd_rules_round_trip(ws, tmp_path, name: str, fmt: str) -> None:
    ws.write("Pivotfile", ODD_RULES[name])
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)
