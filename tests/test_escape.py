"""Quoting round trips through real bash and real Ninja."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pivot.backends.escape import (
    NinjaEscapeError,
    needs_binding,
    ninja_escape,
    ninja_escape_path,
    sh_path,
    sh_quote,
)

NINJA = os.path.join(__import__("ninja").BIN_DIR, "ninja")

# Values that break naive quoting; none holds NUL (no file name can).
NASTY = [
    "plain",
    "",
    "with space",
    "two  spaces ",
    "single'quote",
    'double"quote',
    "dollar$HOME",
    "subst$(echo no)",
    "back`tick`",
    "glob*?[ab]",
    "brace{a,b}",
    "tilde~ ~root",
    "~root",
    "=equals",
    "semi;amp&pipe|lt<gt>",
    "bang!hist",
    "back\\slash",
    "hash #comment",
    "unicode ü € 字",
    "new\nline",
    "tab\there",
    "-n",
    "--flag",
    "$",
    "$$",
    "a:b",
    "%percent",
]

# Valid file names (no slash, no NUL, no newline: refused for Ninja anyway).
NASTY_NAMES = [v for v in NASTY if v and "\n" not in v and "\t" not in v and "/" not in v] + [
    "c$:d",
    "e$f.txt",
    "g|h.txt",
    " leading",
    "$ x",
]


def test_sh_quote_round_trips_through_bash():
    script = "printf '%s\\0' " + " ".join(sh_quote(v) for v in NASTY)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == NASTY


def test_sh_quote_round_trips_through_posix_sh():
    script = "printf '%s\\0' " + " ".join(sh_quote(v) for v in NASTY)
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == NASTY


def test_sh_quote_leaves_safe_words_bare():
    assert sh_quote("data/train.csv") == "data/train.csv"
    assert sh_quote("a b") == "'a b'"
    assert sh_quote("it's") == "'it'\\''s'"


def test_sh_path_never_looks_like_an_option(tmp_path: Path):
    (tmp_path / "-n").write_text("x")
    subprocess.run(["bash", "-c", f"rm -f {sh_path('-n')}"], cwd=tmp_path, check=True)
    assert not (tmp_path / "-n").exists()


def _ninja(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "build.ninja").write_text(text)
    return subprocess.run([NINJA], cwd=tmp_path, capture_output=True, text=True)


def test_ninja_paths_create_exactly_the_named_files(tmp_path: Path):
    lines = ["rule touch", "  command = touch -- $out", ""]
    for i, name in enumerate(NASTY_NAMES):
        if needs_binding(name):
            # '|' has no escape on a build line: bind it to a variable.
            lines += [f"build $p{i}: touch", f"  p{i} = {ninja_escape(name)}"]
        else:
            lines.append(f"build {ninja_escape_path(name)}: touch")
    proc = _ninja(tmp_path, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = {p.name for p in tmp_path.iterdir()} - {"build.ninja", ".ninja_log"}
    assert made == set(NASTY_NAMES)
    assert "no work to do" in _ninja(tmp_path, "\n".join(lines) + "\n").stdout


def test_ninja_value_then_shell_round_trips(tmp_path: Path):
    """Two layers, as the emitters use them: shell-quote, then Ninja-escape."""
    lines = ["rule show", "  command = printf '%s\\0' $args > $out", ""]
    args = " ".join(sh_quote(v) for v in NASTY if "\n" not in v)
    lines += ["build out: show", f"  args = {ninja_escape(args)}"]
    proc = _ninja(tmp_path, "\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = (tmp_path / "out").read_bytes().decode().split("\0")[:-1]
    assert got == [v for v in NASTY if "\n" not in v]


def test_ninja_value_keeps_a_leading_space(tmp_path: Path):
    proc = _ninja(tmp_path, f"rule w\n  command = printf %s '$v' > $out\nbuild out: w\n  v = {ninja_escape('  x')}\n")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out").read_text() == "  x"


def test_ninja_refuses_pipe_and_newline_on_build_lines():
    with pytest.raises(NinjaEscapeError, match=r"out 'a\|b' contains '\|'"):
        ninja_escape_path("a|b", what="out")
    with pytest.raises(NinjaEscapeError, match="line break"):
        ninja_escape_path("a\nb")
    with pytest.raises(NinjaEscapeError, match="tab"):
        ninja_escape_path("a\tb")
    with pytest.raises(NinjaEscapeError, match="line break"):
        ninja_escape("echo a\necho b", what="command of stage 'x'")


def test_lone_dollar_is_escaped():
    # ninja_syntax.escape_path leaves this alone and Ninja reads '$f' as a variable.
    assert ninja_escape_path("e$f.txt") == "e$$f.txt"
    assert ninja_escape("e$f") == "e$$f"
