"""``pivot log``: recent runs -- what ran, why, how long."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from pivot.cli import common


@click.command(help="Show recent runs: which stages ran or failed, why, and how long they took.")
@click.argument("stage", required=False)
@click.option("-n", "limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(stage: str | None, limit: int, as_json: bool) -> None:
    from pivot.state import audit

    proj = common.project()
    runs = []
    for record in audit.read_runs(proj):
        entries = [e for e in record.stages if stage is None or _matches(e.address, stage)]
        if stage is not None and not entries:
            continue
        runs.append((record, entries))
        if len(runs) >= limit:
            break
    if as_json:
        common.echo_json([_run_json(record, entries) for record, entries in runs])
        return
    if not runs:
        click.echo("no recorded runs" + (f" of '{stage}'" if stage else ""))
        return
    for record, entries in runs:
        click.echo(_run_header(record))
        for line in _stage_lines(entries, show_skipped=stage is not None):
            click.echo(line)


def _matches(address: str, wanted: str) -> bool:
    """Exact address, bare name (``train`` matches ``sub/dvc.yaml:train``) or group."""
    name = address.rpartition(":")[2]
    return wanted in (address, name) or address.startswith(wanted + "@") or name.startswith(wanted + "@")


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="milliseconds")


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _run_header(record) -> str:
    local = datetime.fromtimestamp(record.started).strftime("%Y-%m-%d %H:%M:%S")
    return f"{record.command} {record.run_id}  {local}  {record.status}  {_seconds(record.duration)}  {' '.join(record.argv)}"


def _stage_lines(entries, *, show_skipped: bool) -> list[str]:
    from pivot.state.audit import Outcome

    lines: list[str] = []
    skipped = 0
    for entry in entries:
        if entry.outcome is Outcome.SKIPPED and not show_skipped and entry.message in ("up to date", "frozen"):
            skipped += 1
            continue
        detail = entry.message or "; ".join(r.text for r in entry.reasons)
        if entry.outcome is Outcome.FAILED:
            code = f"exit {entry.exit_code}, " if entry.exit_code else ""
            detail = f"{code}{entry.message or 'failed'}" + (f", log {entry.log}" if entry.log else "")
        elif entry.outcome in (Outcome.RAN, Outcome.RESTORED) and entry.reasons:
            detail = "; ".join(r.text for r in entry.reasons)
        where = f"  on {entry.worker}" if entry.worker else ""
        lines.append(f"  {entry.outcome.value:<11} {entry.address}  {_seconds(entry.duration)}{where}  {detail}".rstrip())
    if skipped:
        lines.append(f"  {skipped} up to date")
    return lines


def _run_json(record, entries) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "command": record.command,
        "argv": list(record.argv),
        "pid": record.pid,
        "started": _when(record.started),
        "ended": _when(record.ended),
        "duration": record.duration,
        "status": record.status,
        "stages": [
            {
                "address": e.address,
                "outcome": e.outcome.value,
                "reasons": [{"kind": r.kind, "text": r.text} for r in e.reasons],
                "started": _when(e.started),
                "ended": _when(e.ended),
                "duration": e.duration,
                "exit_code": e.exit_code,
                "log": e.log,
                "message": e.message,
                "worker": e.worker,
            }
            for e in entries
        ],
    }
