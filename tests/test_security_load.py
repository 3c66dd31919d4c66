"""Issue 11, items 1 and 3: a pipeline file from a checkout cannot name an
output or a working directory outside the project.

Every test builds a real project next to a decoy directory (never a real
system path), runs a real command, and checks that the command refuses
with one line naming the pipeline file, the stage and the path, and that
the decoy is exactly as it was.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

COMMANDS = [("status",), ("plan",), ("commit",), ("checkout",), ("run",), ("emit", "sh"), ("emit", "ninja")]


def _decoy(ws) -> Path:
    """A directory next to the project holding files a user would miss."""
    decoy = ws.root.parent / "decoy"
    (decoy / "sub").mkdir(parents=True, exist_ok=True)
    (decoy / "precious.txt").write_text("precious\n")
    (decoy / "sub" / "b.txt").write_text("also precious\n")
    return decoy


def _tree(path: Path) -> dict[str, bytes | None]:
    """Every entry below ``path``: file contents, None for directories."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(dirpath, name), path)] = None
        for name in files:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, path)] = Path(full).read_bytes()
    return found


def _refused(result, *fragments: str) -> str:
    """The one-line error of a refused command, checked for ``fragments``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    error = result.stderr.strip()
    assert error.startswith("ERROR: ") and "\n" not in error, error
    for fragment in fragments:
        assert fragment in error, error
    return error


def _plant_restorable_record(ws, path: str) -> None:
    """A lock record and an (empty) directory object in .pivot, as a crafted
    checkout could ship them: checkout would "restore" ``path`` empty."""
    digest = "99aa06d3014798d86001c324468d497f.dir"
    record = {"address": "s", "cmd": ["echo hello"], "deps": [], "params": {}, "version": 1,
              "outs": [{"hash": digest, "nfiles": 0, "path": path, "size": 0}]}
    (ws.root / ".pivot" / "locks").mkdir(parents=True, exist_ok=True)
    (ws.root / ".pivot" / "locks" / "s.json").write_text(json.dumps(record))
    obj = ws.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_text("[]")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("how", ["dotdot", "absolute", "deep-dotdot"])
def test_an_out_outside_the_project_is_refused_by_every_command(ws, command, how) -> None:
    decoy = _decoy(ws)
    written = {"dotdot": "../decoy", "absolute": str(decoy), "deep-dotdot": "a/b/../../../decoy"}[how]
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo hello\n    outs: ['{written}']\n")
    _plant_restorable_record(ws, "../decoy")
    before = _tree(decoy)
    result = ws.pivot(*command, expect=None)
    _refused(result, "dvc.yaml:2", "stage 's'", f"output '{written}'", "outside the project")
    assert _tree(decoy) == before


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("written", ["/", ".", "sub/.."])
def test_the_file_system_root_or_the_project_itself_is_never_an_output(ws, command, written) -> None:
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo hello\n    outs: ['{written}']\n")
    ws.write("keep.txt", "mine\n")
    result = ws.pivot(*command, expect=None)
    reason = "absolute path outside the project" if written == "/" else "the project root itself"
    _refused(result, "dvc.yaml:2", "stage 's'", f"output '{written}'", reason)
    assert ws.read("keep.txt") == "mine\n" and ws.read("dvc.yaml").startswith("stages:")


@pytest.mark.parametrize("section", ["metrics", "plots"])
def test_metrics_and_plots_outside_are_refused_too(ws, section) -> None:
    decoy = _decoy(ws)
    before = _tree(decoy)
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo 1 > ../decoy/m.json\n    {section}: [../decoy/m.json]\n")
    _refused(ws.pivot("run", expect=None), "stage 's'", f"{section[:-1]} '../decoy/m.json'")
    assert _tree(decoy) == before


def test_checkout_of_a_crafted_state_never_empties_a_directory_outside(ws) -> None:
    """The issue's first reproduction: enough ``..`` to reach the decoy."""
    decoy = _decoy(ws)
    climb = "../" * (len(ws.root.parts) + 3) + str(decoy).lstrip("/")
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo hello\n    outs: ['{climb}']\n")
    _plant_restorable_record(ws, climb)
    before = _tree(decoy)
    _refused(ws.pivot("checkout", expect=None), "dvc.yaml:2", "stage 's'", "outside the project")
    assert _tree(decoy) == before


def test_commit_does_not_record_or_link_a_file_outside(ws) -> None:
    decoy = _decoy(ws)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hello\n    outs: [../decoy/precious.txt]\n")
    (ws.root / ".pivot").mkdir()
    before = _tree(decoy)
    _refused(ws.pivot("commit", expect=None), "output '../decoy/precious.txt'")
    assert _tree(decoy) == before and not (decoy / "precious.txt").is_symlink()
    assert not (ws.root / ".pivot" / "locks" / "s.json").exists()


@pytest.mark.parametrize("wdir", ["..", "../decoy", "/"])
def test_a_wdir_outside_the_project_is_refused(ws, wdir) -> None:
    decoy = _decoy(ws)
    before = _tree(decoy)
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo hi > out.txt\n    wdir: '{wdir}'\n    outs: [out.txt]\n")
    _refused(ws.pivot("run", expect=None), "dvc.yaml:2", "stage 's'", "refusing wdir")
    assert _tree(decoy) == before


def test_a_wdir_in_a_subdirectory_may_climb_back_to_the_root(ws) -> None:
    ws.write("sub/dvc.yaml", "stages:\n  s:\n    cmd: echo hi > out.txt\n    wdir: ..\n    outs: [out.txt]\n")
    ws.pivot("run")
    assert ws.read("out.txt") == "hi\n"


def test_an_out_below_a_committed_symlink_to_outside_is_refused(ws) -> None:
    decoy = _decoy(ws)
    (ws.root / "link").symlink_to(decoy)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hello > link/sub/b.txt\n    outs: [link/sub]\n")
    before = _tree(decoy)
    for command in COMMANDS:
        _refused(ws.pivot(*command, expect=None), "stage 's'", "output 'link/sub'", "symlink", str(decoy))
    assert _tree(decoy) == before


def test_a_symlinked_wdir_leading_outside_is_refused(ws) -> None:
    decoy = _decoy(ws)
    (ws.root / "link").symlink_to(decoy)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > o.txt\n    wdir: link\n    outs: [o.txt]\n")
    _refused(ws.pivot("run", expect=None), "stage 's'", "wdir 'link'", "symlink")
    assert not (decoy / "o.txt").exists()


def test_a_symlink_to_a_directory_inside_the_project_is_fine(ws) -> None:
    (ws.root / "real").mkdir()
    (ws.root / "link").symlink_to("real")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > link/o.txt\n    outs: [link/o.txt]\n")
    ws.pivot("run")
    assert ws.read("real/o.txt") == "hi\n"


def test_deps_outside_the_project_stay_allowed(ws) -> None:
    """DVC allows ``deps: [../shared.txt]``; so does pivot."""
    decoy = _decoy(ws)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cat ../decoy/precious.txt > copy.txt\n"
                         "    deps: [../decoy/precious.txt]\n    outs: [copy.txt]\n")
    ws.pivot("run")
    assert ws.read("copy.txt") == "precious\n"
    assert (decoy / "precious.txt").read_text() == "precious\n"


def test_a_foreach_member_with_an_outside_out_is_named(ws) -> None:
    _decoy(ws)
    ws.write("dvc.yaml", """\
        stages:
          copy:
            foreach: [ok, ../decoy]
            do:
              cmd: echo ${item} > ${item}.txt
              outs: ["${item}.txt"]
        """)
    _refused(ws.pivot("status", expect=None), "dvc.yaml:2", "stage 'copy@../decoy'", "output '../decoy.txt'")


# ---------------------------------------------------------------- Pivotfile


@pytest.mark.parametrize("output", ['"../decoy"', '"/"', '"."', '"{x}/../../decoy"', 'directory("../decoy/{x}")'])
def test_a_pivotfile_output_outside_is_refused_where_it_is_written(ws, output) -> None:
    decoy = _decoy(ws)
    before = _tree(decoy)
    ws.write("Pivotfile", f'rule r:\n    output: {output}\n    shell: "touch {{output}}"\n')
    result = ws.pivot("run", expect=None)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.startswith("ERROR: Pivotfile:2:") and "rule 'r'" in result.stderr
    assert "refusing output" in result.stderr
    assert _tree(decoy) == before


def test_a_pivotfile_wdir_outside_is_refused(ws) -> None:
    _decoy(ws)
    ws.write("Pivotfile", 'rule r:\n    wdir: "../decoy"\n    output: "o.txt"\n    shell: "touch {output}"\n')
    result = ws.pivot("run", expect=None)
    assert result.exit_code != 0 and result.stderr.startswith("ERROR: Pivotfile:2:5: refusing wdir '../decoy'")
    assert not (ws.root.parent / "decoy" / "o.txt").exists()


def test_a_pivotfile_output_below_a_symlink_to_outside_is_refused(ws) -> None:
    decoy = _decoy(ws)
    (ws.root / "link").symlink_to(decoy)
    ws.write("Pivotfile", 'rule r:\n    output: "link/new.txt"\n    shell: "touch {output}"\n')
    _refused(ws.pivot("run", expect=None), "Pivotfile:1", "stage 'r'", "output 'link/new.txt'", "symlink")
    assert not (decoy / "new.txt").exists()


def test_a_wildcard_rule_never_claims_an_input_outside_the_project(ws) -> None:
    """An input outside is a source file: ``{name}.txt`` must not become a
    stage writing ``../decoy/precious.txt``."""
    decoy = _decoy(ws)
    before = _tree(decoy)
    rule_make = 'rule make:\n    output: "{name}.txt"\n    shell: "echo made > {output}"\n'
    ws.write("Pivotfile", 'rule use:\n    input: "../decoy/precious.txt", "../decoy/sub/b.txt"\n'
             '    output: "both"\n    shell: "cat {input} > {output}"\n' + rule_make)
    ws.pivot("run")
    assert ws.read("both") == "precious\nalso precious\n"
    assert _tree(decoy) == before
    ws.write("Pivotfile", f'rule use:\n    input: "{decoy}/precious.txt"\n    output: "o"\n    shell: "true"\n'
             + rule_make)
    assert [s["name"] for s in ws.pivot_json("list")["stages"]] == ["use"]


def test_a_wildcard_value_cannot_carry_an_output_outside(ws) -> None:
    """Two outputs sharing a wildcard: a value matched inside the project
    (``a../b`` gives x = ``./b``) would put the other one at ``../b``."""
    ws.write("Pivotfile", '''\
        rule pair:
            output: "a.{x}", ".{x}"
            shell: "touch {output}"
        rule want:
            input: "a../b"
            output: "w.txt"
            shell: "touch {output}"
        ''')
    _refused(ws.pivot("status", expect=None), "stage 'pair@./b'", "output '../b'", "outside the project")


# ---------------------------------------------------------------- pipeline cache


def test_a_cached_pipeline_with_an_out_outside_is_refused(ws, monkeypatch) -> None:
    """``.pivot/pipeline.pickle`` can come with a checkout too: what is taken
    from it is checked like a freshly loaded pipeline."""
    decoy = _decoy(ws)
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hello > out.txt\n    outs: [out.txt]\n")
    monkeypatch.setattr("pivot.signature.RACY_WINDOW_NS", 0)  # every file counts as settled
    ws.pivot("run")
    ws.pivot("status")  # .pivot/ exists now: the loaded pipeline is cached
    cache = ws.root / ".pivot" / "pipeline.pickle"
    with open(cache, "rb") as handle:
        # two pickles, each with its own memo, as pivot writes them
        header, pipeline = pickle.Unpickler(handle).load(), pickle.Unpickler(handle).load()
    (stage,) = pipeline.stages
    out = replace(stage.outs[0], path="../decoy", def_path="../decoy")
    crafted = replace(pipeline, stages=(replace(stage, outs=(out,)),))
    with open(cache, "wb") as handle:
        from pivot.frontends.cache import _dispatch_table

        for record in (header, crafted):
            pickler = pickle.Pickler(handle)
            pickler.dispatch_table = _dispatch_table()  # as pivot writes it, whatever this Python's enum pickling
            pickler.dump(record)
    _plant_restorable_record(ws, "../decoy")
    before = _tree(decoy)
    _refused(ws.pivot("checkout", expect=None), "stage 's'", "output '../decoy'", "outside the project")
    assert _tree(decoy) == before


class _Planted:
    """What a hostile ``.pivot/`` could hold: a pickle that runs a command
    when it is loaded (here it only touches a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_planted_load_caches_are_never_unpickled_into_code(ws) -> None:
    from pivot.frontends.pivotfile_parse import _StatementCache

    marker = ws.root.parent / "pwned"
    evil = pickle.dumps(_Planted(marker))
    ws.write("Pivotfile", 'rule r:\n    output: "o.txt"\n    shell: "echo hi > {output}"\n')
    parser = ws.root / ".pivot" / "parser"
    (parser / "statements").mkdir(parents=True)
    (ws.root / ".pivot" / "pipeline.pickle").write_bytes(evil)
    _StatementCache(parser, "Pivotfile").path.write_bytes(evil)
    ws.pivot("run")
    assert ws.read("o.txt") == "hi\n"
    assert not marker.exists()


def test_a_wildcard_rule_never_claims_the_project_root(ws) -> None:
    ws.write("Pivotfile", 'rule all:\n    input: "."\nrule any:\n    output: "{name}"\n    shell: "touch {output}"\n')
    assert ws.pivot_json("list")["stages"] == []


def test_an_out_that_is_a_symlink_to_outside_is_never_read_into_the_cache(ws) -> None:
    """``data -> ../decoy`` committed with ``outs: [data]``: status would hash
    the decoy and commit would copy it into the cache (and checkout would
    later write it into the project)."""
    decoy = _decoy(ws)
    (ws.root / "data").symlink_to(decoy)
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi\n    outs: [data]\n")
    before = _tree(decoy)
    for command in COMMANDS:
        _refused(ws.pivot(*command, expect=None), "stage 's'", "output 'data'", f"symlink to '{decoy}'")
    assert _tree(decoy) == before and (ws.root / "data").is_symlink()
    assert not (ws.root / ".pivot" / "cache").exists()


def test_a_symlink_to_outside_among_many_outs_of_one_directory_is_refused(ws) -> None:
    """Past a few outs in one directory, the directory is listed once for
    its symlinks instead of an ``lstat`` an out: the link is still found."""
    decoy = _decoy(ws)
    (ws.root / "out").mkdir()
    for i in range(20):
        if i != 13:
            (ws.root / "out" / f"o{i}").write_text("made\n")
    (ws.root / "out" / "o13").symlink_to(decoy)
    (ws.root / ".pivot").mkdir()
    names = ", ".join(f'"{i}"' for i in range(20))
    ws.write("Pivotfile", f'rule all:\n    input: expand("out/o{{i}}", i=[{names}])\n'
                          'rule make:\n    output: "out/o{i}"\n    shell: "echo {wildcards.i} > {output}"\n')
    for command in COMMANDS:
        _refused(ws.pivot(*command, expect=None), "stage 'make@13'", "output 'out/o13'", f"symlink to '{decoy}'")
    (ws.root / "out" / "o13").unlink()
    (ws.root / "out" / "o13").symlink_to(ws.root / "out" / "o1")  # a link inside the project is fine
    assert ws.pivot("list").exit_code == 0


def test_outputs_linked_into_the_cache_stay_loadable(ws) -> None:
    ws.write(".pivot/config", "[cache]\ntype = symlink\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n")
    ws.pivot("run")
    assert (ws.root / "o.txt").is_symlink()
    (ws.root / ".pivot" / "pipeline.pickle").unlink(missing_ok=True)  # a fresh load checks links too
    assert ws.pivot_json("status") == {}


def test_load_caches_are_not_written_through_a_state_directory_linked_outside(ws) -> None:
    decoy = _decoy(ws)
    (ws.root / ".pivot").mkdir()
    (ws.root / ".pivot" / "parser").symlink_to(decoy)
    ws.write("Pivotfile", 'rule r:\n    output: "o.txt"\n    shell: "echo hi > {output}"\n')
    before = _tree(decoy)
    assert [s["name"] for s in ws.pivot_json("list")["stages"]] == ["r"]
    assert _tree(decoy) == before
