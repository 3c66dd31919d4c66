"""The fast paths (stat cache, lock-record memo, pipeline and params caches,
the lock listing, the run cache's "empty" shortcut, indexed lock records,
the verdict memo, the settled memo, its never-run entries and its entries
with work)
decide exactly what the plain path decides: after each of a random sequence
of edits, ``plan`` and ``status`` with every cache warm equal the same
commands with every cache deleted."""

from __future__ import annotations

import pytest

import json
import random
from pathlib import Path

from tests._statehelp import age, cold_outputs, drop_caches, outputs, recalled, settle

SAMPLES = 60
GROUPS = 6

DVC_YAML = f"""\
stages:
  count:
    foreach: {list(range(SAMPLES))}
    do:
      cmd: cat data/in${{item}}.txt > count/c${{item}}.txt
      deps:
        - data/in${{item}}.txt
      params:
        - p.k${{item}}
      outs:
        - count/c${{item}}.txt
  norm:
    foreach: {list(range(SAMPLES))}
    do:
      cmd: tr a-z A-Z < count/c${{item}}.txt > norm/n${{item}}.txt
      deps:
        - count/c${{item}}.txt
      outs:
        - norm/n${{item}}.txt
  group:
    foreach: {list(range(GROUPS))}
    do:
      cmd: ls data/extra | wc -l > group/g${{item}}.txt && cat norm/n${{item}}.txt >> group/g${{item}}.txt
      deps:
        - data/extra
        - norm/n${{item}}.txt
      outs:
        - group/g${{item}}.txt
  summary:
    cmd: cat {" ".join(f"norm/n{i}.txt" for i in range(SAMPLES))} > summary.txt
    deps: [{", ".join(f"norm/n{i}.txt" for i in range(SAMPLES))}]
    outs: [summary.txt]
"""


def _write_workspace(ws) -> None:
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("params.yaml", "p:\n" + "".join(f"  k{i}: {i}\n" for i in range(SAMPLES)))
    for i in range(SAMPLES):
        ws.write(f"data/in{i}.txt", f"sample {i}\n")
    ws.write("data/extra/a.txt", "a\n")
    for d in ("count", "norm", "group"):
        (ws.root / d).mkdir()


def _edit(ws, rng: random.Random) -> str:
    i = rng.randrange(SAMPLES)
    kind = rng.choice(["dep", "param", "delete-out", "touch", "add-file", "same-param"])
    root: Path = ws.root
    if kind == "dep":
        (root / f"data/in{i}.txt").write_text(f"sample {i} edited {rng.random()}\n")
    elif kind == "param":
        text = (root / "params.yaml").read_text().replace(f"  k{i}: ", f"  k{i}: 1", 1)
        (root / "params.yaml").write_text(text)
    elif kind == "same-param":
        (root / "params.yaml").write_text((root / "params.yaml").read_text())  # rewritten unchanged
    elif kind == "delete-out":
        victim = rng.choice([f"count/c{i}.txt", f"norm/n{i}.txt", "summary.txt"])
        (root / victim).unlink(missing_ok=True)
    elif kind == "touch":
        path = root / f"data/in{i}.txt"
        path.write_bytes(path.read_bytes())
    else:
        (root / f"data/extra/f{rng.random()}.txt").write_text("x\n")
    return kind


def _decisions(ws, command: str) -> object:
    return json.loads(ws.pivot(command, "--json").stdout)


def _verdicts(root: Path) -> int:
    import sqlite3

    with sqlite3.connect(root / ".pivot" / "state.db") as conn:
        return conn.execute("SELECT count(*) FROM verdict").fetchone()[0]


def _settle(ws, step: int, *, wait: bool) -> None:
    """Put every file out of the racy window so the caches trust it.  Aging
    mtimes is enough for the stat cache; the verdict memo also wants the
    ctimes settled, which only waiting does."""
    if wait:
        settle()
    else:
        age(ws.root, 10 + step)


@pytest.mark.slow
@pytest.mark.parametrize("wait, steps", [(False, 14), (True, 7)], ids=["aged", "waited"])
def test_warm_and_cold_decisions_agree_over_random_edits(ws, tmp_path, wait, steps) -> None:
    rng = random.Random(16)
    _write_workspace(ws)
    ws.pivot("run")
    united = with_work = explained = 0
    for step in range(steps):
        kind = _edit(ws, rng)
        _settle(ws, step, wait=wait)
        ws.pivot("status")  # fills the caches from settled files (and unites an explained plan with work)
        ws.pivot("plan")  # and unites a plan with work, once settled
        if wait:
            assert _verdicts(ws.root), "the verdict memo is exercised"
            plan = recalled(ws.root, printed_only=True)
            explained_plan = recalled(ws.root, printed_only=True, explained=True)
            with_work += plan is not None and plan.has_work
            explained += explained_plan is not None and explained_plan.has_work
        warm = (_decisions(ws, "plan"), _decisions(ws, "status"))
        drop_caches(ws.root)
        cold = (_decisions(ws, "plan"), _decisions(ws, "status"))
        assert warm == cold, f"step {step} ({kind})"
        if rng.random() < 0.5:
            ws.pivot("run")
            if wait:  # all up to date: the settled memo unites it, and the next edit must undo it
                _settle(ws, step, wait=wait)
                ws.pivot("status")
                united += _settled(ws.root)
                warm = (_decisions(ws, "plan"), _decisions(ws, "status"))
                assert warm == _cold_copy(ws, tmp_path / f"cold{step}"), f"step {step}, settled"
    if wait:
        assert united, "the settled memo is exercised"
        assert with_work and explained, "plans with work are recalled, explained (status) or not"


def _settled(root: Path) -> int:
    import sqlite3

    with sqlite3.connect(root / ".pivot" / "state.db") as conn:
        return conn.execute("SELECT count(*) FROM settled").fetchone()[0]


def _cold_copy(ws, where: Path) -> object:
    """``plan`` and ``status`` in a copy of the workspace without caches (the
    workspace keeps its own, for the edit that follows)."""
    import shutil

    from tests.conftest import Workspace

    shutil.copytree(ws.root, where, symlinks=True)
    drop_caches(where)
    copy = Workspace(where)
    return _decisions(copy, "plan"), _decisions(copy, "status")


# the workspace above without its directory dep (a plan that reads one is never united)
NEVER_RUN_YAML = DVC_YAML[:DVC_YAML.index("  group:")] + DVC_YAML[DVC_YAML.index("  summary:"):]


def _edit_never_run(ws, rng: random.Random, *, last: bool) -> str:
    """An edit to a workspace nothing has run in, which keeps it so (a
    dangling dep lasts one step: the plan fails while it is there)."""
    root: Path = ws.root
    for dep in (root / "data").glob("in*.txt"):
        if dep.is_symlink():
            dep.unlink()
            dep.write_text("sample, again\n")
    i = rng.randrange(SAMPLES)
    kind = rng.choice(["dep", "param", "touch", "delete-dep", "dangling-dep", "by-hand-out"])
    if last:  # no memo is made after it
        kind = "run-cache"
    dep = root / f"data/in{i}.txt"
    if kind in ("dep", "param"):
        return _edit(ws, random.Random(rng.random()))
    if kind == "touch":
        return _touched(dep)
    if kind == "delete-dep":
        dep.unlink(missing_ok=True)
    elif kind == "dangling-dep":
        dep.unlink(missing_ok=True)
        dep.symlink_to(root / "nowhere.txt")
    elif kind == "by-hand-out":
        (root / f"count/c{i}.txt").write_text("by hand\n")
    else:  # a run-cache entry, then no record again
        (root / f"count/c{i}.txt").unlink(missing_ok=True)
        dep.write_text(f"sample {i}\n")
        ws.pivot("run", f"count@{i}")
        import shutil

        shutil.rmtree(root / ".pivot" / "locks")
    return kind


def _touched(path: Path) -> str:
    if path.is_file():
        path.write_bytes(path.read_bytes())
    return "touch"


@pytest.mark.slow
def test_never_run_plans_agree_over_random_edits(ws, tmp_path) -> None:
    """The settled memo's never-run entries (pivot.state.settled) print what
    planning prints, over random edits of a workspace nothing has run in."""
    rng = random.Random(38)  # every kind of edit in the first seven steps
    _write_workspace(ws)
    ws.write("dvc.yaml", NEVER_RUN_YAML)
    (ws.root / ".pivot").mkdir()
    united = 0
    steps = 8
    for step in range(steps):
        kind = _edit_never_run(ws, rng, last=step == steps - 1)
        settle()
        ws.pivot("plan", expect=None)  # unites the plan when nothing has run
        united += recalled(ws.root, printed_only=True) is not None
        warm = outputs(ws, _PRINTED)
        assert warm == cold_outputs(ws, tmp_path / f"cold{step}", _PRINTED), f"step {step} ({kind})"
    assert united, "the never-run memo is exercised"


_PRINTED = (("plan",), ("plan", "--json"), ("run", "--dry"))
