"""The benchmark harness must not rot: generate real workspaces, load them
with pivot's own loader, and run the harness end to end at a tiny size
without DVC.  Nothing here times anything."""

from __future__ import annotations

import json
import sys

import pytest

from bench import __main__ as bench_cli
from bench.generate import MIN_STAGES, Shape, generate, touch_param
from bench.measure import Measurement, Outcome, Sample, run_command
from bench.report import SizeResult, Verdict, evaluate_targets
from bench.tools import Op
from pivot.frontends import load_pipeline
from pivot.project import Project


@pytest.mark.parametrize("stages", [MIN_STAGES, 93, 94, 1000, 10000])
def test_shape_hits_the_requested_stage_count(stages):
    assert Shape.for_stages(stages).expected_stages == stages


def test_shape_refuses_sizes_below_the_minimum():
    with pytest.raises(ValueError, match="smallest workspace"):
        Shape.for_stages(MIN_STAGES - 1)


def test_base_workspace_expands_to_93_stages(tmp_path):
    root = tmp_path / "ws"
    generate(root, Shape.for_stages(93, run_files=10))
    pipeline = load_pipeline(Project(root=root, cwd=root))

    addresses = {stage.address for stage in pipeline.stages}
    assert len(pipeline.stages) == 93
    files = {stage.file for stage in pipeline.stages}
    assert files == {f"{name}/dvc.yaml" for name in ("difficulty", "base", "horizon", "ga_paper")}
    # matrix with float values, foreach over a dict, a multi-command stage that cds away
    assert "horizon/dvc.yaml:plot@swe_bench-0.5" in addresses
    assert "base/dvc.yaml:merge_data@legacy" in addresses
    manifests = pipeline.stage("difficulty/dvc.yaml:compile_manifests")
    assert len(manifests.cmds) == 2 and manifests.cmds[0].startswith("cd ../data/raw && ")
    # cross-pipeline deps and the directory shared by many stages
    assert "base/dvc.yaml:fake_gpt2_data@current" in pipeline.upstream["horizon/dvc.yaml:wrangle_bootstrap_logistic@swe_bench"]
    sharing = [s for s in pipeline.stages if any(dep.path == "data/raw/runs" for dep in s.deps)]
    assert len(sharing) >= 10


def test_larger_size_expands_exactly(tmp_path):
    root = tmp_path / "ws"
    generate(root, Shape.for_stages(1000, run_files=1))
    assert len(load_pipeline(Project(root=root, cwd=root)).stages) == 1000


def test_touch_param_changes_only_that_value(tmp_path):
    root = tmp_path / "ws"
    generate(root, Shape.for_stages(MIN_STAGES, run_files=1))
    before = (root / "ga_paper" / "params.yaml").read_text()
    touch_param(root, 321)
    after = (root / "ga_paper" / "params.yaml").read_text()
    assert "dpi: 321" in after and before.replace("dpi: 150", "dpi: 321", 1) == after


def test_run_command_reports_failure_and_timeout(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    failed = run_command([sys.executable, "-c", "import sys; sys.exit('broken')"], tmp_path, env, 30)
    assert failed.outcome is Outcome.FAILED and "broken" in failed.detail
    slow = run_command(["sleep", "30"], tmp_path, env, 0.2)
    assert slow.outcome is Outcome.TIMEOUT and slow.seconds < 10
    fine = run_command(["true"], tmp_path, env, 30)
    assert fine.outcome is Outcome.OK and fine.peak_rss_mb > 0


@pytest.mark.slow
def test_harness_smoke_without_dvc(tmp_path, capsys):
    out = tmp_path / "out"
    code = bench_cli.main([
        "run", "--sizes", str(MIN_STAGES), "--no-dvc", "--repeat", "1", "--warmup", "0", "--settle", "0", "--fresh-repeat", "1",
        "--floor-max", str(MIN_STAGES), "--run-files", "20", "--skip", "ninja_first,ninja_noop", "--workdir", str(tmp_path / "work"), "--out", str(out),
    ])
    assert code == 0
    [result_file] = out.glob("results-*.json")
    data = json.loads(result_file.read_text())
    [size] = data["sizes"]
    assert size["stages"] == MIN_STAGES
    operations = size["operations"]
    assert size["command_floor"]["outcome"] == "ok"
    assert isinstance(size["pivot_overhead_ms_per_stage"], float)
    for name in ("list stages", "fresh run", "fresh run, 1 job", "no-op run", "run after 1 param change"):
        assert operations[name]["pivot"]["outcome"] == "ok", (name, operations[name])
        assert operations[name]["dvc"] is None
    assert data["help"]["pivot"]["outcome"] == "ok"
    assert {target["verdict"] for target in data["targets"]} <= {"met", "MISSED", "not measured"}
    table = capsys.readouterr().out
    assert f"### {MIN_STAGES} stages" in table and "| fresh run |" in table
    assert (out / "latest.md").read_text().startswith(f"### {MIN_STAGES} stages")
    assert not (tmp_path / "work" / f"stages-{MIN_STAGES}").exists()  # cleaned up without --keep


def _measured(*seconds: float) -> Measurement:
    return Measurement.from_samples([Sample(value, 10.0, Outcome.OK) for value in seconds])


def test_targets_are_met_missed_or_not_measured():
    fast = SizeResult(93, pivot={Op.STATUS_WARM: _measured(0.1, 0.12)}, dvc={Op.STATUS_WARM: _measured(1.5)})
    slow = SizeResult(1000, pivot={Op.STATUS_WARM: _measured(0.5)}, dvc={Op.STATUS_WARM: _measured(12.0)})
    verdicts = {target.name: target.verdict for target in evaluate_targets([fast, slow], _measured(0.05))}
    assert verdicts["warm status, 93 stages: >= 10x DVC and < 0.15 s"] is Verdict.MET
    assert verdicts["warm status, 1000 stages: >= 20x DVC and < 0.4 s"] is Verdict.MISSED  # 0.5 s
    assert verdicts["warm status, 10,000 stages: < 2 s and < 200 MB peak"] is Verdict.NOT_MEASURED
    assert verdicts["pivot --help < 0.15 s"] is Verdict.MET


@pytest.mark.slow
def test_pivotfile_load_scenario_smoke(tmp_path):
    from bench import pivotfile_load

    results = pivotfile_load.measure(tmp_path, rules=12, repeat=2, timeout=60)
    assert list(results) == ["first load (nothing cached)", "warm load (parser and pipeline cached)",
                             "edited load (one rule changed)"]
    assert all(m.ok for m in results.values()), results
    pivotfile = (tmp_path / "pivotfile-12" / "Pivotfile").read_text()
    assert 'desc: "step 6 of 12, edit 2"' in pivotfile, "each edited sample changed the middle rule"
    assert "| edited load (one rule changed) |" in pivotfile_load.table(12, results)


@pytest.mark.slow
def test_bare_commands_build_what_pivot_builds(tmp_path):
    from bench.floor import levels, listed_stages, run_floor
    from bench.generate import generate_wildcard
    from bench.tools import Pivot

    root = tmp_path / "ws"
    generate_wildcard(root, 3)
    pivot = Pivot.find()
    env = pivot.env(root)
    stages = listed_stages(pivot.argv, root, env)
    assert [len(level) for level in levels(stages)] == [3, 3, 1]  # count, norm, summary
    run_floor(stages, root, env, 2, tmp_path / "lanes")
    bare = {path: (root / path).read_bytes() for path in ("count/s000001", "norm/s000001", "summary.txt")}
    run_command((*pivot.argv, "run", "-f", "-q"), root, env, 120)
    assert {path: (root / path).read_bytes() for path in bare} == bare
    assert bare["summary.txt"] == b"2\n2\n2\n"


@pytest.mark.slow
def test_watch_counts_the_process_apart_from_its_children(tmp_path):
    from bench.watch import watch

    # the child burns CPU; the parent holds 60 MB for a second (sampled even on a loaded machine) and waits
    script = ("import subprocess, sys, time; block = bytearray(60 << 20); time.sleep(1.0); "
              "subprocess.run([sys.executable, '-c', 'sum(range(20_000_000))'])")
    watched = watch([sys.executable, "-c", script], tmp_path, {"PATH": "/usr/bin:/bin"}, 60, interval=0.1)
    assert watched.ok, watched.error_tail
    assert watched.children_cpu > watched.own_cpu, (watched.children_cpu, watched.own_cpu)
    assert watched.rss_peak > 60, watched.rss_mb


@pytest.mark.slow
def test_scale_run_and_ninja_smoke(tmp_path, capsys):
    code = bench_cli.main(["scale", "--samples", "3", "--repeat", "1", "--settle", "2.1", "--run", "--ninja",
                           "--workdir", str(tmp_path)])
    assert code == 0
    report = capsys.readouterr().out
    assert "pivot's overhead per stage" in report and "pivot's resident set" in report
    assert "| ninja, no-op (pivot's file) |" in report and "no-op `ninja`: pivot's file" in report


@pytest.mark.slow
def test_remote_bench_end_to_end_without_dvc(tmp_path, capsys):
    """``bench remote`` on the smallest workspace: moto's server started and
    stopped, push/pull/clone run measured, the pulled clone identical."""
    code = bench_cli.main(["remote", "--no-dvc", "--stages", str(MIN_STAGES), "--run-files", "20", "--repeat", "1",
                           "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    assert code == 0
    table = capsys.readouterr().out
    assert "pivot's pulled clone against the pushed workspace: identical" in table
    assert " ran" not in table.split("stages in the last clone run:")[1].splitlines()[0]
    data = json.loads(next((tmp_path / "out").glob("results-remote-*.json")).read_text())
    assert all(data["pivot"][op]["outcome"] == "ok" for op in ("push", "noop_push", "pull"))
    assert not (tmp_path / "work" / "remote").exists()  # workspaces removed without --keep
