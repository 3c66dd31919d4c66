"""Regression tests for robustness bugs QA found in the runner, the state
and the cache: every one runs real commands on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pivot.backends.runner import log_relpath
from pivot.state.locks import lock_filename

LONG_ITEM = "data/raw/2024/experiments/" + "very_long_dataset_name_" * 14


def test_a_very_long_stage_address_gets_a_short_log_name(ws) -> None:
    ws.write("dvc.yaml", f"""\
        stages:
          train:
            foreach: [{LONG_ITEM}]
            do:
              cmd: echo ok > out.txt
              outs: [out.txt]
        """)
    proc = ws.pivot_proc("run", timeout=60)
    assert ws.read("out.txt") == "ok\n"
    logs = list((ws.root / ".pivot" / "logs").iterdir())
    assert len(logs) == 1 and len(logs[0].name.encode()) <= 255
    assert "1 ran" in proc.stdout + proc.stderr


def test_logs_and_lock_records_share_one_naming_scheme() -> None:
    address = "sub/dvc.yaml:build@" + "x" * 300
    assert log_relpath(address) == ".pivot/logs/" + lock_filename(address)[: -len(".json")] + ".log"
    assert log_relpath("sub/dvc.yaml:build@0.5") == ".pivot/logs/sub%2Fdvc%2Eyaml%3Abuild%400%2E5.log"


@pytest.mark.slow
def test_an_unexpected_worker_error_fails_the_stage_instead_of_hanging(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          a:
            cmd: echo a > a.txt
            outs: [a.txt]
          b:
            cmd: echo b > b.txt
            outs: [b.txt]
        """)
    (ws.root / log_relpath("a")).mkdir(parents=True)  # the log cannot be opened
    proc = ws.pivot_proc("run", "-j", "1", "-k", check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    assert "FAILED a" in output and "IsADirectoryError" in output
    assert ws.read("b.txt") == "b\n"  # the run went on (-k) and ended normally
    # the run lock was released: another run starts at once
    assert ws.pivot_proc("run", "b", timeout=60).returncode == 0


def test_a_failed_output_preparation_shows_no_stale_log(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: echo STALE-LINE; echo x > d/f.txt
            outs: [d/f.txt]
        """)
    ws.pivot("run")
    assert "STALE-LINE" in (ws.root / log_relpath("s")).read_text()
    os.remove(ws.root / "d" / "f.txt")
    os.rmdir(ws.root / "d")
    ws.write("d", "a file where a directory must be\n")
    proc = ws.pivot_proc("run", "-f", check=False, timeout=60)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "cannot prepare outputs" in output
    assert "STALE-LINE" not in output


PIPELINE = """\
    stages:
      make:
        cmd: cat in.txt > out.txt
        deps: [in.txt]
        outs: [out.txt]
    """


def _linked_project(ws, mode: str):
    ws.write(".pivot/config", f"[cache]\ntype = {mode}\n")
    ws.write("in.txt", "hello\n")
    ws.write("dvc.yaml", PIPELINE)
    ws.pivot("run")
    return ws.root / "out.txt"


def _object(ws, name: str = "out.txt") -> Path:
    record = json.loads((ws.root / ".pivot" / "locks" / "make.json").read_text())
    digest = next(o["hash"] for o in record["outs"] if o["path"] == name)
    return ws.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]


def test_symlink_outputs_are_relative_and_survive_a_moved_project(ws, tmp_path) -> None:
    out = _linked_project(ws, "symlink")
    assert out.is_symlink() and not os.path.isabs(os.readlink(out))
    moved = tmp_path / "moved"
    ws.root.rename(moved)
    ws.root = moved
    assert "up to date" in ws.pivot("status").stdout
    assert ws.read("out.txt") == "hello\n"


@pytest.mark.parametrize("command", [("status",), ("run",), ("run", "-f"), ("checkout",)])
def test_a_dangling_output_link_counts_as_missing(ws, command) -> None:
    out = _linked_project(ws, "symlink")
    os.chmod(_object(ws).parent, 0o755)
    _object(ws).unlink()  # the cache object is gone: out.txt dangles
    assert out.is_symlink() and not out.exists()
    result = ws.pivot(*command, expect=None)
    assert "dangling" not in result.output + result.stderr
    if command == ("status",):
        assert "out.txt" in result.stdout and result.exit_code == 0
    elif command == ("checkout",):
        assert result.exit_code == 1 and "missing from the cache: out.txt" in result.stderr
    else:
        assert result.exit_code == 0 and ws.read("out.txt") == "hello\n"


def test_a_dangling_output_of_a_failed_stage_does_not_break_status(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          bad:
            cmd: ln -s nowhere out.txt; exit 1
            outs: [out.txt]
          loop:
            cmd: ln -s loop.txt loop.txt; exit 1
            outs: [loop.txt]
        """)
    ws.pivot("run", "-k", expect=1)
    status = ws.pivot("status").stdout
    assert "bad" in status and "loop" in status


def test_a_dangling_dep_is_still_an_error(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: echo x > out.txt
            deps: [dep.txt]
            outs: [out.txt]
        """)
    os.symlink("nowhere", ws.root / "dep.txt")
    result = ws.pivot("status", expect=None)
    assert result.exit_code != 0 and "'dep.txt' is a dangling symlink" in result.stderr


@pytest.mark.parametrize("mode", ["hardlink", "copy"])
def test_a_corrupted_cache_object_is_removed_and_the_stage_rerun(ws, mode) -> None:
    out = _linked_project(ws, mode)
    obj = _object(ws)
    if mode == "hardlink":
        assert os.path.samefile(out, obj)
        os.chmod(out, 0o644)
        with open(out, "a") as handle:  # edits the object too: same inode
            handle.write("bye\n")
    else:
        os.chmod(obj, 0o644)
        obj.write_text("")  # truncated object
        out.unlink()
    if mode == "hardlink":  # the edited output is the user's work: checkout keeps it unless forced
        assert "unsaved files" in ws.pivot("checkout", expect=1).stderr
        assert ws.read("out.txt") == "hello\nbye\n"
    checkout = ws.pivot("checkout", "--force", expect=1)
    assert "corrupted cache object .pivot/cache/files/" in checkout.stderr and "removed" in checkout.stderr
    assert not obj.exists()
    first = ws.pivot("run")
    assert ws.read("out.txt") == "hello\n" and "ran make" in first.stdout
    assert "1 ran" not in ws.pivot("run").stdout  # converged
    assert obj.exists() and obj.read_text() == "hello\n"


def test_a_corrupted_object_found_by_run_is_removed_and_the_stage_rerun(ws) -> None:
    out = _linked_project(ws, "copy")
    obj = _object(ws)
    os.chmod(obj, 0o644)
    obj.write_text("HELLO\n")  # same size, wrong bytes
    out.unlink()
    result = ws.pivot("run")
    assert "corrupted cache object" in result.stdout + result.stderr
    assert ws.read("out.txt") == "hello\n" and obj.read_text() == "hello\n"


def test_a_command_that_leaves_its_output_dir_read_only_is_recorded(ws) -> None:
    ws.write(".pivot/config", "[cache]\ntype = symlink\n")
    ws.write("dvc.yaml", """\
        stages:
          s:
            cmd: mkdir -p d && echo x > d/f.txt && chmod 555 d
            outs: [d]
        """)
    proc = ws.pivot_proc("run", check=False, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert (ws.root / ".pivot" / "locks" / "s.json").exists()
    assert (ws.root / "d" / "f.txt").is_symlink()
    assert os.stat(ws.root / "d").st_mode & 0o777 == 0o555  # mode put back
    os.chmod(ws.root / "d", 0o755)


def test_a_lock_record_hash_cannot_point_outside_the_cache(ws, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    _linked_project(ws, "copy")
    lock = ws.root / ".pivot" / "locks" / "make.json"
    record = json.loads(lock.read_text())
    record["outs"][0]["hash"] = "../../../../../secret.txt"
    lock.write_text(json.dumps(record))
    (ws.root / "out.txt").unlink()
    result = ws.pivot("checkout", expect=None)
    assert "corrupt" in result.stderr and ".pivot/locks/make.json" in result.stderr
    assert not (ws.root / "out.txt").exists()


def test_a_manifest_path_cannot_escape_the_output(ws) -> None:
    ws.write("dvc.yaml", """\
        stages:
          make:
            cmd: mkdir -p d && echo x > d/f.txt
            outs: [d]
        """)
    ws.pivot("run")
    obj = _object(ws, "d")
    manifest = json.loads(obj.read_text())
    manifest[0]["relpath"] = "../../escaped.txt"
    os.chmod(obj, 0o644)
    obj.write_text(json.dumps(manifest))
    (ws.root / "d" / "f.txt").unlink()
    result = ws.pivot("checkout", expect=None)
    assert "manifest" in result.stderr and "corrupt" in result.stderr
    assert not (ws.root.parent / "escaped.txt").exists()
    ws.pivot("run")  # reruns the stage and converges
    assert ws.read("d/f.txt") == "x\n"


@pytest.mark.parametrize("out", [".pivot", ".pivot/cache", "dvc.yaml", "sub/dvc.lock", "Pivotfile", ".dvc",
                                 ".git/config"])
def test_an_output_that_is_state_or_a_pipeline_file_is_refused(ws, out) -> None:
    ws.write("sub/dvc.yaml", "stages:\n  t:\n    cmd: echo t\n")
    ws.write("dvc.yaml", f"stages:\n  s:\n    cmd: echo hi\n    outs: ['{out}']\n")
    result = ws.pivot("run", expect=None)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "stage 's' (dvc.yaml" in result.stderr and f"'{out}' cannot be an output" in result.stderr
    assert (ws.root / "sub" / "dvc.yaml").exists() and (ws.root / "dvc.yaml").exists()


@pytest.mark.parametrize("header", [
    {"type": "run"},
    {"type": "run", "run_id": "x", "started": 1.0, "pid": "p"},
    {"type": "run", "run_id": "x", "started": "soon"},
    {"type": "run", "run_id": "x", "started": 1.0, "argv": "pivot run"},
])
def test_pivot_log_skips_a_malformed_run_record_with_a_warning(ws, header) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo s > s.txt\n    outs: [s.txt]\n")
    ws.pivot("run")
    runs = ws.root / ".pivot" / "runs"
    (runs / "29990101T000000.000000Z-1.jsonl").write_text(json.dumps(header) + "\n")
    (runs / "29990101T000000.000000Z-2.jsonl").write_text(
        json.dumps({"type": "run", "run_id": "y", "started": 2.0}) + "\n"
        + json.dumps({"type": "stage", "address": "s", "outcome": "ran", "started": "t"}) + "\n"
        + "[1, 2]\n" + json.dumps({"type": "end", "status": "ok", "ended": 3.0}) + "\n"
    )
    text = ws.pivot("log")
    assert "run record '.pivot/runs/29990101T000000.000000Z-1.jsonl' is malformed" in text.stderr
    assert "run record '.pivot/runs/29990101T000000.000000Z-2.jsonl' is malformed" in text.stderr
    assert len(ws.pivot_json("log")) == 2  # the good run and the readable one


@pytest.mark.slow
def test_the_audit_trail_records_what_the_user_typed(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo s > s.txt\n    outs: [s.txt]\n")
    ws.pivot_proc("run", timeout=60)
    ws.pivot_proc("run", "-f", "s", timeout=60)
    runs = ws.pivot_json("log")
    assert [r["argv"] for r in runs] == [["pivot", "run", "-f", "s"], ["pivot", "run"]]


@pytest.mark.slow
def test_a_state_db_that_is_a_directory_only_costs_the_stat_cache(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo s > s.txt\n    outs: [s.txt]\n")
    (ws.root / ".pivot" / "state.db").mkdir(parents=True)
    proc = ws.pivot_proc("run", timeout=60)
    assert "Traceback" not in proc.stderr and "running without the stat cache" in proc.stderr
    assert ws.read("s.txt") == "s\n"
    status = ws.pivot_proc("status", timeout=60)
    assert "Traceback" not in status.stderr
