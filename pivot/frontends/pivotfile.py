"""The Pivotfile front end: syntax tree -> rules -> concrete Stages.

Loading runs in three phases, one module each:

1. :mod:`pivotfile_parse` parses each file (the Pivotfile and what it
   includes) into statements;
2. :mod:`pivotfile_eval` runs the statements top to bottom -- variables,
   ``configfile``, ``include`` -- and turns each ``rule`` into a
   :class:`~pivot.frontends.pivotfile_rules.Rule` (patterns parsed, sections
   checked, shell placeholders validated);
3. :mod:`pivotfile_resolve` instantiates rules: every rule without wildcards
   is a stage; a rule with wildcards becomes one stage per value set that
   some requested file needs, working backwards from the inputs of the
   concrete rules and from ``needed`` (files other pipelines or the command
   line ask for), Snakemake style, asking the index of
   :mod:`pivotfile_producers` which rule makes each requested file.

The result is plain IR; nothing downstream knows it came from a Pivotfile.
"""

from __future__ import annotations

import gc
from typing import Collection

from pivot.frontends.pivotfile_eval import Evaluator
from pivot.frontends.pivotfile_resolve import resolve
from pivot.ir import Stage
from pivot.project import Project


def load_pivotfile(
    project: Project,
    relpath: str,
    needed: Collection[str] = (),
    provided: Collection[str] = (),
    looked_up: list[str] | None = None,
) -> tuple[list[Stage], list[str]]:
    """The stages of the Pivotfile at ``relpath`` (root-relative) and the files
    read to build them (the Pivotfile, included files, configfiles).

    ``needed``: root-relative paths that something outside this file wants
    (other pipelines' deps, file targets); a wildcard rule whose output matches
    one is instantiated for it.  ``provided``: paths other pipelines produce,
    so targets naming them are not reported missing (an input nobody
    produces is a dep either way, present or not).  ``looked_up`` (when
    given) receives the paths whose existence on disk was checked: the
    result depends on them too (the pipeline cache records them).
    """
    # Loading allocates many small objects that all stay alive; the cycle
    # collector would only walk them again and again (with 1,000 rules it
    # took a quarter of the load, parse included).
    enabled = gc.isenabled()
    gc.disable()
    try:
        evaluator = Evaluator(project, relpath)
        evaluator.run_file(relpath)
        rules = evaluator.finish()
        stages = resolve(project, relpath, rules, sorted(set(needed)), set(provided), looked_up)
    finally:
        if enabled:
            gc.enable()
    return stages, evaluator.sources
