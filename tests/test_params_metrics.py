"""params/metrics commands and ``pivot.api.params_show`` against real DVC.

tests/fixtures/evalproj holds a small evaluation pipeline, the steps it goes
through (param edits, runs, commits, broken metrics files) and what DVC
3.67.1 printed after each step (scripts/regen_params_metrics.py).  The same
steps are replayed here with pivot, once in a git repository (revisions
given as DVC was given them) and once without git (revisions replaced by
the ids of the runs that made those commits), and every ``--json`` output
must equal DVC's; tables must match DVC's too (rows in any order where DVC's
order is a set's).  DVC itself is not needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "evalproj"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
STEPS = json.loads((FIXTURE / "steps.json").read_text())
CORPUS = Path(__file__).parent / "dvc_corpus"
CORPUS_EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "params_show_corpus.json").read_text())
REVISION = re.compile(r"^HEAD(~\d+)?$")
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def stage_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python3`` in stage commands is this interpreter (pivot importable)."""
    bin_dir = tmp_path / "stage-bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("PIVOT_ROOT", "PIVOT_STAGE", "DVC_ROOT", "DVC_STAGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def as_recorded(data):
    """Through JSON, as DVC's answers were recorded (int keys become strings)."""
    return json.loads(json.dumps(data))


def without_messages(data):
    """Error messages are pivot's own; their type and place must match DVC's."""
    if isinstance(data, dict):
        return {k: (None if k == "msg" else without_messages(v)) for k, v in data.items()}
    return data


class Replay:
    """The eval project taken through the recorded steps by pivot."""

    def __init__(self, ws, use_git: bool) -> None:
        self.ws = ws
        self.use_git = use_git
        self.commits: list[str] = []  # run id behind each commit, oldest first
        shutil.copytree(FIXTURE / "project", ws.root, dirs_exist_ok=True)
        (ws.root / ".pivot").mkdir()
        if use_git:
            git(ws.root, "init", "-q")
            git(ws.root, "add", "-A")
            git(ws.root, "commit", "-q", "-m", "init")

    def last_run(self) -> str:
        return self.ws.pivot_json("log")[0]["run_id"]

    def apply(self, step: dict) -> None:
        for relpath, text in step.get("edit", {}).items():
            path = self.ws.root / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for relpath in step.get("delete", []):
            (self.ws.root / relpath).unlink()
        if step.get("run"):
            self.ws.pivot("run", "-j", "1")
        if step.get("commit"):
            self.commits.append(self.last_run())
            if self.use_git:
                git(self.ws.root, "add", "-A")
                git(self.ws.root, "commit", "-q", "-m", step["name"])

    def argv(self, dvc_argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """pivot's arguments for DVC's, and the labels to write back as DVC
        named them.  DVC's default A is HEAD; pivot's is the last run, so
        HEAD is always given."""
        revisions = [a for a in dvc_argv[2:] if REVISION.match(a)]
        options = [a for a in dvc_argv[2:] if not REVISION.match(a)]
        if not revisions:
            revisions = ["HEAD"]
        labels: dict[str, str] = {}
        if not self.use_git:
            named = []
            for rev in revisions:
                back = int(rev.partition("~")[2] or 0)
                run_id = self.commits[-1 - back]
                labels[run_id] = rev
                named.append(run_id)
            revisions = named
        return [*dvc_argv[:2], *revisions, *options] if dvc_argv[1] == "diff" else dvc_argv, labels


def check_command(replay: Replay, recorded: dict) -> None:
    argv, labels = replay.argv(recorded["argv"])
    result = replay.ws.pivot(*argv, expect=recorded["returncode"])
    assert "Traceback" not in result.stderr
    where = f"pivot {' '.join(argv)} (dvc {' '.join(recorded['argv'])})"
    if recorded["stderr"].strip():
        assert "WARNING: cannot read metrics" in result.stderr, where
    if "--json" in argv:
        assert without_messages(json.loads(result.stdout)) == without_messages(json.loads(recorded["stdout"])), where
        return
    text = result.stdout
    for run_id, rev in labels.items():  # a run id is longer than HEAD: the columns differ
        text = text.replace(run_id, rev)
    got, expected = text.splitlines(), recorded["stdout"].splitlines()
    if labels:
        got, expected = [_squeeze(line) for line in got], [_squeeze(line) for line in expected]
    if argv[1] == "show":
        assert got == expected, where
    else:  # DVC lists files in a set's order
        head = 2 if "--md" in argv else 1  # header (and Markdown's separator line)
        assert got[:head] == expected[:head] and sorted(got) == sorted(expected), where


def _squeeze(line: str) -> str:
    """A table line without its column widths."""
    return re.sub(r"-{2,}", "-", re.sub(r"\s+", " ", line))


def check_api(replay: Replay, recorded: dict) -> None:
    from pivot.api import params_show

    call = recorded["call"]
    old = os.getcwd()
    os.chdir(replay.ws.root / call.get("cwd", "."))
    try:
        assert as_recorded(params_show(*call["args"], **call["kwargs"])) == recorded["result"], call
    finally:
        os.chdir(old)


@pytest.mark.slow
@pytest.mark.parametrize("use_git", [True, False], ids=["git", "no-git"])
def test_eval_project_matches_dvc(ws, stage_python, use_git):
    if use_git and shutil.which("git") is None:
        pytest.skip("git is not installed")
    replay = Replay(ws, use_git)
    for step, recorded in zip(STEPS, EXPECTED["steps"], strict=True):
        replay.apply(step)
        for path, seen in recorded.get("seen", {}).items():  # what the stage scripts got
            assert json.loads(ws.read(path)) == seen, (step["name"], path)
        for command in recorded["commands"]:
            check_command(replay, command)
        for call in recorded["api"]:
            check_api(replay, call)


@pytest.mark.slow
def test_history_of_five_runs(ws, stage_python):
    replay = Replay(ws, use_git=False)
    for step in STEPS:
        replay.apply(step)
    rows = ws.pivot_json("metrics", "history")
    assert [row["run_id"] for row in rows] == replay.commits[::-1]
    run5, run4 = rows[0], rows[1]
    assert run4["params_changed"] == {"params.yaml": {"train.epochs": {"old": 5, "new": 8, "diff": 3}}}
    assert run4["ran"] == ["train"]  # same model: evaluate was cut off
    assert run5["ran"] == ["prepare", "train"]
    assert run5["metrics"] == {"train.loss": 0.2, "train.acc": 0.9, "rows": 160, "test.auc": 0.67,
                               "test.f1": 0.603, "test.threshold": 0.7, "label": "v2"}
    assert rows[-1]["params_changed"] is None  # the first recorded run
    assert [r["metrics"]["train.loss"] for r in rows] == [0.2, 0.2, 0.2857, 0.2857, 0.1667]

    assert len(ws.pivot_json("metrics", "history", "-n", "2")) == 2
    only = ws.pivot_json("metrics", "history", "test.auc", "metrics/train.json")
    assert set(only[0]["metrics"]) == {"test.auc", "train.loss", "train.acc", "rows"}

    text = ws.pivot("metrics", "history", "-n", "3", "train.loss").stdout.splitlines()
    assert text[0].split() == ["Run", "Started", "Ran", "Changed", "params", "train.loss"]
    assert text[1].startswith(replay.commits[-1]) and "prepare.rows=200" in text[1]
    assert "train.epochs=8" in text[2]
    md = ws.pivot("metrics", "history", "-n", "1", "--md").stdout
    assert md.startswith("| Run ") and md.endswith("|\n\n")

    # each run's record holds one small values line
    for record in (ws.root / ".pivot" / "runs").iterdir():
        values = [json.loads(line) for line in record.read_text().splitlines() if '"values"' in line]
        assert len(values) <= 1 and all(len(json.dumps(v)) < 4096 for v in values)


@pytest.mark.slow
def test_default_baseline_is_the_last_run(ws, stage_python):
    replay = Replay(ws, use_git=False)
    for step in STEPS[:3]:  # run1, edit lr, run2 (not committed)
        replay.apply(step)
    run2 = replay.last_run()
    assert ws.pivot_json("params", "diff") == {}
    assert ws.pivot_json("metrics", "diff") == {}
    moved = ws.pivot_json("metrics", "diff", replay.commits[0])
    assert set(moved["metrics/train.json"]) == {"train.acc", "train.loss"}
    prefix = replay.commits[0][:22]  # a unique prefix will do; the table names it as given
    header = ws.pivot("metrics", "diff", prefix, "--all").stdout.splitlines()[0].split()
    assert header == ["Path", "Metric", prefix, "workspace", "Change"]
    assert ws.pivot_json("params", "diff", replay.commits[0], run2) == {
        "params.yaml": {"train.lr": {"old": 0.1, "new": 0.05, "diff": -0.05}}}


def test_no_baseline_without_git_or_runs(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    params: [lr]\n")
    ws.write("params.yaml", "lr: 1\n")
    (ws.root / ".pivot").mkdir()
    result = ws.pivot("params", "diff", expect=1)
    assert result.stderr.startswith("ERROR: no successful `pivot run` recorded yet")
    result = ws.pivot("metrics", "diff", "nonsense", "workspace", expect=1)
    assert "'nonsense' is neither a successful run id" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_metrics_files_each_reported(ws):
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: echo
            metrics:
              - a.json:
                  cache: false
              - b.yaml:
                  cache: false
              - c.toml:
                  cache: false
              - d.json:
                  cache: false
        metrics:
          - top.json
        """)
    ws.write("a.json", '{"x": 1, "l": [1, 2], "n": null, "s": {"deep": {"er": 2.5}}}')
    ws.write("b.yaml", "x: [unclosed\n")
    ws.write("c.toml", "[m]\nscore = 0.5\n")
    ws.write("top.json", '{"t": 3}')
    result = ws.pivot("metrics", "show")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Path", "m.score", "s.deep.er", "t", "x"]
    assert lines[1].split() == ["a.json", "-", "2.5", "-", "1"]
    assert lines[2].split() == ["b.yaml", "-", "-", "-", "-"]
    assert lines[3].split() == ["c.toml", "0.5", "-", "-", "-"]
    assert lines[4].split() == ["d.json", "-", "-", "-", "-"]
    assert lines[5].split() == ["top.json", "-", "-", "3", "-"]
    errors = result.stderr.splitlines()
    assert any(line.startswith("WARNING: cannot read metrics: b.yaml:2:1: 'b.yaml' is invalid") for line in errors)
    assert "WARNING: cannot read metrics: 'd.json' does not exist" in errors
    assert any("'a.json': left out values that are not numbers or strings: l (list), n (null)" in line
               for line in errors), errors
    shown = ws.pivot_json("metrics", "show")[""]["data"]
    assert shown["b.yaml"]["error"]["type"] == "YAMLFileCorruptedError"
    assert shown["d.json"]["error"]["type"] == "FileNotFoundError"
    assert shown["a.json"] == {"data": {"x": 1, "s": {"deep": {"er": 2.5}}}}
    assert ws.pivot_json("metrics", "show", "c.toml") == {"": {"data": {"c.toml": {"data": {"m": {"score": 0.5}}}}}}


def test_params_show_memoised_and_fresh(ws, monkeypatch):
    from pivot import api

    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    params: [train.lr]\n")
    ws.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    monkeypatch.setenv("PIVOT_ROOT", str(ws.root))
    monkeypatch.chdir(ws.root)
    assert api.params_show() == {"train": {"lr": 0.1, "epochs": 3}}
    assert api.params_show(deps=True) == {"train": {"lr": 0.1}}
    started = time.perf_counter()
    for _ in range(1000):
        api.params_show()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"1,000 calls took {elapsed:.3f}s"
    first = api.params_show()
    first["train"]["lr"] = 99  # a copy: the caller may change it
    assert api.params_show()["train"]["lr"] == 0.1
    ws.write("params.yaml", "train:\n  lr: 0.25\n  epochs: 3\n")
    assert api.params_show(stages="s") == {"train": {"lr": 0.25}}
    assert api.params_show() == {"train": {"lr": 0.25, "epochs": 3}}


def test_params_show_errors_are_pivot_errors(ws, monkeypatch):
    from pivot import api
    from pivot.errors import PivotError

    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    params: [lr]\n")
    monkeypatch.setenv("PIVOT_ROOT", str(ws.root))
    monkeypatch.chdir(ws.root)
    with pytest.raises(PivotError, match="'params.yaml' does not exist"):
        api.params_show()
    ws.write("params.yaml", "lr: [unclosed\n")
    with pytest.raises(PivotError, match="params.yaml"):
        api.params_show()


def test_params_show_inside_a_stage_uses_pivot_root(ws, stage_python):
    """A stage whose wdir is a subdirectory calls params_show() with no
    arguments; PIVOT_ROOT tells it where the project is."""
    ws.write("dvc.yaml", """\
        stages:
          s:
            wdir: sub
            cmd: python3 -c "import json; from pivot.api import params_show; print(json.dumps(params_show()))" > ../out.json
            params:
              - ../params.yaml:
                  - a
            outs:
              - ../out.json
        """)
    ws.write("params.yaml", "a: 1\nb: {c: 2}\n")
    (ws.root / "sub").mkdir()
    (ws.root / ".pivot").mkdir()
    ws.pivot("run")
    assert json.loads(ws.read("out.json")) == {"a": 1, "b": {"c": 2}}


# Besides the params files, DVC shows the values a stage read from params and
# vars files only through ``${}`` (its "tracked vars", flattened:
# ``models.0.name``); several corpus cases exercise them.
@pytest.mark.parametrize("case", sorted(CORPUS_EXPECTED["cases"]))
def test_params_show_matches_dvc_on_corpus(ws, monkeypatch, case):
    from pivot.api import params_show

    source = CORPUS / case
    shutil.copytree(source, ws.root, dirs_exist_ok=True,
                    ignore=lambda d, names: [n for n in names if n in {"case.json", "dvc-config", "expected.json"}])
    (ws.root / ".dvc").mkdir()
    if (source / "dvc-config").exists():
        (ws.root / ".dvc" / "config").write_text((source / "dvc-config").read_text())
    monkeypatch.chdir(ws.root)
    monkeypatch.delenv("PIVOT_ROOT", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    for recorded in CORPUS_EXPECTED["cases"][case]:
        call = recorded["call"]
        if "error" in recorded:
            with pytest.raises(Exception):
                params_show(*call["args"], **call["kwargs"])
        else:
            assert as_recorded(params_show(*call["args"], **call["kwargs"])) == recorded["result"], call


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_cached_metrics_at_a_revision_come_from_the_cache(ws, monkeypatch):
    """A cached metrics file is not in git: as DVC reads it from its cache
    through dvc.lock, pivot reads it from its cache through the lock record
    committed at that revision."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    ws.write("dvc.yaml", "stages:\n  score:\n    cmd: sh score.sh\n    deps: [level, score.sh]\n"
             "    metrics: [score.json]\n")
    ws.write("score.sh", 'printf \'{"acc": %s}\' "$(cat level)" > score.json\n')
    ws.write("level", "1\n")
    ws.write(".gitignore", "/score.json\n")
    (ws.root / ".pivot").mkdir()
    git(ws.root, "init", "-q")
    ws.pivot("run")
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", "one")
    ws.write("level", "3\n")
    ws.pivot("run")
    assert ws.pivot_json("metrics", "diff", "HEAD") == {"score.json": {"acc": {"old": 1, "new": 3, "diff": 2}}}


def test_params_diff_reports_an_invalid_params_file(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo > o\n    params:\n      - p.yaml: [lr]\n    outs: [o]\n")
    ws.write("p.yaml", "lr: 1\n")
    (ws.root / ".pivot").mkdir()
    ws.pivot("run")
    ws.write("p.yaml", "lr: [1\n")
    result = ws.pivot("params", "diff", "--json")
    assert json.loads(result.stdout) == {"p.yaml": {"lr": {"old": 1, "new": None}}}
    assert result.stderr.startswith("WARNING: cannot read params: p.yaml:2:1: 'p.yaml' is invalid")
    assert "Traceback" not in result.stderr
