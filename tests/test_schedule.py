"""The scheduling state of a run (``pivot/backends/schedule.py``) and the
executor configuration (``executor_config.py``), on their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.backends.executor_config import (
    ExecutorError,
    ExecutorKind,
    format_resources,
    parse,
    resolve,
    stage_resources,
)
from pivot.backends.schedule import Schedule

#   a -> b -> d
#   a -> c -> d      e (alone)
UP = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
DOWN = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": []}


def _start_all(schedule: Schedule, limit: int = 10) -> list[str]:
    started = []
    while schedule.can_start(limit):
        address = schedule.next_ready()
        schedule.started(address, 0.0)
        started.append(address)
    return started


def test_stages_start_in_plan_order_once_their_upstream_succeeded() -> None:
    schedule = Schedule(["a", "b", "c", "d", "e"], UP, DOWN)
    assert _start_all(schedule) == ["a", "e"]
    schedule.succeeded("a")
    assert _start_all(schedule) == ["b", "c"]
    schedule.succeeded("b")
    assert _start_all(schedule) == []  # d still waits for c
    schedule.succeeded("c")
    schedule.succeeded("e")
    assert _start_all(schedule) == ["d"]
    schedule.succeeded("d")
    assert schedule.finished and schedule.unstarted() == []


def test_limit_caps_stages_in_flight() -> None:
    schedule = Schedule(["a", "e"], UP, DOWN)
    assert _start_all(schedule, limit=1) == ["a"]
    assert not schedule.can_start(1)


def test_failure_blocks_everything_downstream_and_stop_keeps_the_first_reason() -> None:
    schedule = Schedule(["a", "b", "c", "d", "e"], UP, DOWN)
    _start_all(schedule)
    assert sorted(schedule.failed("a")) == ["b", "c", "d"]
    schedule.stop("run stopped after a failed")
    schedule.stop("run interrupted")
    assert schedule.stop_reason == "run stopped after a failed"
    assert not schedule.finished  # e is still running
    schedule.succeeded("e")
    assert schedule.finished


def test_stop_leaves_unstarted_stages_in_plan_order() -> None:
    schedule = Schedule(["a", "b", "c", "d", "e"], UP, DOWN)
    assert _start_all(schedule, limit=1) == ["a"]
    schedule.stop("run interrupted")
    schedule.interrupted("a")
    assert schedule.finished
    assert schedule.unstarted() == ["b", "c", "d", "e"]


def test_abandon_returns_running_stages_with_their_start_times() -> None:
    schedule = Schedule(["a", "e"], UP, DOWN)
    schedule.started(schedule.next_ready(), 12.5)
    assert schedule.abandon() == {"a": 12.5}
    assert schedule.running == {}


def test_width_is_the_widest_level_of_work() -> None:
    assert Schedule(["a", "b", "c", "d", "e"], UP, DOWN).width() == 2
    assert Schedule(["b", "c", "d"], UP, DOWN).width() == 2  # a has no work: b and c are roots
    assert Schedule([], UP, DOWN).width() == 0


# -- executor configuration ------------------------------------------------------


def test_executor_spellings(tmp_path: Path) -> None:
    assert parse("local", "--executor", tmp_path).kind is ExecutorKind.LOCAL
    spec = parse("dask://127.0.0.1:8786", "--executor", tmp_path)
    assert (spec.kind, spec.address) == (ExecutorKind.SCHEDULER, "tcp://127.0.0.1:8786")
    spec = parse("dask-local:3", "--executor", tmp_path)
    assert (spec.kind, spec.workers) == (ExecutorKind.LOCAL_CLUSTER, 3)


@pytest.mark.parametrize(("value", "message"), [
    ("dask://nohost", "--executor: 'dask://nohost' is not dask://HOST:PORT"),
    ("dask-local:0", "--executor: 'dask-local:0' is not dask-local:N with N >= 1"),
    ("missing.yaml", "--executor: cluster file 'missing.yaml' does not exist"),
    ("spark://x", "--executor: unknown executor 'spark://x' (choose local, dask://HOST:PORT, dask-local:N"
                  " or a FILE.yaml)"),
])
def test_bad_executor_is_one_line_naming_where_it_came_from(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ExecutorError) as exc:
        parse(value, "--executor", tmp_path)
    assert str(exc.value) == message


def test_option_beats_environment_beats_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / ".pivot"
    state.mkdir()
    (state / "config").write_text("[cache]\ntype = copy\n\n[executor]\naddress = dask-local:2\nretries = 5\n")
    monkeypatch.delenv("PIVOT_EXECUTOR", raising=False)
    spec = resolve(None, tmp_path, state)
    assert (spec.kind, spec.retries, spec.origin) == (ExecutorKind.LOCAL_CLUSTER, 5,
                                                      "'.pivot/config' [executor] address")
    monkeypatch.setenv("PIVOT_EXECUTOR", "dask://h:1")
    assert resolve(None, tmp_path, state).kind is ExecutorKind.SCHEDULER
    assert resolve("local", tmp_path, state).kind is ExecutorKind.LOCAL
    (state / "config").write_text("[executor]\nretries = many\n")
    with pytest.raises(ExecutorError, match=r"^'.pivot/config' \[executor\] retries: expected a non-negative"):
        resolve(None, tmp_path, state)


def test_stage_resources_by_glob(tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        '[remote "store"]\nurl = s3://bucket/%2Fpath\n\n'
        '[stage "train@*"]\nresources = gpu=1, mem=8e9\n\n'
        '[stage "train@big"]\nresources = gpu=2\n')
    found = stage_resources(tmp_path, ["prep", "train@small", "train@big"])
    assert found == {"train@small": {"gpu": 1.0, "mem": 8e9}, "train@big": {"gpu": 2.0, "mem": 8e9}}
    assert format_resources(found["train@big"]) == "gpu=2, mem=8000000000"
    (tmp_path / "config").write_text('[stage "x"]\nresources = gpu\n')
    with pytest.raises(ExecutorError) as exc:
        stage_resources(tmp_path, ["x"])
    assert str(exc.value) == "'.pivot/config' [stage \"x\"] resources: 'gpu' is not NAME=AMOUNT"


def test_plan_and_dry_run_show_resources_alike(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  train:\n    cmd: echo m > m.txt\n    outs: [m.txt]\n"
                         "  prep:\n    cmd: echo p > p.txt\n    outs: [p.txt]\n")
    ws.write(".pivot/config", '[stage "train"]\nresources = gpu=1\n')
    plan = ws.pivot("plan").stdout
    assert plan.splitlines()[:2] == ["run       train  [needs gpu=1]", "            - never run (no lock record)"]
    assert "run       prep\n" in plan
    assert ws.pivot("run", "--dry").stdout == plan
