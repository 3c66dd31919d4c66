"""The three back ends run a stage's commands alike: the same shell, chosen
the same way (``execute.shell_prefix``), with stdin from /dev/null."""

from __future__ import annotations

import os
import subprocess

import pytest

from pivot.backends import execute
from tests.conftest import Workspace
from tests.emit_helpers import NINJA, results

SHELL_DVC_YAML = """\
stages:
  b:
    cmd:
      - echo {a,b} $((1+1)) > o.txt; echo -e 'x\\ty' >> o.txt
      - echo "$0" > z.txt
      - wc -c >> z.txt
    outs: [o.txt, z.txt]
"""


@pytest.mark.parametrize(
    "environ",
    [{}, {"SHELL": "/bin/bash"}, {"SHELL": "/bin/zsh", "PIVOT_SHELL": "/bin/dash"}, {"PIVOT_SHELL": ""}],
)
def test_emitted_shell_choice_matches_shell_prefix(environ):
    code = execute.shell_prefix_sh() + '; printf "%s\\n" "$@"'
    proc = subprocess.run(["/bin/sh", "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert tuple(proc.stdout.splitlines()) == execute.shell_prefix(environ)


def _environ(shell: str | None, pivot_shell: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SHELL", "PIVOT_SHELL")}
    if shell is not None:
        env["SHELL"] = shell
    if pivot_shell is not None:
        env["PIVOT_SHELL"] = pivot_shell
    return env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shell", "pivot_shell", "expected"),
    [
        ("/bin/bash", None, "a b 2\nx\ty\n"),  # bash: brace expansion, echo -e
        ("/bin/bash", "/bin/dash", "{a,b} 2\n-e x\ty\n"),  # dash: neither
        (None, None, None),  # /bin/sh, and a bash script must not invent $SHELL
    ],
)
def test_run_sh_script_and_ninja_give_identical_results(tmp_path, shell, pivot_shell, expected):
    env = _environ(shell, pivot_shell)
    roots = {}
    for backend in ("run", "sh", "ninja"):
        ws = Workspace(tmp_path / backend)
        ws.root.mkdir()
        ws.write("dvc.yaml", SHELL_DVC_YAML)
        roots[backend] = ws.root
        stdin = "text the commands must not read\n"
        if backend == "run":
            ws.pivot_proc("run", "-j", "1", env=env, input=stdin)
            continue
        ws.pivot_proc("emit", backend, *(["-o", "plan.sh"] if backend == "sh" else []))
        argv = ["bash", "plan.sh"] if backend == "sh" else [NINJA]
        proc = subprocess.run(argv, cwd=ws.root, env=env, input=stdin, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    first = results(roots["run"])
    assert results(roots["sh"]) == first
    assert results(roots["ninja"]) == first
    used = execute.shell_prefix(env)[0]
    assert first["z.txt"] == f"{used}\n0\n".encode()  # same $0; stdin is /dev/null
    if expected is not None:
        assert first["o.txt"] == expected.encode()


@pytest.mark.slow
def test_script_runs_each_command_with_stdin_from_dev_null(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: wc -c > n.txt\n    outs: [n.txt]\n")
    ws.pivot("emit", "sh", "-o", "plan.sh")
    proc = subprocess.run(["bash", "plan.sh"], cwd=ws.root, input="12345\n", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ws.read("n.txt").strip() == "0"


@pytest.mark.parametrize("backend", ["sh", "ninja"])
def test_output_in_a_missing_directory_is_refused(ws, backend):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo x > o.txt\n    outs: [o.txt]\n")
    result = ws.pivot("emit", backend, "-o", "missing/dir/out.file", expect=1)
    assert "cannot write 'missing/dir/out.file': directory 'missing/dir' does not exist" in result.stderr
    assert not (ws.root / "missing").exists()
    assert not (ws.root / ".pivot" / "ninja").exists()
