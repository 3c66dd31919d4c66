"""How long a large Pivotfile takes to load (issue target: 1,000 rules < 0.3 s).

Writes a Pivotfile of N rules -- each with two inputs, one output, a param
and a shell command, the shape of a hand-written pipeline -- plus one
wildcard rule instantiated once per rule, and times ``pivot list`` on it:

- *first load*: an empty ``.pivot/``, so nothing is cached: lark builds the
  parser tables and parses every line (and the caches are written);
- *warm load*: nothing changed since the last command, so the resolved
  pipeline is reused (``.pivot/pipeline.pickle``);
- *edited load*: one rule in the middle of the file changed since the last
  command: only that rule is parsed again (the parser tables and the other
  statements' syntax trees come from ``.pivot/parser/``), then every rule is
  evaluated and resolved again.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench.measure import Measurement, run_command
from bench.tools import Pivot

TARGET_SECONDS = 0.3


def write_pivotfile(dest: Path, rules: int) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (dest / "data").mkdir(exist_ok=True)
    # the first rule is the default target: it asks for a summary of every step,
    # so the wildcard rule is resolved once per step
    wanted = ", ".join(f'"summary/step{i}.json"' for i in range(rules))
    lines = ['configfile: "params.yaml"', "", "rule all:", f"    input: {wanted}", ""]
    for i in range(rules):
        (dest / "data" / f"in{i}.csv").write_text(f"{i}\n")
        lines += [
            f"rule step{i}:",
            f'    input: "data/in{i}.csv", script="scripts/step.py"',
            f'    output: "out/step{i}.txt"',
            '    params: "train.lr"',
            f'    desc: "step {i} of {rules}"',
            '    shell: "python {input.script} {input[0]} --lr {config.train.lr} > {output}"',
            "",
        ]
    lines += [
        "rule summary:",
        '    input: "out/{name}.txt"',
        '    output: "summary/{name}.json"',
        '    shell: "wc -c {input} > {output}"',
        "",
    ]
    (dest / "Pivotfile").write_text("\n".join(lines))
    (dest / "scripts").mkdir(exist_ok=True)
    (dest / "scripts" / "step.py").write_text("import sys\nprint(open(sys.argv[1]).read())\n")


def measure(workdir: Path, rules: int, repeat: int, timeout: float) -> dict[str, Measurement]:
    pivot = Pivot.find()
    home = workdir / f"pivotfile-{rules}"
    if home.exists():
        shutil.rmtree(home)
    write_pivotfile(home, rules)
    argv = (*pivot.argv, "list")
    env = pivot.env(home)

    def sample(before=None) -> Measurement:
        samples = []
        for _ in range(repeat):
            if before:
                before()
            samples.append(run_command(argv, home, env, timeout))
        return Measurement.from_samples(samples)

    def no_state() -> None:
        # an empty .pivot/ keeps the workspace its own project root
        shutil.rmtree(home / ".pivot", ignore_errors=True)
        (home / ".pivot").mkdir()

    edits = iter(range(1, 1_000_000))

    def edit_one_rule() -> None:
        # what a user does: change one rule in the middle (its description)
        path = home / "Pivotfile"
        middle = rules // 2
        text, count = re.subn(rf'desc: "step {middle} of {rules}[^"]*"',
                              f'desc: "step {middle} of {rules}, edit {next(edits)}"', path.read_text())
        assert count == 1, "the middle rule's description"
        path.write_text(text)

    results = {"first load (nothing cached)": sample(no_state)}
    run_command(argv, home, env, timeout)  # fill the caches
    results["warm load (parser and pipeline cached)"] = sample()
    results["edited load (one rule changed)"] = sample(edit_one_rule)
    return results


def table(rules: int, results: dict[str, Measurement]) -> str:
    rows = [f"### Pivotfile with {rules:,} rules (`pivot list`)", "",
            "| load | median (min–max) | peak | target < 0.3 s |", "|---|---|---|---|"]
    for name, m in results.items():
        if not m.ok:
            rows.append(f"| {name} | {m.outcome.value}: {m.detail} | n/a | n/a |")
            continue
        verdict = "met" if m.median < TARGET_SECONDS else "MISSED"
        rows.append(f"| {name} | {m.median * 1000:.0f} ms ({m.minimum * 1000:.0f}–{m.maximum * 1000:.0f} ms)"
                    f" | {m.peak_rss_mb:.0f} MB | {verdict} |")
    return "\n".join(rows) + "\n"
