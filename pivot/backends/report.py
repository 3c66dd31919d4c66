"""Status, plan and why as text and JSON.

``status_json`` has exactly the shape of ``dvc status --json``; the text
forms follow DVC's tab-indented layout.  Everything here is pure: it turns
a ``Plan`` into strings and plain data.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from typing import Any, Mapping, assert_never

from pivot.optimizer import Action, Decision, Plan, Reason, ReasonKind
from pivot.state.restore import RestoreSource

UP_TO_DATE_TEXT = "Pipelines are up to date."

# reason kind -> the word DVC's status uses for the entry
_DEP_STATE = {
    ReasonKind.DEP_MODIFIED: "modified",
    ReasonKind.DEP_NEW: "modified",  # DVC: an existing dep without a recorded hash is "modified"
    ReasonKind.DEP_DELETED: "deleted",
    ReasonKind.PARAM_MODIFIED: "modified",
    ReasonKind.PARAM_NEW: "new",
    ReasonKind.PARAM_DELETED: "deleted",
}
_OUT_STATE = {
    ReasonKind.OUT_MISSING: "deleted",
    ReasonKind.OUT_MODIFIED: "modified",
    ReasonKind.OUT_NOT_IN_CACHE: "not in cache",
}


# -- status ------------------------------------------------------------------


# stage address -> the outs a status shows (absent: all of them)
OutFilter = Mapping[str, frozenset[str]]


def _stale(plan: Plan, out_filter: OutFilter | None, root: str | None) -> list[tuple[Decision, list[Any]]]:
    out_filter = out_filter or {}
    found = []
    for decision in plan.decisions:
        own = decision.own_reasons  # a property: worked out once here (110,000 reasons in a fresh status)
        if own:
            status = _stage_status(own, out_filter.get(decision.address), root)
            if status:
                found.append((decision, status))
    return found


def _dvc_key(path: str, root: str | None) -> str:
    """How ``dvc status`` names a path: root-relative, but absolute for a
    dep outside the project (``../shared.txt``)."""
    if root is not None and (path == ".." or path.startswith("../")):
        return posixpath.normpath(posixpath.join(root, path))
    return path


def _stage_status(own_reasons: tuple[Reason, ...], outs_shown: frozenset[str] | None, root: str | None) -> list[Any]:
    """One stage's entry of ``dvc status --json``, from the stage's own
    reasons: changed deps, changed outs, "always changed", "changed
    command", in DVC's order.

    ``outs_shown`` limits the outs listed (a target naming an output path
    shows only that output, as DVC does)."""
    deps: dict[str, Any] = {}
    outs: dict[str, str] = {}
    extra: list[str] = []
    for reason in own_reasons:
        kind = reason.kind
        if kind in _DEP_STATE and reason.path is not None:
            if kind.name.startswith("PARAM") and reason.key is not None:
                # a path that is both a file dep and a params file: DVC's
                # params entry replaces the file's (keeping its position)
                key = _dvc_key(reason.path, root)
                entry = deps.get(key)
                if not isinstance(entry, dict):
                    entry = deps[key] = {}
                entry[reason.key] = _DEP_STATE[kind]
            else:
                deps[_dvc_key(reason.path, root)] = _DEP_STATE[kind]
        elif kind in _OUT_STATE and reason.path is not None:
            if outs_shown is None or reason.path in outs_shown:
                outs[reason.path] = _OUT_STATE[kind]
    kinds = {r.kind for r in own_reasons}
    if ReasonKind.ALWAYS_CHANGED in kinds:
        extra.append("always changed")
    if ReasonKind.CMD_CHANGED in kinds:
        extra.append("changed command")
    result: list[Any] = []
    if deps:
        result.append({"changed deps": deps})
    if outs:
        result.append({"changed outs": outs})
    return result + extra


def status_json(plan: Plan, out_filter: OutFilter | None = None, root: str | None = None) -> dict[str, list[Any]]:
    """``dvc status --json``; ``root`` (the project's absolute path, POSIX)
    names deps outside the project as DVC does."""
    return {d.address: status for d, status in _stale(plan, out_filter, root)}


def status_text(plan: Plan, out_filter: OutFilter | None = None, root: str | None = None) -> str:
    lines: list[str] = []
    for decision, status in _stale(plan, out_filter, root):
        lines.append(f"{decision.address}:")
        for item in status:
            if isinstance(item, str):
                lines.append(f"\t{item}")
                continue
            for title, entries in item.items():
                lines.append(f"\t{title}:")
                for path, state in entries.items():
                    if isinstance(state, dict):
                        lines.append(f"\t\t{path}:")
                        lines.extend(f"\t\t\t{s + ':':<20}{key}" for key, s in state.items())
                    else:
                        lines.append(f"\t\t{state + ':':<20}{path}")
        if decision.source is not None and decision.source is not RestoreSource.CACHE:
            lines.append(f"\t(restorable from {_source_text(decision)})")
    if not lines:
        lines.append(UP_TO_DATE_TEXT)
    return "\n".join(lines) + "\n"


def _adopted_lines(plan: Plan) -> list[str]:
    adopted = plan.adopted
    if not adopted:
        return []
    return [f"Adopted from dvc.lock (up to date): {', '.join(d.address for d in adopted)}"]


# -- plan --------------------------------------------------------------------


def reason_json(reason: Reason) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": reason.kind.name.lower(), "text": reason.describe()}
    for name in ("path", "key", "old", "new", "upstream"):
        value = getattr(reason, name)
        if value is not None:
            data[name] = value
    return data


def decision_json(decision: Decision) -> dict[str, Any]:
    data: dict[str, Any] = {
        "address": decision.address,
        "action": decision.action.value,
        "adopted": decision.adopted,
        "reasons": [reason_json(r) for r in decision.reasons],
    }
    if decision.source is not None:
        data["source"] = decision.source.name.lower()
    entry = decision.run_entry
    if decision.action is Action.RESTORE_RUN and entry is not None:
        data["run_cache"] = {"key": entry.key, "address": entry.address, "time": entry.time}
    return data


# stage address -> the worker resources it asks for (``.pivot/config``; see docs/distributed.md)
StageResources = Mapping[str, Mapping[str, float]]


def plan_json(plan: Plan, resources: StageResources | None = None) -> dict[str, Any]:
    counts = plan.counts()
    resources = resources or {}
    stages = []
    for decision in plan.decisions:
        data = decision_json(decision)
        if decision.address in resources:
            data["resources"] = dict(resources[decision.address])
        stages.append(data)
    return {
        "stages": stages,
        "summary": {
            "run": counts[Action.RUN],
            "checkout": counts[Action.CHECKOUT],
            "restore_run": counts[Action.RESTORE_RUN],
            "up_to_date": counts[Action.UP_TO_DATE],
            "frozen": counts[Action.FROZEN],
            "record_frozen": counts[Action.RECORD_FROZEN],
            "adopted": len(plan.adopted),
            "by_reason": {kind.name.lower(): n for kind, n in plan.by_reason().items()},
        },
    }


def plan_text(plan: Plan, resources: StageResources | None = None) -> str:
    from pivot.backends.executor_config import format_resources

    lines: list[str] = []
    resources = resources or {}
    for decision in plan.decisions:
        head = _plan_head(decision)
        if head is None:
            continue
        if resources:
            wanted = resources.get(decision.address)
            if wanted and decision.action in (Action.RUN, Action.CHECKOUT, Action.RESTORE_RUN):
                head += f"  [needs {format_resources(wanted)}]"
        lines.append(head)
        for reason in decision.reasons:  # a loop, not a generator: 20,000 stages in a fresh plan
            lines.append(f"            - {reason.describe()}")
    lines.append(summary_line(plan))
    lines.extend(_adopted_lines(plan))
    return "\n".join(lines) + "\n"


def _plan_head(decision: Decision) -> str | None:
    """The plan's line for a stage with work; None for one without."""
    address = decision.address
    match decision.action:
        case Action.RUN:
            return f"run       {address}"
        case Action.CHECKOUT if decision.source is RestoreSource.REMOTE:
            return f"pull      {address}  (from {_source_text(decision)})"
        case Action.CHECKOUT:
            return f"checkout  {address}  (restored from {_source_text(decision)})"
        case Action.RESTORE_RUN:
            return f"restore   {address}  (from {_source_text(decision)})"
        case Action.RECORD_FROZEN:
            return f"record    {address}  ({frozen_note(decision)})"
        case Action.UP_TO_DATE | Action.FROZEN:
            return None
    assert_never(decision.action)


def _source_text(decision: Decision) -> str:
    """Where a restore takes the outputs from, for people."""
    source = decision.source
    match source:
        case RestoreSource.RUN_CACHE:
            assert decision.run_entry is not None
            return f"the run cache: {decision.run_entry.describe()}"
        case RestoreSource.CACHE:
            return "cache"
        case RestoreSource.DVC_CACHE:
            return "DVC's cache"
        case RestoreSource.REMOTE:
            return "the remote"
        case RestoreSource.REMOTE_RUN_CACHE:
            assert decision.run_entry is not None
            return f"the remote run cache: {decision.run_entry.describe()}"
        case None:
            raise AssertionError(f"{decision.address}: a {decision.action.name} decision without a source")
    assert_never(source)


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    sources = Counter(d.source for d in plan.decisions if d.source is not None)
    parts = [f"{counts[Action.RUN]} to run"]
    local_checkouts = sources[RestoreSource.CACHE] + sources[RestoreSource.DVC_CACHE]
    if local_checkouts:
        parts.append(f"{local_checkouts} to restore from cache")
    if sources[RestoreSource.RUN_CACHE]:
        parts.append(f"{sources[RestoreSource.RUN_CACHE]} to restore from the run cache")
    if sources[RestoreSource.REMOTE]:
        parts.append(f"{sources[RestoreSource.REMOTE]} to pull from the remote")
    if sources[RestoreSource.REMOTE_RUN_CACHE]:
        parts.append(f"{sources[RestoreSource.REMOTE_RUN_CACHE]} to restore from the remote run cache")
    if counts[Action.RECORD_FROZEN]:
        parts.append(f"{counts[Action.RECORD_FROZEN]} frozen to re-record")
    parts.append(f"{counts[Action.UP_TO_DATE]} up to date")
    if counts[Action.FROZEN]:
        parts.append(f"{counts[Action.FROZEN]} frozen")
    line = ", ".join(parts)
    by_reason = plan.by_reason()
    if by_reason:
        line += " (" + ", ".join(f"{n} {kind.value}" for kind, n in by_reason.items()) + ")"
    return line + "."


# -- why -----------------------------------------------------------------------


def frozen_note(decision: Decision) -> str:
    """What ``run`` does with a frozen stage whose outs changed."""
    missing = [r.path for r in decision.reasons if r.kind is ReasonKind.OUT_MISSING]
    if missing:
        return f"frozen, fails: missing output {', '.join(repr(p) for p in missing)}"
    return "frozen: outputs re-recorded as they are, command not run"


def why_text(decision: Decision) -> str:
    head = _why_head(decision)
    if decision.action in (Action.FROZEN, Action.UP_TO_DATE):
        return head + "\n"
    lines = [head]
    for reason in decision.reasons:
        lines.extend(_explain(reason))
    return "\n".join(lines) + "\n"


def _why_head(decision: Decision) -> str:
    address = decision.address
    match decision.action:
        case Action.FROZEN:
            return f"Stage '{address}' is frozen: it never runs."
        case Action.UP_TO_DATE:
            note = " (adopted from dvc.lock)" if decision.adopted else ""
            return f"Stage '{address}' is up to date{note}."
        case Action.RECORD_FROZEN:
            return f"Stage '{address}' is {frozen_note(decision)}:"
        case Action.RUN:
            return f"Stage '{address}' will run:"
        case Action.RESTORE_RUN if decision.source is RestoreSource.REMOTE_RUN_CACHE:
            return f"Stage '{address}' will be restored from {_source_text(decision)} instead of running:"
        case Action.RESTORE_RUN:
            assert decision.run_entry is not None
            return (f"Stage '{address}' will be restored from the run cache ({decision.run_entry.describe()})"
                    " instead of running:")
        case Action.CHECKOUT:
            return f"Stage '{address}' will be restored from {_source_text(decision)}:"
    assert_never(decision.action)


def _short(digest: Any) -> str:
    return str(digest)[:8] if digest else "(none)"


def _explain(reason: Reason) -> list[str]:
    kind = reason.kind
    text = f"  {reason.describe()}"
    if kind in (ReasonKind.DEP_MODIFIED, ReasonKind.OUT_MODIFIED, ReasonKind.OUT_NOT_IN_CACHE):
        return [f"{text}: {_short(reason.old)} -> {_short(reason.new)}"]
    if kind in (ReasonKind.PARAM_MODIFIED,):
        return [f"{text}: {reason.old!r} -> {reason.new!r}"]
    if kind is ReasonKind.PARAM_NEW and reason.key is not None:
        return [f"{text}: {reason.new!r}"]
    if kind is ReasonKind.PARAM_DELETED and reason.key is not None and reason.old is not None:
        return [f"{text}: was {reason.old!r}"]
    if kind is ReasonKind.CMD_CHANGED:
        import difflib

        diff = difflib.unified_diff(
            str(reason.old).splitlines(), str(reason.new).splitlines(), "recorded", "now", lineterm="", n=1
        )
        return [text + ":", *(f"    {line}" for line in list(diff)[2:] if not line.startswith("@@"))]
    return [text]
