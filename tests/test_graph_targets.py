"""graph.py and targets.py on pipelines loaded from real dvc.yaml files."""

from __future__ import annotations

import time

import pytest

from pivot import graph, targets
from pivot.errors import PipelineError
from pivot.frontends import load_pipeline
from pivot.ir import Dep, Out, Stage
from pivot.project import Project
from pivot.state.statdb import RACY_WINDOW_NS

PIPELINE = """\
stages:
  prepare:
    cmd: echo
    outs: [data]
  train:
    foreach: [a, b]
    do:
      cmd: echo ${item}
      deps: [data/part]
      outs:
        - model-${item}
  report:
    cmd: echo
    deps: [model-a, model-b]
"""


def stage(name, deps=(), outs=()):
    return Stage(
        address=name, name=name, file="dvc.yaml", wdir=".", cmds=("true",),
        deps=tuple(Dep(d, d) for d in deps), outs=tuple(Out(o, o) for o in outs),
    )  # fmt: skip


def project_with(ws, text):
    ws.write("dvc.yaml", text)
    (ws.root / ".dvc").mkdir(exist_ok=True)
    return Project.discover(ws.root)


def test_edges_and_run_order(ws):
    proj = project_with(ws, PIPELINE)
    pipeline = load_pipeline(proj)
    assert pipeline.upstream["train@a"] == ("prepare",)  # dep inside an out dir
    assert pipeline.upstream["report"] == ("train@a", "train@b")
    assert graph.run_order(pipeline, ["report", "prepare"]) == ["prepare", "report"]


@pytest.mark.slow
def test_the_whole_run_order_is_worked_out_once_and_kept_in_the_cache(ws):
    proj = project_with(ws, """\
stages:
  report:
    cmd: echo
    deps: [model]
  train:
    cmd: echo
    deps: [data]
    outs: [model]
  prepare:
    cmd: echo
    outs: [data]
  other:
    cmd: echo
""")
    (ws.root / ".pivot").mkdir()
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)  # a file changed (ctime too) in the last two seconds is never cached
    built = load_pipeline(proj)
    cached = load_pipeline(proj)
    assert cached.identity is not None, "the second load came from the pipeline cache"
    for pipeline in (built, cached):
        expected = graph.run_order(pipeline, pipeline.by_address)
        assert expected == ["prepare", "train", "report", "other"]
        assert [s.address for s in pipeline.in_run_order] == expected
        assert [s.address for s in targets.select(pipeline, proj)] == expected
    by_hand = graph.Pipeline(stages=built.stages, upstream=built.upstream)  # not linked: worked out on demand
    assert [s.address for s in targets.select(by_hand, proj)] == expected


def test_dep_containing_outs_links_every_producer():
    pipeline = graph.build_pipeline([stage("a", outs=["d/x"]), stage("b", outs=["d/y"]), stage("c", deps=["d"])])
    assert pipeline.upstream["c"] == ("a", "b")


def test_targets_forms(ws):
    proj = project_with(ws, PIPELINE)
    ws.write("sub/dvc.yaml", "stages:\n  s:\n    cmd: echo\n    outs: [o]\n")
    pipeline = load_pipeline(proj)
    assert targets.resolve(pipeline, proj, "train") == ["train@a", "train@b"]
    assert targets.resolve(pipeline, proj, "train@b") == ["train@b"]
    assert targets.resolve(pipeline, proj, "sub/dvc.yaml:s") == ["sub/dvc.yaml:s"]
    assert targets.resolve(pipeline, proj, "sub/o") == ["sub/dvc.yaml:s"]
    assert targets.resolve(pipeline, proj, "data/part") == ["prepare"]
    assert [s.address for s in targets.select(pipeline, proj, ["report"])] == [
        "prepare", "train@a", "train@b", "report",
    ]  # fmt: skip
    sub = Project.discover(ws.root / "sub")
    assert targets.resolve(pipeline, sub, "s") == ["sub/dvc.yaml:s"]
    with pytest.raises(Exception, match="does not match"):
        targets.resolve(pipeline, proj, "nothing")


@pytest.mark.parametrize(
    "stages, phrase",
    [
        ([stage("a", outs=["x"]), stage("b", outs=["x"])], "output 'x' is specified in:\n\t- a\n\t- b"),
        ([stage("a", outs=["d"]), stage("b", outs=["d/y"])], "'d'('a')\n'd/y'('b')\noverlap"),
        ([stage("a", deps=["y"], outs=["x"]), stage("b", deps=["x"], outs=["y"])], "in stages: a, b."),
        ([stage("a", deps=["x"], outs=["x"])], "in stage: a ('x')"),
        ([stage("a"), stage("a")], "stage 'a' is defined twice"),
    ],
)
def test_graph_errors_name_the_stages(stages, phrase):
    with pytest.raises(PipelineError) as info:
        graph.build_pipeline(stages)
    assert phrase in str(info.value)


def test_output_dir_with_dvcyaml_inside_is_not_collected(ws):
    proj = project_with(ws, "stages:\n  gen:\n    cmd: echo\n    outs: [gen]\n")
    ws.write("gen/dvc.yaml", "stages:\n  hidden:\n    cmd: echo\n")
    assert [s.address for s in load_pipeline(proj).stages] == ["gen"]


def test_sources_list_every_file_read(ws):
    proj = project_with(ws, "vars:\n  - v.yaml\nstages:\n  s:\n    cmd: echo ${x} ${y}\n")
    ws.write("params.yaml", "x: 1\n")
    ws.write("v.yaml", "y: 2\n")
    assert load_pipeline(proj).sources == ("dvc.yaml", "params.yaml", "v.yaml")


def test_stage_location_is_recorded(ws):
    proj = project_with(ws, PIPELINE)
    pipeline = load_pipeline(proj)
    assert str(pipeline.stage("train@b").location) == "dvc.yaml:5"
    assert pipeline.stage("train@b").group == "train"
    assert pipeline.stage("report").cmd_literal == "echo"


CYCLE = """\
stages:
  first:
    cmd: echo
    deps: [in.txt]
    outs: [a.txt]
  a:
    cmd: echo
    deps: [a.txt, z]
    outs: [x]
  b:
    cmd: echo
    deps: [x]
    outs: [y]
  c:
    cmd: echo
    deps: [y]
    outs: [z]
  d:
    cmd: echo
    deps: [y]
    outs: [w]
"""


def test_a_cycle_is_named_from_where_the_walk_meets_it(ws):
    ws.write("dvc.yaml", CYCLE)
    with pytest.raises(PipelineError) as raised:
        load_pipeline(Project(ws.root, ws.root))
    assert str(raised.value) == (
        "Pipeline has a cycle: a -> b -> c -> a\n"
        "Same item(s) are defined as both a dependency and an output in stages: a, b, c."
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_linked_run_order_is_run_order_of_every_stage(seed):
    """Random DAGs, stages defined in shuffled order: the order worked out
    while linking (with the cycle check) is ``run_order``'s."""
    import random

    rng = random.Random(seed)
    count = 120
    stages = []
    for index in range(count):
        deps = sorted({f"o{rng.randrange(index)}" for _ in range(rng.randrange(4))} if index else set())
        stages.append(Stage(address=f"s{index}", name=f"s{index}", file="dvc.yaml", wdir=".", cmds=("true",),
                            deps=tuple(Dep(d, d) for d in deps), outs=(Out(f"o{index}", f"o{index}"),)))
    rng.shuffle(stages)
    pipeline = graph.build_pipeline(stages)
    order = [stage.address for stage in pipeline.in_run_order]
    assert order == graph.run_order(pipeline, pipeline.by_address)
    place = {address: position for position, address in enumerate(order)}
    assert all(place[u] < place[a] for a, ups in pipeline.upstream.items() for u in ups)
