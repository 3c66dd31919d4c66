"""What ``pivot fetch`` and ``pivot pull`` do, remote choice included.

Stages with a pivot lock record come from a pivot remote (``-r NAME`` or
``[core] remote`` of ``.pivot/config``); stages DVC ran (no pivot record, an
entry in ``dvc.lock``) come from the project's DVC remote (``-r NAME`` when
it names one, else DVC's default).  Either alone is enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from pivot.remote import config, dvc, transfer
from pivot.remote.config import Remote
from pivot.remote.storage import RemoteStorage
from pivot.remote.transfer import Progress, TransferReport

if TYPE_CHECKING:
    from pivot.state.restore import RestoreReport
    from pivot.ir import Stage
    from pivot.project import Project
    from pivot.state import State


@dataclass(frozen=True)
class Sources:
    """The remotes one fetch reads: pivot's and DVC's (either may be None)."""

    pivot: Remote | None
    dvc: Remote | None

    @property
    def label(self) -> tuple[str, str]:
        names = [r.name for r in (self.pivot,) if r] + [f"dvc:{r.name}" for r in (self.dvc,) if r]
        urls = [r.url for r in (self.pivot, self.dvc) if r]
        return ", ".join(names), ", ".join(urls)


def sources(project: "Project", name: str | None) -> Sources:
    settings = config.load(project.state_dir)
    dvc_settings = dvc.load_settings(project.root)
    if name is not None:
        pivot_remote = settings.remotes.get(name)
        dvc_remote = dvc_settings.remotes.get(name)
        if dvc_remote is None and pivot_remote is not None and dvc_settings.default:
            dvc_remote = dvc_settings.remotes.get(dvc_settings.default)
    else:
        pivot_remote = settings.get(None) if settings.default is not None else None
        dvc_remote = dvc_settings.remotes.get(dvc_settings.default) if dvc_settings.default else None
    if pivot_remote is None and dvc_remote is None:
        settings.get(name)  # raises the message naming what is missing
    return Sources(pivot_remote, dvc_remote)


def push_target(project: "Project", name: str | None) -> Remote:
    """The pivot remote a push goes to (DVC's remotes are only read)."""
    settings = config.load(project.state_dir)
    if name is not None and name not in settings.remotes and name in dvc.load_settings(project.root).remotes:
        raise config.ConfigError(
            f"remote '{name}' is a DVC remote (.dvc/config): pivot only reads those; "
            f"push to a pivot remote (`pivot remote add NAME URL`)"
        )
    return settings.get(name)


@dataclass
class FetchResult:
    report: TransferReport
    dvc_outs: list[dvc.DvcOutput] = field(default_factory=list)


def fetch(
    project: "Project",
    stages: Sequence["Stage"],
    state: "State",
    name: str | None,
    *,
    jobs: int | None = None,
    run_cache: bool = True,
    tracked: bool = False,
    progress: Progress | None = None,
) -> FetchResult:
    """Fetch what ``stages`` need; with ``tracked``, also the data that
    ``.dvc`` files track (``dvc add``), from the DVC remote."""
    chosen = sources(project, name)
    progress = progress or Progress()
    remote_name, url = chosen.label
    if chosen.pivot is not None:
        report = transfer.fetch(stages, state, RemoteStorage(chosen.pivot, project.root, jobs),
                                run_cache=run_cache, progress=progress)
        report.remote, report.url = remote_name, url
    else:
        report = TransferReport("fetch", remote_name, url)
        from pivot.state.hashing import HashInfo

        for stage, entry in transfer.recorded_outputs(stages, state):
            if not state.cache.contains(HashInfo(entry.hash, entry.size, entry.nfiles)):
                report.missing.append(
                    f"no pivot remote to fetch '{entry.path}' ({stage.address}) from: "
                    "add one with `pivot remote add -d NAME URL`"
                )
    outs = dvc.dvc_outputs(stages, state)
    if tracked:
        tracked_outs, problems = dvc.tracked_outputs(state)
        outs += tracked_outs
        report.failed.extend(problems)
    if outs:
        if chosen.dvc is None:
            report.missing.extend(f"no DVC remote to fetch '{o.path}' ({o.address}) from" for o in outs)
        else:
            dvc.fetch(outs, project.root, RemoteStorage(chosen.dvc, project.root, jobs), report, progress)
    return FetchResult(report, outs)


@dataclass
class PullResult:
    restored: list[tuple[str, str]]  # (stage address, path)
    unchanged: int
    missing: list[tuple[str, str]]
    corrupt: list[str]
    adopted: list[str]  # stages DVC ran, now recorded by pivot


def restore(project: "Project", stages: Sequence["Stage"], dvc_outs: Sequence[dvc.DvcOutput]) -> PullResult:
    """Put fetched outputs in place, then adopt the stages DVC ran."""
    from pivot.remote.workspace import restore_dvc_outputs, restore_outputs
    from pivot.state import State

    with State.open(project) as state:
        reports: list[tuple[Stage, RestoreReport]] = restore_outputs(stages, state)
        dvc_restored, dvc_missing = restore_dvc_outputs(dvc_outs, state)
    restored = [(s.address, p) for s, r in reports for p in r.restored]
    restored += [(o.address, o.path) for o in dvc_restored]
    missing = [(s.address, p) for s, r in reports for p in r.missing]
    missing += [(o.address, o.path) for o in dvc_missing]
    adopted: list[str] = []
    dvc_stages = {o.address for o in dvc_restored}
    if dvc_stages:
        from pivot.state.dvclock import DvcLockRecord
        from pivot.state.record import persist_adoption

        with State.open(project) as state:  # a new state: md5s are taken afresh
            for stage in stages:
                if stage.address not in dvc_stages:
                    continue
                record = state.adopt(stage)
                if record is not None and not isinstance(record, DvcLockRecord) and \
                        persist_adoption(stage, state, record):
                    adopted.append(stage.address)
    return PullResult(
        restored=restored,
        unchanged=sum(len(r.unchanged) for _, r in reports),
        missing=missing,
        corrupt=[m for _, r in reports for m in r.problems] + [
            f"kept '{path}': its content is in no cache (unsaved work); `pivot checkout --force` replaces it"
            for _, r in reports for path in r.unsaved],
        adopted=adopted,
    )

