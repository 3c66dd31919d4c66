"""``pivot dag``: the stage graph as text, Graphviz dot or Mermaid."""

from __future__ import annotations

import click

from pivot.cli import common
from pivot.ir import Pipeline


@click.command("dag")
@click.option("--dot", "fmt", flag_value="dot", help="Graphviz dot (strict digraph).")
@click.option("--mermaid", "fmt", flag_value="mermaid", help="Mermaid flowchart.")
@click.option("--md", "fmt", flag_value="md", help="Mermaid inside a Markdown code fence.")
@common.targets_argument()
def command(fmt: str | None, targets: tuple[str, ...]) -> None:
    """Show how stages depend on each other (producer -> consumer).

    With TARGETS, only they and their upstream stages are shown.
    """
    from pivot import targets as target_selection

    proj = common.project()
    pipeline = common.load(proj, targets)
    addresses = [s.address for s in target_selection.select(pipeline, proj, targets)]
    edges = dag_edges(pipeline, addresses)
    if fmt == "dot":
        click.echo(render_dot(addresses, edges))
    elif fmt in ("mermaid", "md"):
        text = render_mermaid(addresses, edges)
        click.echo(f"```mermaid\n{text}\n```" if fmt == "md" else text)
    else:
        click.echo(render_text(pipeline, addresses))


def dag_edges(pipeline: Pipeline, addresses: list[str]) -> list[tuple[str, str]]:
    """(producer, consumer) pairs among ``addresses``, in definition order."""
    chosen = set(addresses)
    return [
        (producer, consumer)
        for consumer in addresses
        for producer in pipeline.upstream[consumer]
        if producer in chosen
    ]


def render_dot(addresses: list[str], edges: list[tuple[str, str]]) -> str:
    lines = ["strict digraph {"]
    lines.extend(f"{_quote(a)};" for a in addresses)
    lines.extend(f"{_quote(p)} -> {_quote(c)};" for p, c in edges)
    lines.append("}")
    return "\n".join(lines)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_mermaid(addresses: list[str], edges: list[tuple[str, str]]) -> str:
    ids = {address: f"node{i + 1}" for i, address in enumerate(sorted(addresses))}
    lines = ["flowchart TD"]
    lines.extend(f'\t{ids[a]}["{a.replace(chr(34), "#quot;")}"]' for a in sorted(addresses))
    lines.extend(sorted(f"\t{ids[p]}-->{ids[c]}" for p, c in edges))
    return "\n".join(lines)


def render_text(pipeline: Pipeline, addresses: list[str]) -> str:
    """Run order, one stage a line, each followed by what it needs."""
    chosen = set(addresses)
    lines = []
    for address in addresses:
        upstream = [u for u in pipeline.upstream[address] if u in chosen]
        lines.append(f"{address}" + (f"  <- {', '.join(upstream)}" if upstream else ""))
    return "\n".join(lines)
