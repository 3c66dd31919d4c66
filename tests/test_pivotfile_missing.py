"""A Pivotfile whose source data is not there yet (a fresh clone before
`pivot pull`) works as the same dvc.yaml does: every command sees the stages,
`status` calls the data deleted, `run` fails what reads it and blocks what
depends on that, `-k` runs the rest."""

from __future__ import annotations

import pytest

DVC_YAML = """\
stages:
  prepare:
    cmd: cat data/data.xml > prepared.txt
    deps:
    - data/data.xml
    - src/prepare.py
    outs:
    - prepared.txt
  featurize:
    cmd: wc -c prepared.txt > features.txt
    deps:
    - prepared.txt
    outs:
    - features.txt
  other:
    cmd: echo independent > other.txt
    outs:
    - other.txt
"""

PIVOTFILE = """\
rule prepare:
    input: "data/data.xml", "src/prepare.py"
    output: "prepared.txt"
    shell: "cat {input[0]} > {output}"

rule featurize:
    input: "prepared.txt"
    output: "features.txt"
    shell: "wc -c {input} > {output}"

rule other:
    output: "other.txt"
    shell: "echo independent > {output}"
"""

FRONT_ENDS = {"dvc.yaml": DVC_YAML, "Pivotfile": PIVOTFILE}


@pytest.fixture(params=sorted(FRONT_ENDS))
def fresh_clone(request, ws):
    """The project as cloned: code, no data."""
    ws.write(request.param, FRONT_ENDS[request.param])
    ws.write("src/prepare.py", "")
    return ws


def test_every_inspection_sees_the_stages(fresh_clone) -> None:
    ws = fresh_clone
    assert ws.pivot("list", "--name-only").stdout.split() == ["prepare", "featurize", "other"]
    assert "featurize  <- prepare" in ws.pivot("dag").stdout
    status = ws.pivot_json("status")
    assert status["prepare"][0] == {"changed deps": {"data/data.xml": "deleted", "src/prepare.py": "modified"}}
    assert [s["action"] for s in ws.pivot_json("plan")["stages"]] == ["run", "run", "run"]


def test_run_fails_the_stage_reading_missing_data_and_blocks_downstream(fresh_clone) -> None:
    ws = fresh_clone
    result = ws.pivot("run", "-k", expect=1)
    assert "FAILED prepare" in result.output
    assert "blocked featurize: upstream prepare failed" in result.output
    assert ws.read("other.txt") == "independent\n", "-k runs what does not depend on the missing data"

    ws.write("data/data.xml", "<posts/>\n")  # pulled
    ws.pivot("run")
    assert ws.read("features.txt").split()[0] == "9"


def test_same_answers_from_both_front_ends(tmp_path) -> None:
    from tests.conftest import Workspace

    answers = []
    for name, text in FRONT_ENDS.items():
        ws = Workspace(tmp_path / name)
        ws.write(name, text)
        ws.write("src/prepare.py", "")
        answers.append((ws.pivot_json("status"), ws.pivot_json("plan")))
    assert answers[0] == answers[1]
