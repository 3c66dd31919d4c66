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
from typing import Any

import pytest

from bench.generate import Shape, generate
from tests.conftest import Workspace
from tests.export_projects import PROJECTS

FORMATS = {"pivotfile": "Pivotfile", "dvc": "dvc.yaml"}


def pipeline_files(ws: Workspace) -> list[str]:
    """The pipeline files the stages come from, in discovery order."""
    return list(dict.fromkeys(stage["file"] for stage in ws.pivot_json("list")["stages"]))


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
    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy, ignore=shutil.ignore_patterns(".pivot"))
    return Workspace(copy)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("with_data", [False, True], ids=["fresh-clone", "data-pulled"])
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_projects_round_trip(ws, tmp_path, name: str, with_data: bool, fmt: str) -> None:
    PROJECTS[name]().write(ws.root, with_data=with_data)
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("stages", [93, pytest.param(1000, marks=pytest.mark.slow)])
def test_bench_workspaces_round_trip(tmp_path, stages: int, fmt: str) -> None:
    ws = Workspace(tmp_path / "bench")
    generate(ws.root, Shape.for_stages(stages, run_files=20))
    assert len(listing(ws)) == stages
    assert_round_trip(ws, make_copy(ws, tmp_path), fmt)


# ---------------------------------------------------------------- DVC's own shapes

CORPUS = Path(__file__).parent / "dvc_corpus"
# error cases do not load; URL deps are refused by planning; a nested
# project is not part of the one around it
CORPUS_CASES = sorted(
    case.name for case in CORPUS.iterdir()
    if case.is_dir() and not case.name.startswith("err_") and case.name not in ("url_deps", "nested_project")
    # a dvc.yaml inside an output directory is never read; only a dvc.yaml's
    # outputs prune discovery, so a Pivotfile's would make it a load error
    and not (case.name == "discovery_skips_output_dirs")
)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", CORPUS_CASES)
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
    multi-line string as DVC records it in dvc.lock."""
    shutil.copytree(Path(__file__).parent / "fixtures" / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    commands = "mkdir -p model\ncat prepared.txt data/dir/a.txt data/dir/b.txt > model/weights.txt\n"
    for relpath, as_written in (("dvc.yaml", "cmd: |\n      "), ("dvc.lock", "cmd: |\n      ")):
        text = ws.read(relpath)
        listed = "cmd:\n      - mkdir -p model\n      - cat" if relpath == "dvc.yaml" else "cmd:\n    - mkdir -p model\n    - cat"
        indent = "      " if relpath == "dvc.yaml" else "      "
        block = ("cmd: |\n" + "".join(f"{indent}{line}\n" for line in commands.splitlines())).rstrip("\n")
        assert listed in text, relpath
        start = text.index(listed)
        end = text.index("\n", text.index("model/weights.txt", start))
        ws.write(relpath, text[:start] + block + text[end:])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_project_dvc_ran_stays_up_to_date(ws, fmt: str) -> None:
    dvc_ran_project(ws)
    before = plan(ws)
    assert before["summary"]["adopted"] == 5 and before["summary"]["up_to_date"] == 5, before
    export_in_place(ws, fmt)
    after = plan(ws)
    assert [s["action"] for s in after["stages"]] == ["up to date"] * 5, after
