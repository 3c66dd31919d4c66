"""``pivot export``: Pivotfile <-> dvc.yaml, and loading the export gives the same IR."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pivot.backends.export import pivotfile_string, to_dvcyaml, to_pivotfile
from pivot.errors import PivotError
from pivot.frontends import load_pipeline
from pivot.frontends.pivotfile_parse import Source, decode_string, parse
from pivot.ir import Stage
from pivot.project import Project

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Exercises what dvc.yaml can say: foreach (list and dict), matrix with a
# float (a dotted name), params of three kinds, out flags, metrics, plots,
# wdir, desc, frozen, always_changed, command lists, braces, quotes, `${`.
DVC_YAML = r"""
vars:
  - langs: [en, de]
stages:
  prep:
    foreach: ${langs}
    do:
      cmd: python prep.py "${item}" > 'out/${item} file.txt'
      deps:
        - prep.py
        - data/${item}.txt
      outs:
        - out/${item} file.txt
  train:
    matrix:
      alpha: [0.5, 1]
      lang: ${langs}
    cmd:
      - echo "{alpha}" ${item.alpha} \${HOME} > model-${key}.txt
      - awk '{print $1}' model-${key}.txt
    deps:
      - out/${item.lang} file.txt
    params:
      - train.lr
      - other.yaml: [seed]
      - whole.json:
    outs:
      - model-${key}.txt:
          persist: true
  "1e3":
    cmd: echo yes > yes
    outs: [yes]
    metrics:
      - m.json:
          cache: false
    plots: [p.csv]
    wdir: sub
    desc: 'a "quoted" desc: {x}'
    frozen: true
    always_changed: true
"""


def _stages(root: Path) -> list[Stage]:
    return list(load_pipeline(Project(root, root)).stages)


def _same_ir(left: list[Stage], right: list[Stage]) -> None:
    """Equal apart from the file they were read from."""
    assert [dataclasses.replace(s, file="-") for s in left] == [dataclasses.replace(s, file="-") for s in right]


def _seed_dvc_project(root: Path) -> None:
    (root / "dvc.yaml").write_text(DVC_YAML)
    for name in ("prep.py", "data/en.txt", "data/de.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_dvcyaml_to_pivotfile_round_trip(ws, tmp_path) -> None:
    _seed_dvc_project(ws.root)
    original = _stages(ws.root)
    assert {s.name for s in original} >= {"prep@en", "train@0.5-en", "1e3"}, "the dvc.yaml loaded"
    text = ws.pivot("export", "--to", "pivotfile").stdout
    assert 'rule "train@0.5-en":' in text and 'rule "1e3":' in text, text

    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy)
    (copy / "dvc.yaml").unlink()
    (copy / "Pivotfile").write_text(text)
    exported = _stages(copy)
    _same_ir(original, exported)
    assert exported[0].file == "Pivotfile"


def test_dvcyaml_to_dvcyaml_keeps_generated_names(ws, tmp_path) -> None:
    _seed_dvc_project(ws.root)
    original = _stages(ws.root)
    text = ws.pivot("export", "--to", "dvc").stdout
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "dvc.yaml").write_text(text)
    _same_ir(original, _stages(copy))


def test_pivotfile_to_dvcyaml_round_trip(ws, tmp_path) -> None:
    shutil.copytree(EXAMPLES / "pivotfile", ws.root, dirs_exist_ok=True)
    ws.write("Pivotfile", ws.read("Pivotfile") + '\nrule "odd name":\n    shell: "echo \'${{HOME}}\' {{}} > \\"q\\""\n    always_changed: true\n')
    original = _stages(ws.root)
    text = ws.pivot("export", "--to", "dvc").stdout
    assert "foreach:" in text and "${item.s0}" in text, "wildcard instances became a foreach"
    assert "\\${HOME}" in text, "literal ${ is escaped for DVC"

    copy = tmp_path / "copy"
    shutil.copytree(ws.root, copy)
    (copy / "Pivotfile").unlink()
    (copy / "dvc.yaml").write_text(text)
    exported = _stages(copy)
    _same_ir(original, exported)
    assert [s.name for s in exported][:3] == ["clean@en", "clean@de", "count@en"], "names kept"


def test_pivotfile_to_pivotfile_is_stable(ws) -> None:
    shutil.copytree(EXAMPLES / "pivotfile", ws.root, dirs_exist_ok=True)
    once = ws.pivot("export", "--to", "pivotfile").stdout
    ws.write("Pivotfile", once)
    twice = ws.pivot("export", "--to", "pivotfile").stdout
    assert once == twice, "exporting an export changes nothing"


def test_export_to_file_is_rebased_and_never_clobbers(ws) -> None:
    ws.write("Pivotfile", 'rule r:\n    input: "a.txt"\n    output: "b.txt"\n    shell: "cp {input} {output}"\n')
    ws.write("a.txt", "")
    ws.write("out/keep.txt", "")
    failed = ws.pivot("export", "--to", "dvc", "-o", "out/keep.txt", expect=1)
    assert "exists; pass --force" in failed.stderr
    assert ws.read("out/keep.txt") == "", "left alone"
    ws.pivot("export", "--to", "pivotfile", "-o", "out/keep.txt", "--force")
    assert ws.read("out/keep.txt").startswith("# Exported by `pivot export --to pivotfile`")

    (original,) = _stages(ws.root)
    result = ws.pivot("export", "--to", "dvc", "-o", "out/dvc.yaml")
    assert "Wrote 1 stage(s) to out/dvc.yaml" in result.stderr
    assert "wdir: .." in ws.read("out/dvc.yaml"), "paths stay right from the new directory"
    (ws.root / "Pivotfile").unlink()
    (exported,) = _stages(ws.root)
    assert exported.address == "out/dvc.yaml:r"
    assert (exported.wdir, exported.deps, exported.outs) == (original.wdir, original.deps, original.outs)


def test_export_targets_take_their_upstream(ws) -> None:
    shutil.copytree(EXAMPLES / "pivotfile", ws.root, dirs_exist_ok=True)
    text = ws.pivot("export", "--to", "pivotfile", "count@de").stdout
    assert 'rule "clean@de":' in text and 'rule "count@de":' in text
    assert "clean@en" not in text and "report" not in text


def test_export_single_item_leaves_upstream_out(ws) -> None:
    shutil.copytree(EXAMPLES / "pivotfile", ws.root, dirs_exist_ok=True)
    text = ws.pivot("export", "--to", "pivotfile", "-s", "count@de").stdout
    assert 'rule "count@de":' in text and "clean@de" not in text


@pytest.mark.parametrize(
    "text",
    ["plain", 'with "quotes" and \\ backslash', "tab\there\nnewline", "ünïcode ✓", "\x01ctrl"],
)
def test_pivotfile_strings_round_trip(text: str) -> None:
    assert decode_string(pivotfile_string(text)) == text


def test_yaml_scalars_stay_strings_for_yaml_1_2(ws) -> None:
    stage = Stage(
        address="x", name="x", file="dvc.yaml", wdir=".", cmds=("true",),
    )
    stages = [dataclasses.replace(stage, name=name, address=name) for name in ("1e3", "null", "yes", "0o17", ".5", "0x1F")]
    text = to_dvcyaml(stages)
    for name in ("1e3", "null", "yes", "0o17", ".5", "0x1F"):
        assert f'"{name}":' in text, f"{name} is quoted in:\n{text}"


def test_name_clash_is_an_error() -> None:
    stage = Stage(address="a", name="a", file="dvc.yaml", wdir=".", cmds=("true",))
    with pytest.raises(PivotError, match="share the name 'a'"):
        to_pivotfile([stage, dataclasses.replace(stage, address="sub/dvc.yaml:a", file="sub/dvc.yaml")])


def test_exported_pivotfile_parses(ws) -> None:
    _seed_dvc_project(ws.root)
    text = to_pivotfile(_stages(ws.root), header="a header\nover two lines")
    assert text.startswith("# a header\n# over two lines\n")
    assert len(parse(Source("Pivotfile", text))) == 7, "one rule per stage"
