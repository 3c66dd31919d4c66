"""The Ninja emitter on its own: model -> text, compared as text, and long
lines broken so that real Ninja reads back exactly what was meant."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from pivot.backends.escape import ninja_escape
from pivot.backends.ninja import WIDTH, NinjaBuild, NinjaRule, wrap
from tests.emit_helpers import NINJA


def test_a_short_rule_stays_on_one_line():
    rule = NinjaRule(name="copy", command=("cp $in $out",), description="copying $out", restat=True)
    assert rule.text() == "rule copy\n  command = cp $in $out\n  description = copying $out\n  restat = 1\n"


def test_a_long_rule_puts_each_piece_on_a_line_of_its_own():
    rule = NinjaRule(
        name="stage",
        command=("$pivot emit ninja-prepare -- $addr || exit 1;", "$script &&", "$pivot emit ninja-finish -- $addr"),
        description="$desc",
        generator=True,
    )
    assert rule.text() == textwrap.dedent("""\
        rule stage
          command = $
              $pivot emit ninja-prepare -- $addr || exit 1; $
              $script && $
              $pivot emit ninja-finish -- $addr
          description = $desc
          generator = 1
        """)


def test_build_lines_break_between_paths_and_bind_pipes():
    build = NinjaBuild(
        outputs=("out put.txt", "a|b.txt"),
        rule="stage",
        inputs=tuple(f"inputs/file-number-{i}.txt" for i in range(4)),
        implicit=(".pivot/ninja/keys/s",),
        variables=(("addr", "s"),),
        comment="s (dvc.yaml:2)",
    )
    assert build.text() == textwrap.dedent("""\
        # s (dvc.yaml:2)
        build out$ put.txt $path0: stage inputs/file-number-0.txt $
            inputs/file-number-1.txt inputs/file-number-2.txt $
            inputs/file-number-3.txt | .pivot/ninja/keys/s
          addr = s
          path0 = a|b.txt
        """)


@pytest.mark.parametrize(
    "text",
    [
        "short",
        "a" * 200,  # one word longer than a line: left whole
        "word " * 40,
        "x $$ " * 30 + "end",  # escaped dollars before spaces: spaces that may break
        "p$ q " * 30,  # escaped spaces: never a break
        "two  spaces  between  words " * 6,  # a break before a space would lose it
        "      " + "w" * 90 + " next",  # never a break inside the indentation
    ],
)
def test_wrap_only_breaks_where_a_space_may_break(text):
    wrapped = wrap(text)
    assert wrapped.replace(" $\n    ", " ") == text
    assert not wrapped.startswith(" " * 6 + "$")
    for line in wrapped.splitlines():
        assert len(line) <= WIDTH or " " not in line.strip(" $").replace("$ ", ""), line


def test_ninja_reads_wrapped_commands_back_exactly(tmp_path):
    commands = [
        "echo " + "'single  quoted   spaces' " * 6,
        'printf "%s\\n" "$HOME" "$$" ' + "x" * 90 + " tail",
        "a=1;" + " b" * 60 + ";  c=2",
    ]
    rules = [NinjaRule(name=f"r{i}", command=(ninja_escape(c),), description="d") for i, c in enumerate(commands)]
    builds = [NinjaBuild(outputs=(f"out{i}",), rule=f"r{i}") for i in range(len(commands))]
    text = "".join(r.text() + "\n" for r in rules) + "".join(b.text() + "\n" for b in builds)
    assert max(map(len, text.splitlines())) <= WIDTH + 20  # words are never split
    (tmp_path / "build.ninja").write_text(text)
    for i, command in enumerate(commands):
        proc = subprocess.run([NINJA, "-t", "commands", f"out{i}"], cwd=tmp_path, capture_output=True, text=True,
                              check=True)
        assert proc.stdout == command + "\n"
